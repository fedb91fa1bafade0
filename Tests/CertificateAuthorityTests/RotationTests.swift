@testable import CertificateAuthority
import Foundation
import Logging
import MeshModel
import MetricsTestKit
import Synchronization
import SwiftASN1
import Testing
import X509
import XDSTesting

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let value: Mutex<Date>
    init(_ start: Date = Date()) { value = Mutex(start) }
    var now: Date { value.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
    var function: @Sendable () -> Date { { self.now } }
}

@Suite("Root rotation phases")
struct RootRotationStepTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func rotation(_ phase: RootRotation.Phase) -> RootRotation {
        var rotation = RootRotation(reason: "test", oldSignerKey: "old", newSignerKey: "new", newRoots: ["B"], now: start)
        rotation.phase = phase
        return rotation
    }

    @Test("phase 1 waits for every connected proxy to acknowledge the new bundle, naming them")
    func distributing() {
        let waiting = rotation(.distributingTrust).step(.init(proxies: [
            .init(id: "a", trustsNewRoots: true, usesNewSigner: false), .init(id: "b", trustsNewRoots: false, usesNewSigner: false),
        ], oldLeaves: []), now: start)
        guard case .wait(let text) = waiting else { Issue.record("expected to wait, got \(waiting)"); return }
        #expect(text.contains("1 of 2") && text.contains("b") && !text.contains("a,"))
        #expect(rotation(.distributingTrust).step(.init(proxies: [.init(id: "a", trustsNewRoots: true, usesNewSigner: false)], oldLeaves: []), now: start) == .advance(.issuingFromNewRoot))
        #expect(rotation(.distributingTrust).step(.init(proxies: [], oldLeaves: []), now: start) == .advance(.issuingFromNewRoot), "no proxy: nothing to wait for")
    }

    @Test("phase 2 waits for new leaves on every proxy and for every other old leaf to expire")
    func issuing() {
        let proxies: [RootRotation.Observation.Proxy] = [.init(id: "a", trustsNewRoots: true, usesNewSigner: true)]
        let valid = RootRotation.Observation.Leaf(serial: "01", identity: "spiffe://cluster.local/ns/x/sa/cron", notAfter: start.addingTimeInterval(60), holder: "grpc-csr")
        let step = rotation(.issuingFromNewRoot).step(.init(proxies: proxies, oldLeaves: [valid]), now: start)
        guard case .wait(let text) = step else { Issue.record("expected to wait, got \(step)"); return }
        #expect(text.contains("1 certificates from the old root") && text.contains("sa/cron"))
        #expect(rotation(.issuingFromNewRoot).step(.init(proxies: proxies, oldLeaves: [valid]), now: start.addingTimeInterval(61)) == .advance(.droppingOldRoot))
        let stale = rotation(.issuingFromNewRoot).step(.init(proxies: [.init(id: "a", trustsNewRoots: true, usesNewSigner: false)], oldLeaves: []), now: start)
        #expect(stale != .advance(.droppingOldRoot))
    }

    @Test("expiry warnings at 30, 7 and 1 days")
    func warnings() {
        let now = start
        #expect(ExpiryWarnings.threshold(notAfter: now.addingTimeInterval(31 * 86400), now: now) == nil)
        #expect(ExpiryWarnings.threshold(notAfter: now.addingTimeInterval(29 * 86400), now: now) == 30)
        #expect(ExpiryWarnings.threshold(notAfter: now.addingTimeInterval(6 * 86400), now: now) == 7)
        #expect(ExpiryWarnings.threshold(notAfter: now.addingTimeInterval(3600), now: now) == 1)
    }

    @Test("each certificate is warned about once per threshold, in its role")
    func warningsOnce() throws {
        var generator = SystemRandomNumberGenerator()
        let root = try SigningAuthority.makeSelfSignedRoot(algorithm: .ecdsaP256, trustDomain: "cluster.local", now: start, validity: 40 * 86400, generator: &generator)
        let authority = try SigningAuthority(certificate: root.certificate, privateKey: root.key, chain: [], roots: [root.certificate], mode: .selfSigned)
        var warnings = ExpiryWarnings()
        #expect(warnings.due(for: authority, now: start).isEmpty, "40 days left")
        let first = warnings.due(for: authority, now: start.addingTimeInterval(11 * 86400))
        #expect(first.map(\.role) == ["signing certificate"] && first.map(\.days) == [30], "the root signs: one certificate, warned once")
        #expect(warnings.due(for: authority, now: start.addingTimeInterval(12 * 86400)).isEmpty, "same threshold: no second warning")
        #expect(warnings.due(for: authority, now: start.addingTimeInterval(34 * 86400)).map(\.days) == [7])
        #expect(warnings.due(for: authority, now: start.addingTimeInterval(39.5 * 86400)).map(\.days) == [1])
        #expect(warnings.due(for: authority, now: start.addingTimeInterval(39.6 * 86400)).isEmpty)
    }

    @Test("the plug-in watch reports changed files until their state is accepted, and a removed file")
    func pluginWatch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in PluginDirectoryWatch.files { try Data("a".utf8).write(to: URL(fileURLWithPath: directory + "/" + name)) }
        var watch = PluginDirectoryWatch(directory: directory)
        #expect(watch.change() == nil)
        try Data("longer".utf8).write(to: URL(fileURLWithPath: directory + "/ca-cert.pem"))
        let changed = try #require(watch.change())
        #expect(watch.change() == changed, "reported until accepted")
        watch.accept(changed)
        #expect(watch.change() == nil)
        try FileManager.default.removeItem(atPath: directory + "/cert-chain.pem")
        #expect(watch.change()?.contains("cert-chain.pem:missing") == true)
    }

    @Test("failures in a row back off 1, 2, 4 s; a success ends the streak")
    func failureStreak() {
        var streak = FailureStreak()
        #expect(streak.allows(start))
        #expect(streak.failed(at: start) == 1 && !streak.allows(start.addingTimeInterval(0.5)) && streak.allows(start.addingTimeInterval(1)))
        #expect(streak.failed(at: start) == 2 && streak.failed(at: start) == 4)
        streak.succeeded()
        #expect(streak.allows(start) && streak.failed(at: start) == 1)
    }
}

