internal import CertificateAuthority
internal import Foundation
internal import Logging
internal import MeshConfig
internal import MeshModel
internal import Metrics
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import NIOSSL
internal import ServiceLifecycle
internal import Synchronization

/// When each `jwksUri` is fetched, and what was last fetched: a pure state machine (time is
/// given). A URI is fetched as soon as a RequestAuthentication names it, then every `refresh`; a
/// failed fetch keeps the last good keys and is tried again after `min(refresh, 1 min)`, doubling
/// up to an hour (or the refresh interval, when longer), as istiod does.
struct JWKSSchedule: Sendable {
    struct Entry: Hashable, Sendable {
        /// The last good key set.
        var keys: String?
        var fetchedAt: Date?
        var nextAttempt: Date
        var failures: Int = 0
        var lastError: String?
    }

    let refresh: TimeInterval
    private(set) var entries: [String: Entry] = [:]

    init(refresh: TimeInterval) {
        self.refresh = refresh
    }

    /// Starts from key sets kept from an earlier run: served at once, fetched again at once.
    mutating func restore(_ keys: [String: String], now: Date) {
        for (uri, text) in keys {
            entries[uri] = Entry(keys: text, nextAttempt: now)
        }
    }

    /// Tracks exactly `uris`: new ones are due at once, gone ones are forgotten.
    mutating func track(_ uris: Set<String>, now: Date) {
        entries = entries.filter { uris.contains($0.key) }
        for uri in uris where entries[uri] == nil { entries[uri] = Entry(nextAttempt: now) }
    }

    /// The URIs to fetch now, sorted.
    func due(at now: Date) -> [String] {
        entries.filter { $0.value.nextAttempt <= now }.keys.sorted()
    }

    mutating func succeeded(_ uri: String, keys: String, at now: Date) {
        guard var entry = entries[uri] else { return }
        entry.keys = keys
        entry.fetchedAt = now
        entry.failures = 0
        entry.lastError = nil
        entry.nextAttempt = now.addingTimeInterval(refresh)
        entries[uri] = entry
    }

    mutating func failed(_ uri: String, error: String, at now: Date) {
        guard var entry = entries[uri] else { return }
        entry.failures += 1
        entry.lastError = error
        let first = min(refresh, 60)
        let wait = min(first * pow(2, Double(min(entry.failures - 1, 20))), max(refresh, 3600))
        entry.nextAttempt = now.addingTimeInterval(wait)
        entries[uri] = entry
    }

    /// The last good key set of every URI that has one.
    var keys: [String: String] {
        entries.compactMapValues(\.keys)
    }
}

/// Fetches a key set's document.
protocol JWKSFetcher: Sendable {
    func fetch(_ location: JWKSLocation, timeout: Duration) async throws -> String
}

/// Fetches the `jwksUri`s of RequestAuthentications for the Envoys (which get them inline, so no
/// Envoy needs a route to the identity provider), keeps the last good copy of each, and serves
/// changes through the config store. An endpoint that is down or answers something that is not a
/// key set keeps its last keys in service: requests with tokens go on being verified with them.
/// A URI never fetched gets a key set that verifies nothing (``MeshTranslation``), so a request
/// with a token is refused (401) and one without passes, as in Istio.
final class JWKSResolver: Sendable {
    /// A URI's state, for `meshctl analyze` and the admin API.
    struct Status: Hashable, Sendable {
        var uri: String
        var fetchedAt: Date?
        var failures: Int
        var lastError: String?
    }

    private let schedule: Mutex<JWKSSchedule>
    private let store: ConfigStore
    private let fetcher: any JWKSFetcher
    private let clock: @Sendable () -> Date
    private let logger: Logger
    private let fetched: Counter
    private let failedFetches: Counter
    private let stale: Gauge
    /// Where the last good key sets are kept across restarts (`<data>/jwks.json`, 0600), so a
    /// restart while an identity provider is down refuses no token that was accepted before.
    private let path: String?
    /// The default of `JWTRule.timeout`.
    static let defaultTimeout: Duration = .seconds(5)
    /// The most of a key set meshd reads.
    static let maximumBytes = 1 << 20

    init(
        store: ConfigStore, fetcher: any JWKSFetcher, refresh: Duration, path: String? = nil, clock: @escaping @Sendable () -> Date, logger: Logger,
        metrics: any MetricsFactory
    ) {
        let seconds = Double(refresh.components.seconds) + Double(refresh.components.attoseconds) / 1e18
        var initial = JWKSSchedule(refresh: max(seconds, 0.1))
        let kept = path.flatMap { Self.load(from: $0) } ?? [:]
        initial.restore(kept, now: clock())
        store.restoreJWKS(kept)
        schedule = Mutex(initial)
        self.path = path
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.logger = logger
        fetched = Counter(label: "meshd_jwks_fetches_total", dimensions: [("result", "success")], factory: metrics)
        failedFetches = Counter(label: "meshd_jwks_fetches_total", dimensions: [("result", "failure")], factory: metrics)
        stale = Gauge(label: "meshd_jwks_unavailable", dimensions: [], factory: metrics)
    }

    /// The `jwksUri`s the snapshot's RequestAuthentications name, with the longest timeout any of
    /// their rules gives.
    static func wanted(in snapshot: MeshSnapshot) -> [String: Duration] {
        var out: [String: Duration] = [:]
        for policy in snapshot.requestAuthentications {
            for rule in policy.spec.jwtRules ?? [] {
                guard let uri = rule.jwksUri else { continue }
                let timeout = rule.timeout.map { Duration.nanoseconds($0.nanoseconds) } ?? defaultTimeout
                out[uri] = max(out[uri] ?? .zero, timeout)
            }
        }
        return out
    }

