import Foundation
import MeshModel
import MeshTranslation
import Testing

@Suite("meshctl simulate: a request walked through the generated configuration")
struct RequestSimulationTests {
    static func simulate(_ url: String, from: String = "tai-system/governor-v1", method: String = "GET", headers: [String: String] = [:], in snapshot: MeshSnapshot? = nil) throws -> RequestSimulation {
        try RequestSimulation.run(snapshot ?? exampleSnapshot(), request: .init(from: from, url: url, method: method, headers: headers))
    }

    @Test("the ADR's canary: 90/10 by weight to coordinator v1 and v2 over mTLS, allowed by the ADR's policy rule")
    func canarySplit() throws {
        let result = try Self.simulate("http://coordinator:8080/tai.Governor/Plan")
        let served = Dictionary(result.outcomes.map { ($0.servedBy ?? "-", $0.probability) }, uniquingKeysWith: +)
        #expect(abs((served["tai-system/coordinator-v1"] ?? 0) - 0.9) < 1e-9, "\(result.outcomes)")
        #expect(abs((served["tai-system/coordinator-v2"] ?? 0) - 0.1) < 1e-9, "\(result.outcomes)")
        #expect(result.steps.contains { $0.stage == "authorization" && $0.detail.contains("ns[tai-system]-policy[coordinator-authz]-rule[0]") })
        #expect(result.steps.contains { $0.stage == "endpoint" && $0.detail.contains("over mTLS") })
        // The header route sends everything to the canary.
        let canary = try Self.simulate("http://coordinator:8080/tai.Governor/Plan", headers: ["user-agent": "canary-tester"])
        #expect(canary.outcomes.map(\.servedBy) == ["tai-system/coordinator-v2"])
    }

    @Test("the ADR's policy: a path outside the rule is denied with 403, naming no rule; DELETE too")
    func denied() throws {
        for (path, method) in [("/admin", "GET"), ("/tai.Governor/Plan", "DELETE")] {
            let result = try Self.simulate("http://coordinator:8080\(path)", method: method)
            #expect(result.outcomes.map(\.status) == [403], "\(path) \(method): \(result.text)")
            #expect(result.outcomes.allSatisfy { $0.reason.contains("no ALLOW rule matches") })
        }
    }

    @Test("bad input names its field: an unknown workload, a URL without a host, a scheme that is not simulated")
    func badInput() throws {
        let snapshot = try exampleSnapshot()
        for (from, url, field) in [("tai-system/nobody", "http://coordinator:8080/", "from"), ("tai-system/governor-v1", "coordinator", "url"), ("tai-system/governor-v1", "https://coordinator:8080/", "url")] {
            #expect {
                try RequestSimulation.run(snapshot, request: .init(from: from, url: url))
            } throws: { error in
                (error as? RequestSimulation.Failure)?.field == field
            }
        }
    }
}
