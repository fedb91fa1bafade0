import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// The push engine at a CI-sized scale: correctness, not time (docs/BENCHMARKS.md has the figures).
    @Suite("Scale smoke test")
    struct ScaleSmokeTests {
        @Test("300 simulated proxies through 3 changes all end up holding byte for byte what a full translation gives their workloads")
        func threeHundredProxies() async throws {
            let directory = try TestTools.temporaryDirectory("scale")
            let config = directory + "/config", nodes = directory + "/nodes.json"
            let loadgen = try TestTools.productBinary("meshd-loadgen")
            let mesh = try ProcessHandle(executable: loadgen, arguments: ["mesh", "--services", "100", "--workloads", "3", "--config-dir", config, "--nodes", nodes], logPath: directory + "/mesh.log")
            #expect(await mesh.waitForExit(timeout: .seconds(30)))
            try #require(mesh.terminationStatus == 0, "\(mesh.log)")

            let xds = HostPort(host: "127.29.0.2", port: 15012), admin = HostPort(host: "127.29.0.2", port: 15014)
            let meshd = try ProcessHandle(
                executable: try TestTools.productBinary("meshd"),
                arguments: ["--config-dir", config, "--data-dir", directory + "/data", "--xds-address", "\(xds)", "--admin-address", "\(admin)",
                            "--xds-plaintext", "--dev-allow-unauthenticated-proxies", "--poll-interval", "100ms"],
                logPath: directory + "/meshd.log")
            do {
                try await exercise(meshd: meshd, loadgen: loadgen, xds: xds, admin: admin, config: config, nodes: nodes, directory: directory)
            } catch {
                _ = await meshd.stop()
                throw error
            }
            _ = await meshd.stop()
        }

        func exercise(meshd: ProcessHandle, loadgen: String, xds: HostPort, admin: HostPort, config: String, nodes: String, directory: String) async throws {
            try await Eventually.wait(timeout: .seconds(30), what: "meshd to serve") {
                guard meshd.isRunning else { throw HTTPProbe.Failure(description: "meshd exited: \(meshd.log.suffix(1000))") }
                return (try? await HTTPProbe.request(admin, authority: "meshd", path: "/readyz"))?.status == 200
            }
            var arguments = ["xds", "--target", "\(xds)", "--nodes", nodes, "--proxies", "300", "--change-dir", config, "--changes", "3", "--verify", "--data-dir", directory + "/data"]
            if MeshHarness.deltaByDefault { arguments.append("--delta") }
            let run = try ProcessHandle(executable: loadgen, arguments: arguments, logPath: directory + "/xds.log")
            let finished = await run.waitForExit(timeout: .seconds(240))
            if !finished { await run.killNow() }
            #expect(finished, "the load generator finished: \(run.log.suffix(2000))")
            #expect(run.terminationStatus == 0, "\(run.log.suffix(2000))")
            #expect(run.log.contains("verified: all 300 proxies hold byte for byte what a full translation gives their workloads"), "\(run.log.suffix(2000))")
        }
    }
}
