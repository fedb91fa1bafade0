import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// The README's first command: `meshd` with no arguments runs the example mesh.
    @Suite("Quick start: meshd on its embedded defaults, meshctl bootstrap")
    struct QuickStart {
        @Test("meshd seeds the example mesh into its data directory, serves it, prints next steps and stops cleanly on SIGTERM")
        func embeddedDefaults() async throws {
            let directory = try TestTools.temporaryDirectory("quickstart")
            let meshd = try ProcessHandle(
                executable: try TestTools.productBinary("meshd"),
                arguments: ["--data-dir", directory + "/data", "--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0"],
                logPath: directory + "/meshd.log")
            var adminPort = 0
            var xdsPort = 0
            do {
                try await Eventually.wait(timeout: .seconds(20), what: "meshd's welcome text") {
                    guard meshd.isRunning else { throw HTTPProbe.Failure(description: "meshd exited: \(meshd.log)") }
                    return meshd.log.contains("Next, in another terminal")
                }
                let log = meshd.log
                adminPort = Self.port(after: "admin API: http://127.0.0.1:", in: log) ?? 0
                xdsPort = Self.port(after: "xDS (ADS): 127.0.0.1:", in: log) ?? 0
                #expect(adminPort > 0 && xdsPort > 0, "\(log)")
                #expect(log.contains("workloads: tai-system/coordinator-v1, tai-system/coordinator-v2, tai-system/governor-v1, tai-system/scheduler-v1"))
                let seeded = try FileManager.default.contentsOfDirectory(atPath: directory + "/data/config").sorted()
                let shipped = try FileManager.default.contentsOfDirectory(atPath: TestTools.packageRoot + "/examples/tai-system").filter { $0.hasSuffix(".yaml") }.sorted()
                #expect(seeded == shipped, "the embedded example is the examples/tai-system directory")
                for file in shipped {
                    #expect(FileManager.default.contents(atPath: directory + "/data/config/" + file) == FileManager.default.contents(atPath: TestTools.packageRoot + "/examples/tai-system/" + file))
                }
                let ready = try await HTTPProbe.request(HostPort(host: "127.0.0.1", port: UInt32(adminPort)), authority: "meshd", path: "/readyz")
                #expect(ready.status == 200)

                // meshctl bootstrap prints a bootstrap that Envoy itself validates.
                let bootstrapPath = directory + "/governor.json"
                let meshctl = try ProcessHandle(
                    executable: try TestTools.productBinary("meshctl"),
                    arguments: ["bootstrap", "--server", "http://127.0.0.1:\(adminPort)", "--data-dir", directory + "/data", "--workload", "tai-system/governor-v1", "--xds-address", "127.0.0.1:\(xdsPort)"],
                    logPath: bootstrapPath)
                #expect(await meshctl.waitForExit(timeout: .seconds(20)))
                #expect(meshctl.terminationStatus == 0, "\(meshctl.log)")
                let bootstrap = try #require(try JSONSerialization.jsonObject(with: Data(meshctl.log.utf8)) as? [String: Any])
                let node = try #require(bootstrap["node"] as? [String: Any])
                #expect(node["id"] as? String == "sidecar~127.0.0.2~governor-v1.tai-system~tai-system.svc.cluster.local")
                #expect((node["metadata"] as? [String: Any])?["SERVICE_ACCOUNT"] as? String == "governor")
                let validate = try ProcessHandle(
                    executable: try TestTools.envoy(),
                    arguments: ["--mode", "validate", "-c", bootstrapPath, "--disable-hot-restart"],
                    logPath: directory + "/validate.log")
                #expect(await validate.waitForExit(timeout: .seconds(20)))
                #expect(validate.terminationStatus == 0, "\(validate.log)")

                // The operator's views of tokens and the CA.
                let server = ["--server", "http://127.0.0.1:\(adminPort)", "--data-dir", directory + "/data"]
                let minted = try await Self.meshctl(["token", "create", "--namespace", "tai-system", "--service-account", "governor"] + server, in: directory)
                #expect(minted.status == 0 && minted.output.contains("mdt_"), "\(minted.output)")
                let listed = try await Self.meshctl(["token", "list"] + server, in: directory)
                #expect(listed.status == 0 && listed.output.contains("tai-system") && listed.output.contains("governor"), "\(listed.output)")
                let unknown = try await Self.meshctl(["token", "create", "--namespace", "x", "--service-account", "y", "--admin-token", "wrong"] + server, in: directory)
                #expect(unknown.status != 0 && unknown.output.contains("401"), "\(unknown.output)")
                let reader = try await Self.meshctl(["token", "create", "--role", "reader"] + server, in: directory)
                let readerToken = try #require(reader.output.split(separator: "\n").first { $0.hasPrefix("mdt_") }).trimmingCharacters(in: .whitespaces)
                let forbidden = try await Self.meshctl(["token", "create", "--namespace", "x", "--service-account", "y", "--admin-token", readerToken] + server, in: directory)
                #expect(forbidden.status != 0 && forbidden.output.contains("403"), "\(forbidden.output)")
                let status = try await Self.meshctl(["ca", "status"] + server, in: directory)
                #expect(status.status == 0 && status.output.contains("O=cluster.local") && status.output.contains("self-signed"), "\(status.output)")
                #expect(status.output.range(of: "[0-9a-f]{64}", options: .regularExpression) != nil, "a SHA-256 fingerprint: \(status.output)")
                let certs = try await Self.meshctl(["certs", "list"] + server, in: directory)
                #expect(certs.status == 0 && certs.output.contains("meshd.istio-system.svc") && certs.output.contains("server"), "\(certs.output)")
                let audit = try String(contentsOfFile: directory + "/data/audit.log", encoding: .utf8)
                #expect(audit.contains("token.create") && audit.contains("bootstrap") && audit.contains("forbidden"), "\(audit)")

                let missing = try ProcessHandle(
                    executable: try TestTools.productBinary("meshctl"),
                    arguments: ["bootstrap", "--server", "http://127.0.0.1:\(adminPort)", "--data-dir", directory + "/data", "--workload", "tai-system/nobody"],
                    logPath: directory + "/missing.log")
                #expect(await missing.waitForExit(timeout: .seconds(20)))
                #expect(missing.terminationStatus != 0)
                #expect(missing.log.contains("404") && missing.log.contains("no WorkloadEntry tai-system"), "\(missing.log)")
            } catch {
                await meshd.killNow()
                throw error
            }
            #expect(await meshd.stop(timeout: .seconds(10)) == 0, "meshd exits 0 on SIGTERM: \(meshd.log.suffix(500))")
        }

        @Test("meshd refuses to start on an invalid config directory, naming the problem")
        func invalidStartup() async throws {
            let directory = try TestTools.temporaryDirectory("badstart")
            try FileManager.default.createDirectory(atPath: directory + "/config", withIntermediateDirectories: true)
            try "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w, namespace: ns}\nspec: {adress: 127.0.0.2}\n"
                .write(toFile: directory + "/config/w.yaml", atomically: true, encoding: .utf8)
            let meshd = try ProcessHandle(
                executable: try TestTools.productBinary("meshd"),
                arguments: ["--config-dir", directory + "/config", "--data-dir", directory + "/data", "--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0"],
                logPath: directory + "/meshd.log")
            #expect(await meshd.waitForExit(timeout: .seconds(20)))
            #expect(meshd.terminationStatus == 1)
            #expect(meshd.log.contains("w.yaml, document 1 (WorkloadEntry ns/w): spec.adress: unknown field \"adress\""), "\(meshd.log)")
        }

        @Test("meshd refuses a non-loopback listener unless asked")
        func loopbackOnly() async throws {
            let directory = try TestTools.temporaryDirectory("loopback")
            let meshd = try ProcessHandle(
                executable: try TestTools.productBinary("meshd"),
                arguments: ["--data-dir", directory + "/data", "--xds-address", "0.0.0.0:0", "--admin-address", "127.0.0.1:0"],
                logPath: directory + "/meshd.log")
            #expect(await meshd.waitForExit(timeout: .seconds(20)))
            #expect(meshd.terminationStatus == 1)
            #expect(meshd.log.contains("--xds-address 0.0.0.0:0 is not a loopback address"), "\(meshd.log)")
        }

        static func meshctl(_ arguments: [String], in directory: String) async throws -> (status: Int32, output: String) {
            let process = try ProcessHandle(executable: try TestTools.productBinary("meshctl"), arguments: arguments, logPath: directory + "/meshctl-\(UUID().uuidString.prefix(6)).log")
            #expect(await process.waitForExit(timeout: .seconds(20)))
            return (process.terminationStatus ?? -1, process.log)
        }

        static func port(after marker: String, in text: String) -> Int? {
            guard let range = text.range(of: marker) else { return nil }
            return Int(text[range.upperBound...].prefix { $0.isNumber })
        }
    }
}