@Suite("The CA over time: rotation, resume, renewal, plug-in reload")
struct CALifecycleTests {
    static func lifecycle(_ data: String, clock: TestClock, source: CALifecycle.Source = .selfSigned(algorithm: .ecdsaP256, trustDomain: "cluster.local"), metrics: TestMetrics = TestMetrics()) throws -> CALifecycle {
        try CALifecycle(dataDirectory: data, source: source, clock: clock.function, logger: Logger(label: "test"), metrics: metrics)
    }

    static let everyoneAcked = RootRotation.Observation(proxies: [.init(id: "p", trustsNewRoots: true, usesNewSigner: true)], oldLeaves: [])

    @Test("a self-signed rotation: A+B trusted, then leaves from B, then B alone; files, cross-signature and resume after restarts")
    func selfSigned() async throws {
        let data = try TestTools.temporaryDirectory("rotation")
        let clock = TestClock()
        let ca = try Self.lifecycle(data, clock: clock)
        let a = ca.authority
        #expect(ca.tick { .init(proxies: [], oldLeaves: []) } == nil, "nothing to do without a rotation")

        let started = try ca.startRootRotation()
        #expect(started.trustChanged && !started.signerChanged)
        #expect(started.authority.roots.count == 2 && started.authority.keyID == a.keyID, "phase 1: bundle A+B, signer A")
        #expect(throws: CAError.self) { try ca.startRootRotation() }
        let b = try #require(started.authority.roots.last)
        #expect(b.subject != a.certificate.subject, "two roots never share a subject")
        #expect(FileManager.default.fileExists(atPath: data + "/ca/rotation/state.json"))
        #expect(permissions(data + "/ca/rotation/next/ca-key.pem") == 0o600)

        // A proxy has not acknowledged: phase 1 holds, also across a restart.
        #expect(ca.tick { .init(proxies: [.init(id: "slow", trustsNewRoots: false, usesNewSigner: false)], oldLeaves: []) } == nil)
        #expect(ca.rotation?.waitingFor.contains("slow") == true)
        let resumed = try Self.lifecycle(data, clock: clock)
        #expect(resumed.rotation?.phase == RootRotation.Phase.distributingTrust.rawValue)
        #expect(resumed.authority.roots == started.authority.roots && resumed.authority.keyID == a.keyID)

        let phase2 = try #require(resumed.tick { Self.everyoneAcked })
        #expect(phase2.signerChanged && !phase2.trustChanged)
        #expect(phase2.authority.keyID == SigningAuthority.keyID(b.publicKey) && phase2.authority.roots.count == 2)
        let again = try Self.lifecycle(data, clock: clock)
        #expect(again.rotation?.phase == RootRotation.Phase.issuingFromNewRoot.rawValue && again.authority.keyID == phase2.authority.keyID)

        let done = try #require(again.tick { Self.everyoneAcked })
        #expect(done.trustChanged && done.authority.roots == [b])
        #expect(again.rotation == nil && !FileManager.default.fileExists(atPath: data + "/ca/rotation"))
        #expect(try CAStore.readCertificates(data + "/ca/root-cert.pem") == [b])
        #expect(permissions(data + "/ca/root-key.pem") == 0o600)
        let afterRestart = try Self.lifecycle(data, clock: clock)
        #expect(afterRestart.authority.roots == [b] && afterRestart.authority.keyID == SigningAuthority.keyID(b.publicKey))

        // A client that trusts only A verifies a leaf from B through B signed by A.
        let cross = try #require(afterRestart.crossSigned.first)
        #expect(cross.subject == b.subject && cross.issuer == a.certificate.subject && cross.publicKey == b.publicKey)
        let key = try KeyAlgorithm.ecdsaP256.generate()
        var generator = SystemRandomNumberGenerator()
        let leaf = try afterRestart.authority.issueServerCertificate(
            publicKey: key.publicKey, dnsNames: ["meshd.istio-system.svc"], ipAddresses: [], ttl: 3600, now: Date(), generator: &generator)
        try leaf.serializeAsPEM().pemString.write(toFile: data + "/leaf.pem", atomically: true, encoding: .utf8)
        try cross.serializeAsPEM().pemString.write(toFile: data + "/cross.pem", atomically: true, encoding: .utf8)
        try a.certificate.serializeAsPEM().pemString.write(toFile: data + "/a.pem", atomically: true, encoding: .utf8)
        try b.serializeAsPEM().pemString.write(toFile: data + "/b.pem", atomically: true, encoding: .utf8)
        let viaA = try await openssl(["verify", "-CAfile", data + "/a.pem", "-untrusted", data + "/cross.pem", data + "/leaf.pem"], in: data)
        #expect(viaA.0 == 0, "\(viaA.1)")
        let viaB = try await openssl(["verify", "-CAfile", data + "/b.pem", "-untrusted", data + "/cross.pem", data + "/leaf.pem"], in: data)
        #expect(viaB.0 == 0, "\(viaB.1)")
        let withoutCross = try await openssl(["verify", "-CAfile", data + "/a.pem", data + "/leaf.pem"], in: data)
        #expect(withoutCross.0 != 0, "A alone must not verify a leaf from B")
        try? FileManager.default.removeItem(atPath: data)
    }

