internal import MeshModel

/// Notices when the plug-in CA files (Istio's layout) change: by each file's inode, size and
/// modification time, without reading them.
struct PluginDirectoryWatch: Sendable {
    static let files = ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"]

    /// The directory the operator manages.
    let directory: String
    /// The files' state last accepted.
    private var accepted: String?

    /// Watches `directory`, taking its files as they are now as accepted.
    init(directory: String) {
        self.directory = directory
        accepted = Self.fingerprint(directory)
    }

    /// The files' state when it differs from the accepted one; `nil` when unchanged.
    func change() -> String? {
        let now = Self.fingerprint(directory)
        return now == accepted ? nil : now
    }

    /// Records `fingerprint` (from ``change()``) as accepted: it is not reported again.
    mutating func accept(_ fingerprint: String) {
        accepted = fingerprint
    }

    /// Identifies the state of the plug-in files (inode, size, modification time of each).
    static func fingerprint(_ directory: String) -> String {
        files.map { (name: String) -> String in
            guard let stamp = FileStamp.of(directory + "/" + name) else { return "\(name):missing" }
            return "\(name):" + stamp.map { String($0) }.joined(separator: ":")
        }.joined(separator: ",")
    }
}
