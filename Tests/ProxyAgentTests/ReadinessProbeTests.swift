import Foundation
import Testing
@testable import ProxyAgent

@Suite("The agent's readiness probe: thresholds, defaults, and real checks")
struct ReadinessProbeTests {
    @Test("Istio's defaults: no delay, timeout 1s, period 10s, thresholds 1; 0 means unset")
    func defaults() {
        let schedule = ProbeSchedule(check: .tcp(host: "127.0.0.1", port: 1), timeoutSeconds: 0, periodSeconds: 3, failureThreshold: 2)
        #expect(schedule.initialDelay == .zero && schedule.timeout == .seconds(1) && schedule.period == .seconds(3))
        #expect(schedule.successThreshold == 1 && schedule.failureThreshold == 2)
    }

    @Test("a verdict needs its threshold of results in a row; only changes are reported")
    func thresholds() {
        var verdict = ProbeVerdict(successThreshold: 2, failureThreshold: 3)
        // Whether each result changed the verdict, and the verdict after it.
        let results: [ProbeResult] = [.success, .success, .success, .failure("a"), .failure("b"), .success, .failure("c"), .failure("d"), .failure("e")]
        var trace: [String] = []
        for result in results {
            let changed = verdict.take(result)
            trace.append("\(changed ? "changed" : "same") \(verdict.healthy.map { $0 ? "healthy" : "unhealthy" } ?? "unknown")")
        }
        #expect(trace == [
            "same unknown", "changed healthy", "same healthy", "same healthy", "same healthy",
            "same healthy", "same healthy", "same healthy", "changed unhealthy",
        ], "two successes to turn healthy; three failures in a row (a success in between resets them) to turn unhealthy")
        #expect(verdict.lastFailure == "e")
    }

    /// A listener on 127.0.0.1 answering each connection with `response` (nil: closes at once).
    static func listener(response: String?) throws -> (port: UInt16, stop: @Sendable () -> Void) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0 && listen(fd, 8) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let thread = Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                if let response {
                    var buffer = [UInt8](repeating: 0, count: 1024)
                    _ = recv(client, &buffer, buffer.count, 0)
                    _ = response.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                }
                close(client)
            }
        }
        thread.start()
        return (UInt16(bigEndian: address.sin_port), { shutdown(fd, Int32(SHUT_RDWR)); close(fd) })
    }

    @Test("HTTP passes on 200-399 and fails on other statuses or nothing listening; TCP passes when it connects; exec passes on exit 0 and fails on another status or a timeout")
    func checks() async throws {
        let ok = try Self.listener(response: "HTTP/1.1 204 No Content\r\n\r\n")
        defer { ok.stop() }
        let failing = try Self.listener(response: "HTTP/1.1 503 Service Unavailable\r\n\r\n")
        defer { failing.stop() }
        #expect(await ProbeRunner.run(.http(host: "127.0.0.1", port: ok.port, path: "/healthz", headers: ["X-Probe": "1"]), timeout: .seconds(1)) == .success)
        #expect(await ProbeRunner.run(.http(host: "127.0.0.1", port: failing.port, path: "/", headers: [:]), timeout: .seconds(1)) == .failure("HTTP probe failed with statuscode: 503"))
        #expect(await ProbeRunner.run(.tcp(host: "127.0.0.1", port: ok.port), timeout: .seconds(1)) == .success)
        let closed = try Self.listener(response: nil)
        let closedPort = closed.port
        closed.stop()
        guard case .failure(let refused) = await ProbeRunner.run(.tcp(host: "127.0.0.1", port: closedPort), timeout: .seconds(1)) else {
            Issue.record("nothing listens, yet the TCP check passed")
            return
        }
        #expect(refused.contains("refused"), "\(refused)")
        guard case .failure = await ProbeRunner.run(.http(host: "127.0.0.1", port: closedPort, path: "/", headers: [:]), timeout: .seconds(1)) else {
            Issue.record("nothing listens, yet the HTTP check passed")
            return
        }
        #expect(await ProbeRunner.run(.exec(["true"]), timeout: .seconds(2)) == .success)
        #expect(await ProbeRunner.run(.exec(["sh", "-c", "exit 3"]), timeout: .seconds(2)) == .failure("exec sh: exit status 3"))
        let started = ContinuousClock.now
        #expect(await ProbeRunner.run(.exec(["sleep", "5"]), timeout: .seconds(1)) == .failure("exec sleep: timed out after 1.0s"))
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}