    @Test("a crash while dropping the old root is finished by the next start")
    func crashWhileDropping() throws {
        let data = try TestTools.temporaryDirectory("rotation-crash")
        let clock = TestClock()
        let ca = try Self.lifecycle(data, clock: clock)
        let b = try #require(try ca.startRootRotation().authority.roots.last)
        _ = ca.tick { Self.everyoneAcked }
        // Simulate a crash right after phase 3 was recorded, before any file was copied.
        var state = try JSONDecoder.iso.decode(RootRotation.self, from: Data(contentsOf: URL(fileURLWithPath: data + "/ca/rotation/state.json")))
        state.phase = .droppingOldRoot
        try JSONEncoder.iso.encode(state).write(to: URL(fileURLWithPath: data + "/ca/rotation/state.json"))
        let restarted = try Self.lifecycle(data, clock: clock)
        #expect(restarted.rotation == nil && restarted.authority.roots == [b])
        #expect(!FileManager.default.fileExists(atPath: data + "/ca/rotation"))
        try? FileManager.default.removeItem(atPath: data)
    }

    @Test("a self-signed root with 20 % of its life left is re-signed with the same key")
    func renewal() throws {
        let data = try TestTools.temporaryDirectory("renewal")
        let clock = TestClock()
        let ca = try Self.lifecycle(data, clock: clock)
        let original = ca.authority.certificate
        #expect(ca.tick { Self.everyoneAcked } == nil)
        clock.advance(original.notValidAfter.timeIntervalSince(clock.now) * 0.81)
        let update = try #require(ca.tick { Self.everyoneAcked })
        #expect(update.trustChanged && !update.signerChanged)
        let renewed = update.authority.certificate
        #expect(renewed.publicKey == original.publicKey && renewed.subject == original.subject)
        #expect(renewed.notValidAfter > original.notValidAfter && renewed.serialNumber != original.serialNumber)
        #expect(try CAStore.readCertificates(data + "/ca/root-cert.pem") == [renewed])
        try? FileManager.default.removeItem(atPath: data)
    }

