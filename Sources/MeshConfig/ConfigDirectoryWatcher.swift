public import Logging
internal import Synchronization

/// Watches a configuration directory by polling and hands each settled change to a ``ConfigStore``.
///
/// A change is read once the directory's fingerprint has stayed the same for one poll interval,
/// so that a file being written is not read half-way.
public final class ConfigDirectoryWatcher: Sendable {
    /// The directory.
    public let directory: ConfigDirectory
    /// Where changes go.
    public let store: ConfigStore
    /// How often to look.
    public let interval: Duration
    private let logger: Logger
    /// The fingerprint of what was last read (taken before reading, so an edit during the read
    /// is seen as a change).
    private let applied = Mutex<ConfigDirectory.Fingerprint?>(nil)

    /// A watcher of `directory` feeding `store`.
    public init(directory: ConfigDirectory, store: ConfigStore, interval: Duration = .milliseconds(250), logger: Logger) {
        self.directory = directory
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// Loads the directory now and applies it. Returns the error if loading failed.
    @discardableResult
    public func loadNow() -> ConfigLoadError? {
        let fingerprint = try? directory.fingerprint()
        applied.withLock { $0 = fingerprint }
        do throws(ConfigLoadError) {
            store.applyFiles(.success(try directory.load()), mesh: try directory.loadMesh())
            return nil
        } catch {
            store.applyFiles(.failure(error))
            return error
        }
    }

    /// Polls until cancelled. Call ``loadNow()`` first for the initial load.
    public func run() async {
        var pending: ConfigDirectory.Fingerprint? = nil
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            guard let current = try? directory.fingerprint() else { continue }
            if current == applied.withLock({ $0 }) {
                pending = nil
                continue
            }
            if current != pending {
                pending = current  // wait one interval for the writer to finish
                continue
            }
            logger.debug("configuration directory changed", metadata: ["directory": "\(directory.path)"])
            loadNow()
            pending = nil
        }
    }
}
