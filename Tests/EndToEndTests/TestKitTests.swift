import MeshModel
import Testing
import XDSTesting

@Suite("The test kit itself")
struct TestKitTests {
    @Test("the test app answers the probe and records the request")
    func appAndProbe() async throws {
        let app = try await TestHTTPApp.start(name: "probe-me", host: "127.0.0.1", port: 0)
        defer { Task { await app.stop() } }
        let response = try await HTTPProbe.request(HostPort(host: "127.0.0.1", port: UInt32(app.port)), authority: "example", path: "/x?y=1", headers: [("x-test", "1")])
        #expect(response.status == 200)
        #expect(response.body == "probe-me\n")
        #expect(app.requests.first?.path == "/x?y=1")
        #expect(app.requests.first?.headers["host"] == "example")
        #expect(app.requests.first?.headers["x-test"] == "1")
        app.setBehaviour { _, sequence in .init(status: sequence == 2 ? 503 : 200, body: "n\(sequence)") }
        #expect(try await HTTPProbe.request(HostPort(host: "127.0.0.1", port: UInt32(app.port)), authority: "a").status == 503)
    }
}
