import Foundation
import ProxyAgent
import Testing

@Suite("Sidecar launcher: Envoy's command line, restart back-off, admin address")
struct ProxyAgentTests {
    @Test("the defaults drain immediately and briefly, without hot restart")
    func defaults() {
        let line = EnvoyCommandLine(binary: "/usr/bin/envoy", bootstrapPath: "/etc/b.json")
        #expect(line.arguments == [
            "-c", "/etc/b.json", "--disable-hot-restart", "--concurrency", "2", "--log-level", "warning",
            "--drain-time-s", "3", "--drain-strategy", "immediate", "--parent-shutdown-time-s", "4",
        ])
    }

    @Test("a base id replaces --disable-hot-restart; extra arguments come last")
    func baseIDAndExtras() {
        var line = EnvoyCommandLine(binary: "envoy", bootstrapPath: "b.json")
        line.baseID = 7
        line.drainTimeSeconds = 45
        line.drainStrategy = .gradual
        line.extraArguments = ["--component-log-level", "rbac:debug"]
        let arguments = line.arguments
        #expect(!arguments.contains("--disable-hot-restart"))
        #expect(arguments.contains("--base-id") && arguments[arguments.firstIndex(of: "--base-id")! + 1] == "7")
        #expect(arguments[arguments.firstIndex(of: "--drain-time-s")! + 1] == "45")
        #expect(arguments[arguments.firstIndex(of: "--drain-strategy")! + 1] == "gradual")
        #expect(arguments[arguments.firstIndex(of: "--parent-shutdown-time-s")! + 1] == "46")
        #expect(Array(arguments.suffix(2)) == ["--component-log-level", "rbac:debug"])
    }

    @Test("quick failures double the delay up to the ceiling; a long healthy run resets it")
    func backoff() {
        var backoff = RestartBackoff(initial: .seconds(1), maximum: .seconds(5), healthyRun: .seconds(60))
        let quick = (0..<5).map { _ in backoff.exited(after: .seconds(2)) }
        #expect(quick == [.seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
        #expect(backoff.consecutiveFailures == 5)
        #expect(backoff.exited(after: .seconds(61)) == .seconds(1))
        #expect(backoff.exited(after: .seconds(1)) == .seconds(2))
    }

    @Test("the admin address is read from the bootstrap, IPv4 and IPv6")
    func adminAddress() {
        let json = #"{"admin": {"address": {"socket_address": {"address": "127.0.0.2", "port_value": 15000}}}, "node": {}}"#
        #expect(ProxyLauncher.adminAddress(bootstrapJSON: Data(json.utf8)) == .init(host: "127.0.0.2", port: 15000))
        let v6 = #"{"admin": {"address": {"socket_address": {"address": "::1", "port_value": 15001}}}}"#
        #expect(ProxyLauncher.adminAddress(bootstrapJSON: Data(v6.utf8))?.description == "[::1]:15001")
        #expect(ProxyLauncher.adminAddress(bootstrapJSON: Data(#"{"node": {}}"#.utf8)) == nil)
        #expect(ProxyLauncher.adminAddress(bootstrapJSON: Data("not json".utf8)) == nil)
    }

    @Test("a child gets a clean signal mask: SIGTERM stops it, and its exit status is reported")
    func childProcess() async throws {
        let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        #expect(sleeper.isRunning)
        let status = await sleeper.stop(grace: .seconds(5))
        #expect(status == 128 + SIGTERM)
        let failing = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exit 3"])
        #expect(await failing.waitForExit(timeout: .seconds(5)))
        #expect(failing.terminationStatus == 3)
        #expect(throws: LauncherError.self) { try ChildProcess(executable: "/nonexistent/envoy", arguments: []) }
    }
}