    @Test("plug-in files: a new intermediate is picked up at once; a new root goes through the phases; unusable files change nothing and are retried with back-off")
    func pluggedIn() throws {
        let data = try TestTools.temporaryDirectory("plugin")
        let plugin = data + "/cacerts"
        let first = try PluginCA.write(to: plugin, name: "first")
        let clock = TestClock()
        let metrics = TestMetrics()
        let ca = try Self.lifecycle(data, clock: clock, source: .pluggedIn(directory: plugin), metrics: metrics)
        #expect(ca.authority.keyID == first.signer.keyID)
        #expect(throws: CAError.self) { try ca.startRootRotation() }

        // Same root, new intermediate.
        let second = try PluginCA.write(to: plugin, root: first.root, name: "second")
        let swapped = try #require(ca.tick { Self.everyoneAcked })
        #expect(swapped.signerChanged && !swapped.trustChanged && swapped.authority.keyID == second.signer.keyID)

        // Unusable files: counted, the CA stays, retried after the back-off.
        try "not a key".write(toFile: plugin + "/ca-key.pem", atomically: true, encoding: .utf8)
        #expect(ca.tick { Self.everyoneAcked } == nil)
        #expect(try metrics.expectCounter("meshd_ca_reload_failures_total").totalValue == 1)
        #expect(ca.authority.keyID == second.signer.keyID)
        #expect(ca.tick { Self.everyoneAcked } == nil)
        #expect(try metrics.expectCounter("meshd_ca_reload_failures_total").totalValue == 1, "waits for its back-off before retrying")
        clock.advance(1.5)
        #expect(ca.tick { Self.everyoneAcked } == nil)
        #expect(try metrics.expectCounter("meshd_ca_reload_failures_total").totalValue == 2)

        // A new root: phase 1 keeps signing with the old intermediate.
        let third = try PluginCA.write(to: plugin, name: "third")
        clock.advance(5)
        let phase1 = try #require(ca.tick { .init(proxies: [.init(id: "p", trustsNewRoots: false, usesNewSigner: false)], oldLeaves: []) })
        #expect(phase1.trustChanged && phase1.authority.keyID == second.signer.keyID && phase1.authority.roots.count == 2)
        #expect(FileManager.default.fileExists(atPath: data + "/ca/rotation/previous/ca-key.pem"))
        let resumed = try Self.lifecycle(data, clock: clock, source: .pluggedIn(directory: plugin))
        #expect(resumed.rotation != nil && resumed.authority.keyID == second.signer.keyID)
        let phase2 = try #require(resumed.tick { Self.everyoneAcked })
        #expect(phase2.signerChanged && phase2.authority.keyID == third.signer.keyID)
        let done = try #require(resumed.tick { Self.everyoneAcked })
        #expect(done.authority.roots == [third.root.certificate] && resumed.rotation == nil)
        try? FileManager.default.removeItem(atPath: data)
    }
}

