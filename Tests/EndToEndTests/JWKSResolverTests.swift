@testable import ControlPlane
import Foundation
import Logging
import MeshConfig
import MeshModel
import Metrics
import Synchronization
import Testing

@Suite("Key sets meshd fetches for RequestAuthentications")
struct JWKSResolverTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let keys = #"{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AA","y":"AA"}]}"#

    @Test("the schedule: a new URI is due at once, then every refresh; a failure keeps the keys and retries after min(refresh, 1 min), doubling up to an hour; a URI no longer named is forgotten")
    func schedule() {
        var schedule = JWKSSchedule(refresh: 1200)
        let t0 = Self.start
        schedule.track(["https://a/keys", "https://b/keys"], now: t0)
        #expect(schedule.takeDue(at: t0) == ["https://a/keys", "https://b/keys"])
        schedule.succeeded("https://a/keys", keys: Self.keys, at: t0)
        #expect(schedule.takeDue(at: t0.addingTimeInterval(1199)).isEmpty, "b is in flight, a not due")
        #expect(schedule.takeDue(at: t0.addingTimeInterval(1200)) == ["https://a/keys"])
        var waits: [TimeInterval] = []
        var now = t0
        for _ in 0..<8 {
            schedule.failed("https://a/keys", error: "down", at: now)
            let next = schedule.entries["https://a/keys"]!.nextAttempt
            waits.append(next.timeIntervalSince(now))
            now = next
        }
        #expect(waits == [60, 120, 240, 480, 960, 1920, 3600, 3600])
        #expect(schedule.keys == ["https://a/keys": Self.keys], "the last good keys stay")
        schedule.succeeded("https://a/keys", keys: Self.keys, at: now)
        #expect(schedule.entries["https://a/keys"]?.failures == 0 && schedule.entries["https://a/keys"]?.lastError == nil)
        schedule.track(["https://b/keys"], now: now)
        #expect(schedule.keys.isEmpty && schedule.entries.keys.sorted() == ["https://b/keys"])
        // Without keys yet, no doubling: every min(refresh, 1 min).
        var quick = JWKSSchedule(refresh: 1)
        quick.track(["https://c"], now: t0)
        #expect(quick.takeDue(at: t0) == ["https://c"])
        #expect(quick.takeDue(at: t0).isEmpty, "in flight")
        quick.failed("https://c", error: "down", at: t0)
        quick.failed("https://c", error: "down", at: t0.addingTimeInterval(1))
        #expect(quick.entries["https://c"]!.nextAttempt == t0.addingTimeInterval(2))
    }

    final class FakeFetcher: JWKSFetcher {
        let answers: Mutex<[String: Result<String, JWKSResolver.FetchError>]>
        let calls = Mutex<[String]>([])

        init(answers: [String: Result<String, JWKSResolver.FetchError>]) {
            self.answers = Mutex(answers)
        }

        func fetch(_ location: JWKSLocation, timeout: Duration) async throws -> String {
            calls.withLock { $0.append(location.uri) }
            return try answers.withLock { $0[location.uri] ?? .failure(.init(description: "no answer")) }.get()
        }
    }

    static let policy = """
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: jwt, namespace: shop}
        spec:
          jwtRules:
          - {issuer: a, jwksUri: "https://idp.example.com/keys", timeout: 2s}
          - {issuer: b, jwks: '\(keys)'}
        """

    @Test("a fetched key set is served in a new revision; a failure or an answer that is not a key set keeps the last keys and publishes nothing; http key sets are refused without --jwks-allow-http")
    func resolver() async throws {
        let directory = NSTemporaryDirectory() + "jwks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ConfigStore(logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        let resources = try ResourceDocuments.decode(Self.policy, source: "ra.yaml")
        #expect(store.applyFiles(.success(resources)))
        let fetcher = FakeFetcher(answers: ["https://idp.example.com/keys": .success(Self.keys)])
        let clock = Mutex(Self.start)
        let resolver = JWKSResolver(
            store: store, fetcher: fetcher, refresh: .seconds(60), path: directory + "/jwks.json", clock: { clock.withLock { $0 } },
            logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        await resolver.check()
        #expect(fetcher.calls.withLock { $0 } == ["https://idp.example.com/keys"], "inline keys are not fetched")
        #expect(store.publisher.current.jwks == ["https://idp.example.com/keys": Self.keys])
        #expect(store.revision == 2)
        await resolver.check()
        #expect(fetcher.calls.withLock { $0.count } == 1 && store.revision == 2, "not due, nothing new")

        for answer: Result<String, JWKSResolver.FetchError> in [.failure(.init(description: "connection refused")), .success("<html>login</html>")] {
            fetcher.answers.withLock { $0["https://idp.example.com/keys"] = answer }
            clock.withLock { $0 = $0.addingTimeInterval(3600) }
            await resolver.check()
            #expect(store.publisher.current.jwks == ["https://idp.example.com/keys": Self.keys], "the last keys stay")
            #expect(store.revision == 2)
            #expect(resolver.statuses.first?.lastError != nil)
        }
        #expect(resolver.statuses.map(\.failures) == [2])

        // A restart serves the kept keys from its first snapshot, before any fetch.
        let restarted = ConfigStore(logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        _ = JWKSResolver(
            store: restarted, fetcher: FakeFetcher(answers: [:]), refresh: .seconds(60), path: directory + "/jwks.json", clock: { Self.start },
            logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        #expect(restarted.applyFiles(.success(resources)))
        #expect(restarted.publisher.current.jwks == ["https://idp.example.com/keys": Self.keys])
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/jwks.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let insecure = ConfigStore(logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        let http = try ResourceDocuments.decode(Self.policy.replacingOccurrences(of: "https://idp", with: "http://idp"), source: "ra.yaml")
        #expect(!insecure.applyFiles(.success(http)))
        #expect(insecure.lastRejection?.description.contains("spec.jwtRules[0].jwksUri: keys fetched over plain http") == true, "\(String(describing: insecure.lastRejection))")
        let allowed = ConfigStore(settings: MeshSettings(jwksAllowHTTP: true), logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        #expect(allowed.applyFiles(.success(http)))
        #expect(JWKSResolver.wanted(in: allowed.publisher.current) == ["http://idp.example.com/keys": .seconds(2)])
    }
}
