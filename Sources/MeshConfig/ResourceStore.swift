public import MeshModel
public import Foundation
internal import GRDB
internal import Synchronization

/// A change to the resources applied through the API.
public enum ResourceChange: Sendable {
    /// Create; fails if the resource exists.
    case create(MeshResource)
    /// Replace an existing resource; with `expectedVersion`, only if it is still that version.
    case replace(MeshResource, expectedVersion: String?)
    /// Delete; with `expectedVersion`, only if it is still that version.
    case delete(ResourceKey, expectedVersion: String?)

    /// The resource the change is about.
    public var key: ResourceKey {
        switch self {
        case .create(let resource), .replace(let resource, _): resource.key
        case .delete(let key, _): key
        }
    }
}

/// Why a change was refused.
public enum ResourceChangeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// It exists already (create), or its version moved on (stale `resourceVersion`), or it comes
    /// from the config directory and is read-only here.
    case conflict(String)
    /// There is no such resource.
    case notFound(String)
    /// The store could not be read or written; nothing changed.
    case storage(String)
    /// The resource is not valid with the rest of the configuration (a Gateway naming a
    /// credential no Secret holds, a Secret whose key does not match its certificate), at `field`.
    case invalid(String, field: String?)

    public var description: String {
        switch self {
        case .conflict(let text), .notFound(let text), .storage(let text), .invalid(let text, _): text
        }
    }
}

/// Where resources applied through the API live. Implementations apply each change atomically,
/// checking its preconditions in the same transaction, and assign increasing resource versions.
public protocol ResourceStore: Sendable {
    /// Every stored resource (with `metadata.resourceVersion` set).
    func load() throws(ResourceChangeError) -> [MeshResource]
    /// Applies `change`; returns the stored resource (`nil` after a delete).
    func apply(_ change: ResourceChange) throws(ResourceChangeError) -> MeshResource?
}

extension ResourceChange {
    /// Checks the change against what is stored (`current`) and returns the resource to store.
    func checked(against current: MeshResource?, version: Int64) throws(ResourceChangeError) -> MeshResource? {
        switch self {
        case .create(var resource):
            if current != nil { throw .conflict("\(resource.key) already exists") }
            resource.metadata.resourceVersion = String(version)
            return resource
        case .replace(var resource, let expected):
            guard let current else { throw .notFound("\(resource.key) does not exist") }
            if let expected, expected != current.metadata.resourceVersion {
                throw .conflict("\(resource.key) was changed since resourceVersion \(expected) (now \(current.metadata.resourceVersion ?? "?")); get it again and reapply")
            }
            resource.metadata.resourceVersion = String(version)
            return resource
        case .delete(let key, let expected):
            guard let current else { throw .notFound("\(key) does not exist") }
            if let expected, expected != current.metadata.resourceVersion {
                throw .conflict("\(key) was changed since resourceVersion \(expected) (now \(current.metadata.resourceVersion ?? "?"))")
            }
            return nil
        }
    }
}

/// The embedded, durable store: SQLite in WAL mode with full fsync (GRDB), one row per resource
/// holding its JSON. A change is on disk before it is served.
public final class SQLiteResourceStore: ResourceStore {
    private let pool: DatabasePool
    /// The database file.
    public let path: String

    private let clock: @Sendable () -> Date

    /// Opens (creating and migrating) the database at `path` (mode 0600); changes are stamped
    /// by `clock`.
    public init(path: String, clock: @escaping @Sendable () -> Date = Date.init) throws(ResourceChangeError) {
        self.path = path
        self.clock = clock
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let existed = FileManager.default.fileExists(atPath: path)
            pool = try DatabasePool(path: path, configuration: configuration)
            if !existed { chmod(path, 0o600) }
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.create(table: "resource") { table in
                    table.column("kind", .text).notNull()
                    table.column("namespace", .text).notNull()
                    table.column("name", .text).notNull()
                    table.column("document", .text).notNull()
                    table.column("resourceVersion", .integer).notNull()
                    table.column("updatedAt", .datetime).notNull()
                    table.primaryKey(["kind", "namespace", "name"])
                }
                try db.create(table: "counter") { table in
                    table.column("name", .text).primaryKey()
                    table.column("value", .integer).notNull()
                }
                try db.execute(sql: "INSERT INTO counter (name, value) VALUES ('resourceVersion', 0)")
            }
            try migrator.migrate(pool)
        } catch {
            throw .storage("cannot open the resource store \(path): \(error)")
        }
    }

    public func load() throws(ResourceChangeError) -> [MeshResource] {
        let rows: [(String, String)]
        do {
            rows = try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT kind || ' ' || namespace || '/' || name AS key, document FROM resource ORDER BY kind, namespace, name")
                    .map { ($0["key"] as String, $0["document"] as String) }
            }
        } catch {
            throw .storage("cannot read \(path): \(error)")
        }
        var out: [MeshResource] = []
        for (key, document) in rows {
            do {
                let decoded = try ResourceDocuments.decode(document, source: "\(path) (\(key))", asStored: true)
                out += decoded.map(\.resource)
            } catch {
                throw .storage("\(path): the stored \(key) no longer decodes: \(error)")
            }
        }
        return out
    }

    public func apply(_ change: ResourceChange) throws(ResourceChangeError) -> MeshResource? {
        let key = change.key
        do {
            return try pool.write { db -> MeshResource? in
                let existing = try String.fetchOne(
                    db, sql: "SELECT document FROM resource WHERE kind = ? AND namespace = ? AND name = ?",
                    arguments: [key.kind.rawValue, key.namespace, key.name])
                let current = try existing.flatMap { try ResourceDocuments.decode($0, source: path, asStored: true).first?.resource }
                try db.execute(sql: "UPDATE counter SET value = value + 1 WHERE name = 'resourceVersion'")
                let version = try Int64.fetchOne(db, sql: "SELECT value FROM counter WHERE name = 'resourceVersion'") ?? 1
                guard let stored = try change.checked(against: current, version: version) else {
                    try db.execute(sql: "DELETE FROM resource WHERE kind = ? AND namespace = ? AND name = ?", arguments: [key.kind.rawValue, key.namespace, key.name])
                    return nil
                }
                try db.execute(
                    sql: """
                        INSERT INTO resource (kind, namespace, name, document, resourceVersion, updatedAt) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT(kind, namespace, name) DO UPDATE SET document = excluded.document,
                          resourceVersion = excluded.resourceVersion, updatedAt = excluded.updatedAt
                        """,
                    arguments: [key.kind.rawValue, key.namespace, key.name, ConfigJSON.encode(stored.configValue), version, clock()])
                return stored
            }
        } catch let error as ResourceChangeError {
            throw error
        } catch {
            throw .storage("cannot write \(path): \(error)")
        }
    }
}

/// A store in memory (tests, and meshd without a data directory for it).
public final class MemoryResourceStore: ResourceStore {
    private let state = Mutex<(resources: [ResourceKey: MeshResource], version: Int64)>(([:], 0))

    /// An empty store.
    public init() {}

    public func load() throws(ResourceChangeError) -> [MeshResource] {
        state.withLock { state in state.resources.keys.sorted().map { state.resources[$0]! } }
    }

    public func apply(_ change: ResourceChange) throws(ResourceChangeError) -> MeshResource? {
        try state.withLock { state throws(ResourceChangeError) -> MeshResource? in
            let stored = try change.checked(against: state.resources[change.key], version: state.version + 1)
            state.version += 1
            state.resources[change.key] = stored
            return stored
        }
    }
}