    /// One round: tracks the URIs the served configuration names, fetches those due, and serves
    /// the key sets if they changed.
    func check() async {
        let wanted = Self.wanted(in: store.publisher.current)
        let due = schedule.withLock { schedule in
            schedule.track(Set(wanted.keys), now: clock())
            return schedule.due(at: clock())
        }
        for uri in due {
            let outcome: Result<String, any Error>
            if let location = JWKSLocation(uri) {
                do {
                    let text = try await fetcher.fetch(location, timeout: wanted[uri] ?? Self.defaultTimeout)
                    if let problem = JSONWebKeySet.problem(text) {
                        outcome = .failure(FetchError(description: "the answer \(problem)"))
                    } else {
                        outcome = .success(text)
                    }
                } catch {
                    outcome = .failure(error)
                }
            } else {
                outcome = .failure(FetchError(description: "not an http(s) URL"))
            }
            let now = clock()
            switch outcome {
            case .success(let text):
                fetched.increment()
                schedule.withLock { $0.succeeded(uri, keys: text, at: now) }
            case .failure(let error):
                failedFetches.increment()
                let kept = schedule.withLock { schedule in
                    schedule.failed(uri, error: "\(error)", at: now)
                    return schedule.entries[uri]?.keys != nil
                }
                logger.warning("cannot fetch a JSON Web Key Set", metadata: [
                    "uri": "\(uri)", "error": "\(error)",
                    "serving": "\(kept ? "the last keys fetched" : "no keys: requests with a token for this issuer are refused")",
                ])
            }
        }
        let (keys, unavailable) = schedule.withLock { schedule in
            (schedule.keys, schedule.entries.values.filter { $0.lastError != nil }.count)
        }
        stale.record(unavailable)
        if store.updateJWKS(keys), let path {
            do {
                let data = try JSONSerialization.data(withJSONObject: keys, options: [.sortedKeys])
                try AtomicFile.write(String(decoding: data, as: UTF8.self), to: path)
            } catch {
                logger.warning("cannot keep the key sets for the next start", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// The key sets kept in `path` that are still key sets; none when there is no file.
    static func load(from path: String) -> [String: String]? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String]
        else { return nil }
        return object.filter { JSONWebKeySet.problem($0.value) == nil }
    }

    /// Every tracked URI's state, sorted by URI.
    var statuses: [Status] {
        schedule.withLock { schedule in
            schedule.entries.keys.sorted().map { uri in
                let entry = schedule.entries[uri]!
                return Status(uri: uri, fetchedAt: entry.fetchedAt, failures: entry.failures, lastError: entry.lastError)
            }
        }
    }

    struct FetchError: Error, CustomStringConvertible {
        var description: String
    }
}

/// Runs ``JWKSResolver/check()`` every `interval`.
struct JWKSResolverService: Service {
    let resolver: JWKSResolver
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await resolver.check()
                try? await Task.sleep(for: interval)
            }
        }
    }
}

/// GETs key sets over HTTP/1.1: TLS verified against the system's roots and any roots
/// `--jwks-ca` adds; the body is read up to ``JWKSResolver/maximumBytes``; only 200 is an answer.
struct HTTPJWKSFetcher: JWKSFetcher {
    let tls: NIOSSLContext

    /// A fetcher trusting the system's roots plus the PEM certificates in `extraRootsPEM`.
    init(extraRootsPEM: String?) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let extraRootsPEM {
            configuration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMBytes(Array(extraRootsPEM.utf8)))]
        }
        configuration.applicationProtocols = ["http/1.1"]
        tls = try NIOSSLContext(configuration: configuration)
    }

    func fetch(_ location: JWKSLocation, timeout: Duration) async throws -> String {
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask { try await get(location) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw JWKSResolver.FetchError(description: "no answer within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func get(_ location: JWKSLocation) async throws -> String {
        let isAddress = IPAddress(location.host) != nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: location.host, port: location.port) { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if location.isSecure {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : location.host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: location.target)
            let defaultPort = location.isSecure ? 443 : 80
            let host = location.host.contains(":") ? "[\(location.host)]" : location.host
            head.headers.add(name: "host", value: location.port == defaultPort ? host : "\(host):\(location.port)")
            head.headers.add(name: "accept", value: "application/json")
            head.headers.add(name: "connection", value: "close")
            head.headers.add(name: "user-agent", value: "meshd")
            try await outbound.write(.head(head))
            try await outbound.write(.end(nil))
            var status: HTTPResponseStatus?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = response.status
                case .body(let chunk):
                    guard body.readableBytes + chunk.readableBytes <= JWKSResolver.maximumBytes else {
                        throw JWKSResolver.FetchError(description: "the answer is larger than \(JWKSResolver.maximumBytes) bytes")
                    }
                    body.writeImmutableBuffer(chunk)
                case .end:
                    guard status == .ok else {
                        throw JWKSResolver.FetchError(description: "answered \(status.map { "\($0.code)" } ?? "nothing")")
                    }
                    return String(buffer: body)
                }
            }
            throw JWKSResolver.FetchError(description: "the connection closed before the answer ended")
        }
    }
}
