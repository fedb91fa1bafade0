internal import Foundation
public import MeshModel
internal import Synchronization

/// The YAML/JSON files under a configuration directory.
public struct ConfigDirectory: Sendable {
    /// The directory.
    public let path: String
    /// Subdirectories that are never configuration (meshd's data directory when it lies inside).
    public let excluded: [String]
    /// Each file's last decoded text and resources: a change to one file does not decode the
    /// others again (a large generated mesh takes longer to parse than to translate).
    private let decoded = DecodedFiles()

    /// A configuration directory at `path`; files under any of `excluding` are not read.
    public init(path: String, excluding: [String] = []) {
        self.path = path
        let root = URL(fileURLWithPath: path).standardizedFileURL.path
        excluded = excluding.compactMap { directory in
            let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
            guard absolute.hasPrefix(root + "/") else { return nil }
            return String(absolute.dropFirst(root.count + 1))
        }
    }

    final class DecodedFiles: Sendable {
        let files = Mutex<[String: (text: String, resources: [SourcedResource])]>([:])
    }

    /// What identifies the directory's current content cheaply: each file's path, inode, size,
    /// and modification and change times in nanoseconds. A change of fingerprint means the files
    /// must be read again.
    public struct Fingerprint: Hashable, Sendable {
        let entries: [String: [Int64]]
    }

    /// The config files (`.yaml`, `.yml`, `.json`), recursively, sorted; hidden files and
    /// directories (`.git`, editor swap files), backups (`~`) and the excluded directories are
    /// skipped.
    public func files() throws(ConfigLoadError) -> [String] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigLoadError(source: path, reason: "not a directory")
        }
        guard let enumerator = manager.enumerator(atPath: path) else {
            throw ConfigLoadError(source: path, reason: "cannot list the directory")
        }
        var out: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let components = relative.split(separator: "/")
            if components.contains(where: { $0.hasPrefix(".") }) || relative.hasSuffix("~") { continue }
            if excluded.contains(where: { relative == $0 || relative.hasPrefix($0 + "/") }) { continue }
            let lower = relative.lowercased()
            guard lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || lower.hasSuffix(".json") else { continue }
            out.append(relative)
        }
        return out.sorted().map { (path as NSString).appendingPathComponent($0) }
    }

    /// The current fingerprint.
    public func fingerprint() throws(ConfigLoadError) -> Fingerprint {
        var entries: [String: [Int64]] = [:]
        for file in try files() {
            entries[file] = FileStamp.of(file)
        }
        return Fingerprint(entries: entries)
    }

    /// The mesh settings file at the top of the directory (Istio's MeshConfig, not a resource).
    public var meshFile: String { path + "/mesh.yaml" }

    /// Reads `mesh.yaml` (Istio's defaults when there is none).
    public func loadMesh() throws(ConfigLoadError) -> MeshTelemetry {
        guard FileManager.default.fileExists(atPath: meshFile) else { return .default }
        let text: String
        do {
            text = try String(contentsOfFile: meshFile, encoding: .utf8)
        } catch {
            throw ConfigLoadError(source: meshFile, reason: "cannot read the file: \(error.localizedDescription)")
        }
        let documents = try YAMLDocuments.parse(text, source: meshFile)
        let notResources = "mesh.yaml holds the mesh's settings (Istio's MeshConfig: extensionProviders, accessLogFile, ...), not resources; put resources in another file"
        guard documents.count <= 1 else { throw ConfigLoadError(source: meshFile, reason: "\(notResources) (it holds one document)") }
        guard let document = documents.first else { return .default }
        if case .object(let fields) = document.value, fields["kind"] != nil || fields["apiVersion"] != nil {
            throw ConfigLoadError(source: meshFile, document: 1, reason: notResources)
        }
        do throws(SchemaError) {
            return try MeshTelemetry(document: document.value)
        } catch {
            throw ConfigLoadError(source: meshFile, document: 1, resource: "MeshConfig", path: error.path.description, reason: error.reason)
        }
    }

    /// A file holding a Secret is kept as the CA's keys are: readable by its owner only.
    static func checkPermissions(_ file: String, holding resources: [SourcedResource]) throws(ConfigLoadError) {
        guard let secret = resources.first(where: { $0.resource.kind == .secret }),
              let mode = (try? FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue,
              mode & 0o077 != 0
        else { return }
        throw ConfigLoadError(
            source: file, document: secret.document, item: secret.item, resource: secret.resource.key.description,
            reason: "holds a Secret and is readable by other users (mode \(String(mode & 0o777, radix: 8))); chmod 600 it")
    }

    /// Reads and decodes every file; the first problem anywhere is thrown, so that a change is
    /// taken whole or not at all. `mesh.yaml` is not a resource: see ``loadMesh()``.
    public func load() throws(ConfigLoadError) -> [SourcedResource] {
        var out: [SourcedResource] = []
        let files = try files().filter { $0 != meshFile }
        defer { decoded.files.withLock { [names = Set(files)] cache in cache = cache.filter { names.contains($0.key) } } }
        for file in files {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ConfigLoadError(source: file, reason: "cannot read the file: \(error.localizedDescription)")
            }
            let resources: [SourcedResource]
            if let cached = decoded.files.withLock({ $0[file] }), cached.text == text {
                resources = cached.resources
            } else {
                resources = try ResourceDocuments.decode(text, source: file)
                decoded.files.withLock { $0[file] = (text, resources) }
            }
            try Self.checkPermissions(file, holding: resources)
            out += resources
        }
        try ResourceDocuments.checkUnique(out)
        return out
    }
}
