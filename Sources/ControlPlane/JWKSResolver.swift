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
/// up to an hour (or the refresh interval, when longer), as istiod does — or, while it has no
/// keys at all, every `min(refresh, 1 min)`.
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
    /// URIs being fetched (not due again until their answer is recorded).
    private(set) var inFlight: Set<String> = []

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

    /// Whether a URI in `uris` is not tracked yet.
    func isMissing(any uris: some Sequence<String>) -> Bool {
        uris.contains { entries[$0] == nil }
    }

    /// The URIs to fetch now, sorted; they are in flight until their answer is recorded.
    mutating func takeDue(at now: Date) -> [String] {
        let due = entries.filter { $0.value.nextAttempt <= now && !inFlight.contains($0.key) }.keys.sorted()
        inFlight.formUnion(due)
        return due
    }

    mutating func succeeded(_ uri: String, keys: String, at now: Date) {
        inFlight.remove(uri)
        guard var entry = entries[uri] else { return }
        entry.keys = keys
        entry.fetchedAt = now
        entry.failures = 0
        entry.lastError = nil
        entry.nextAttempt = now.addingTimeInterval(refresh)
        entries[uri] = entry
    }

    /// A URI with no keys yet is tried again every `min(refresh, 1 min)`: until it answers,
    /// tokens of its issuer are refused.
    mutating func failed(_ uri: String, error: String, at now: Date) {
        inFlight.remove(uri)
        guard var entry = entries[uri] else { return }
        entry.failures += 1
        entry.lastError = error
        let first = min(refresh, 60)
        let wait = entry.keys == nil ? first : min(first * pow(2, Double(min(entry.failures - 1, 20))), max(refresh, 3600))
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
    /// The longest a fetch may take, whatever a rule says (one slow provider must not hold the
    /// others' refreshes for long).
    static let longestTimeout: Duration = .seconds(30)
    /// Set when a snapshot names a URI not tracked yet: the service loop checks at once.
    private let pending = Atomic<Bool>(false)
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
        _ = store.publisher.subscribe { [weak self] snapshot in
            guard let self else { return }
            let uris = Self.wanted(in: snapshot).keys
            if self.schedule.withLock({ $0.isMissing(any: uris) }) { self.pending.store(true, ordering: .releasing) }
        }
    }

    /// The `jwksUri`s the snapshot's RequestAuthentications name, with the longest timeout any of
    /// their rules gives.
    static func wanted(in snapshot: MeshSnapshot) -> [String: Duration] {
        var out: [String: Duration] = [:]
        for policy in snapshot.requestAuthentications {
            for rule in policy.spec.jwtRules ?? [] {
                guard let uri = rule.jwksUri else { continue }
                let timeout = min(rule.timeout.map { Duration.nanoseconds($0.nanoseconds) } ?? defaultTimeout, longestTimeout)
                out[uri] = max(out[uri] ?? .zero, timeout)
            }
        }
        return out
    }

    /// One round: tracks the URIs the served configuration names, fetches those due (at once,
    /// each within its timeout), and serves the key sets if they changed.
    func check() async {
        let wanted = Self.wanted(in: store.publisher.current)
        let now = clock()
        let due = schedule.withLock { schedule in
            schedule.track(Set(wanted.keys), now: now)
            return schedule.takeDue(at: now)
        }
        let outcomes = await withTaskGroup(of: (String, Result<String, any Error>).self) { group in
            for uri in due {
                group.addTask { [fetcher] in (uri, await Self.fetch(uri, timeout: wanted[uri] ?? Self.defaultTimeout, with: fetcher)) }
            }
            var outcomes: [(String, Result<String, any Error>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }
        }
        for (uri, outcome) in outcomes {
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

    /// One key set's document, checked.
    private static func fetch(_ uri: String, timeout: Duration, with fetcher: any JWKSFetcher) async -> Result<String, any Error> {
        guard let location = JWKSLocation(uri) else { return .failure(FetchError(description: "not an http(s) URL")) }
        do {
            let text = try await fetcher.fetch(location, timeout: timeout)
            if let problem = JSONWebKeySet.problem(text) { return .failure(FetchError(description: "the answer \(problem)")) }
            return .success(text)
        } catch {
            return .failure(error)
        }
    }

    /// Returns after `interval`, or sooner when a snapshot names a URI not tracked yet.
    func waitForWork(upTo interval: Duration) async {
        let clock = ContinuousClock()
        let deadline = clock.now + interval
        while clock.now < deadline, !Task.isCancelled {
            if pending.exchange(false, ordering: .acquiringAndReleasing) { return }
            try? await Task.sleep(for: min(.milliseconds(20), deadline - clock.now))
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
                await resolver.waitForWork(upTo: interval)
            }
        }
    }
}

/// GETs key sets over HTTP/1.1: TLS verified against the system's roots and any roots
/// `--jwks-ca` adds (TLS 1.2 with approved suites under `--fips`); redirects followed (at most 5,
/// never from https to http unless `--jwks-allow-http`); the body read up to
/// ``JWKSResolver/maximumBytes``; only 200 is an answer.
struct HTTPJWKSFetcher: JWKSFetcher {
    let tls: NIOSSLContext
    let allowHTTP: Bool

    /// A fetcher trusting the system's roots plus the PEM certificates in `extraRootsPEM`.
    init(extraRootsPEM: String?, allowHTTP: Bool = false, fips: Bool = false) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let extraRootsPEM {
            let roots = try NIOSSLCertificate.fromPEMBytes(Array(extraRootsPEM.utf8))
            guard !roots.isEmpty else { throw JWKSResolver.FetchError(description: "no PEM certificate in it") }
            configuration.additionalTrustRoots = [.certificates(roots)]
        }
        configuration.applicationProtocols = ["http/1.1"]
        if fips { TLSContextHolder.restrictToFIPS(&configuration) }
        tls = try NIOSSLContext(configuration: configuration)
        self.allowHTTP = allowHTTP
    }

    func fetch(_ location: JWKSLocation, timeout: Duration) async throws -> String {
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask {
                var current = location
                for _ in 0...5 {
                    switch try await get(current, connectTimeout: min(timeout, .seconds(5))) {
                    case .body(let text):
                        return text
                    case .redirect(let target):
                        guard let next = JWKSLocation(Self.resolve(target, against: current)) else {
                            throw JWKSResolver.FetchError(description: "redirected to \(target), which is not an http(s) URL")
                        }
                        guard next.isSecure || !current.isSecure || allowHTTP else {
                            throw JWKSResolver.FetchError(description: "redirected from https to \(next.uri); meshd follows that only with --jwks-allow-http")
                        }
                        current = next
                    }
                }
                throw JWKSResolver.FetchError(description: "more than 5 redirects")
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw JWKSResolver.FetchError(description: "no answer within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// A `Location` (absolute, or a path on the same origin) as a URL.
    static func resolve(_ target: String, against base: JWKSLocation) -> String {
        guard target.hasPrefix("/") else { return target }
        let host = base.host.contains(":") ? "[\(base.host)]" : base.host
        return "\(base.isSecure ? "https" : "http")://\(host):\(base.port)\(target)"
    }

    enum Answer {
        case body(String)
        case redirect(String)
    }

    private func get(_ location: JWKSLocation, connectTimeout: Duration) async throws -> Answer {
        let isAddress = IPAddress(location.host) != nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000))
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
            var response: HTTPResponseHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let received):
                    response = received
                case .body(let chunk):
                    guard body.readableBytes + chunk.readableBytes <= JWKSResolver.maximumBytes else {
                        throw JWKSResolver.FetchError(description: "the answer is larger than \(JWKSResolver.maximumBytes) bytes")
                    }
                    body.writeImmutableBuffer(chunk)
                case .end:
                    guard let response else { throw JWKSResolver.FetchError(description: "answered nothing") }
                    if [301, 302, 303, 307, 308].contains(response.status.code), let target = response.headers.first(name: "location") {
                        return .redirect(target)
                    }
                    guard response.status == .ok else { throw JWKSResolver.FetchError(description: "answered \(response.status.code)") }
                    return .body(String(buffer: body))
                }
            }
            throw JWKSResolver.FetchError(description: "the connection closed before the answer ended")
        }
    }
}
