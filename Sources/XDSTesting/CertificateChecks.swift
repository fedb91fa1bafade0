internal import Foundation

/// Runs the real peers' certificate checks (`openssl verify`, pkilint) on PEM chains.
public enum CertificateChecks {
    /// Problems per chain file (empty when it verifies and lints clean).
    public static func check(chainFiles: [String]) async throws -> [String: [String]] {
        guard !chainFiles.isEmpty else { return [:] }
        let python = try TestTools.python()
        let log = NSTemporaryDirectory() + "meshd-lint-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try ProcessHandle(
            executable: python, arguments: [TestTools.packageRoot + "/Tests/Conformance/lint_certs.py"] + chainFiles, logPath: log)
        guard await process.waitForExit(timeout: .seconds(30 + chainFiles.count)) else {
            await process.killNow()
            throw HTTPProbe.Failure(description: "certificate checks did not finish")
        }
        guard let report = try JSONSerialization.jsonObject(with: Data(process.log.utf8)) as? [String: [String]] else {
            throw HTTPProbe.Failure(description: "certificate checks printed no report: \(process.log)")
        }
        return report
    }

    /// Writes `chain` (PEMs, leaf first) to a file in `directory` and checks it.
    public static func check(chain: [String], in directory: String) async throws -> [String] {
        let path = "\(directory)/chain-\(UUID().uuidString.prefix(8)).pem"
        try chain.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        return try await check(chainFiles: [path])[path] ?? ["not checked"]
    }

    /// Every `.pem` file of a directory, checked.
    public static func checkDirectory(_ directory: String) async throws -> [String: [String]] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".pem") }.sorted()
        return try await check(chainFiles: files.map { "\(directory)/\($0)" })
    }
}