@Suite("The renewal job's directory")
struct RenewalDirectoryTests {
    @Test("files are links into a versioned directory swapped in one step; plain files are adopted unchanged; leftovers of a crash are removed")
    func layout() throws {
        let path = try TestTools.temporaryDirectory("renewal-dir")
        let directory = RenewalDirectory(path: path)
        let fixture = try CAFixture()
        let first = try fixture.service.issueWithNewKey(identity: governor, caller: "test")
        let chain = try first.certificate.chainPEM()
        // Plain files written by hand.
        try first.keyPEM.write(toFile: path + "/key.pem", atomically: true, encoding: .utf8)
        try chain[0].write(toFile: path + "/cert-chain.pem", atomically: true, encoding: .utf8)
        try chain[1].write(toFile: path + "/root-cert.pem", atomically: true, encoding: .utf8)
        #expect(directory.contents()?.leaf == first.certificate.leaf)

        let second = try fixture.service.issueWithNewKey(identity: governor, caller: "test")
        var swappedWhileOld: Bool? = nil
        try directory.commit(keyPEM: second.keyPEM, chainPEM: try second.certificate.chainPEM()[0], rootPEM: chain[1], now: Date()) {
            swappedWhileOld = directory.contents()?.leaf == first.certificate.leaf
        }
        #expect(swappedWhileOld == true, "until the swap the old files are current")
        #expect(directory.contents()?.leaf == second.certificate.leaf)
        for file in ["key.pem", "cert-chain.pem", "root-cert.pem"] {
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: path + "/" + file)) == "..data/" + file)
        }
        let version = try FileManager.default.destinationOfSymbolicLink(atPath: path + "/..data")
        #expect(permissions(path + "/" + version + "/key.pem") == 0o600)

        // A crash after writing a version and before the swap leaves a stray directory.
        try FileManager.default.createDirectory(atPath: path + "/..stray", withIntermediateDirectories: false)
        try "partial".write(toFile: path + "/..stray/key.pem", atomically: true, encoding: .utf8)
        #expect(directory.contents()?.leaf == second.certificate.leaf)
        let third = try fixture.service.issueWithNewKey(identity: governor, caller: "test")
        try directory.commit(keyPEM: third.keyPEM, chainPEM: try third.certificate.chainPEM()[0], rootPEM: chain[1], now: Date())
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasPrefix("..") }.sorted()
        #expect(names.count == 2 && names.contains("..data") && !names.contains("..stray"), "\(names)")
        try? FileManager.default.removeItem(atPath: path)
    }

    @Test("the renewal point counts from issuance, not from the backdated notBefore")
    func renewalPoint() throws {
        let fixture = try CAFixture(defaultTTL: 60)
        let issued = try fixture.service.issueWithNewKey(identity: governor, caller: "test").certificate.leaf
        let point = RenewalDirectory.renewalPoint(of: issued, remaining: 0.5)
        #expect(abs(point.timeIntervalSince(issued.notValidAfter) + 30) < 1.5, "\(point) vs \(issued.notValidAfter)")
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

extension JSONEncoder {
    static var iso: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
