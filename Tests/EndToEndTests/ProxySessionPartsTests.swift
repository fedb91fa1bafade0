@testable import ControlPlane
import EnvoyAPI
import Foundation
import Testing
import XDSServer

@Suite("Proxy session parts: secret acknowledgements and renewal back-off (pure)")
struct ProxySessionPartsTests {
    static func secret(_ name: String, _ body: String) -> XDSResource {
        var secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
        secret.name = name
        secret.tlsCertificate.certificateChain.inlineString = body
        return XDSResource(name: name, message: secret)
    }

    static func composition(_ n: Int, root: String = "root-1") -> SecretAcknowledgements.Sent {
        .init(certificate: secret("default", "leaf-\(n)"), root: secret("ROOTCA", root), roots: [root], issuerKey: "signer-\(n)")
    }

    @Test("an acknowledged SDS version says which bundle and which signer's certificate the proxy holds")
    func acknowledgements() {
        var record = SecretAcknowledgements()
        let first = Self.composition(1), second = Self.composition(2, root: "root-2")
        record.composed(first)
        record.composed(first)
        #expect(record.sent.count == 1, "an unchanged composition is remembered once")
        record.composed(second)

        record.acknowledged(version: "not-a-version")
        #expect(record.acknowledgedRoots.isEmpty && record.acknowledgedIssuer == nil)
        // Both secrets in one response (SotW): its version names both.
        record.acknowledged(version: SotWStreamStateMachine.version(of: [first.certificate!, first.root!]))
        #expect(record.acknowledgedRoots == ["root-1"] && record.acknowledgedIssuer == "signer-1")
        // The bundle alone (delta, or a response of one secret).
        record.acknowledged(version: SotWStreamStateMachine.version(of: [second.root!]))
        #expect(record.acknowledgedRoots == ["root-2"] && record.acknowledgedIssuer == "signer-1")
        record.acknowledged(version: SotWStreamStateMachine.version(of: [second.certificate!]))
        #expect(record.acknowledgedIssuer == "signer-2")
    }

    @Test("only the newest compositions are remembered; a composition made meanwhile keeps the acknowledgements")
    func bounded() {
        var record = SecretAcknowledgements()
        for n in 0..<20 { record.composed(Self.composition(n)) }
        #expect(record.sent.count == SecretAcknowledgements.remembered)
        let oldest = Self.composition(0), newest = Self.composition(19)
        record.acknowledged(version: SotWStreamStateMachine.version(of: [oldest.certificate!, oldest.root!]))
        #expect(record.acknowledgedIssuer == nil, "forgotten")

        var stored = record
        stored.acknowledged(version: SotWStreamStateMachine.version(of: [newest.certificate!, newest.root!]))
        var composing = record
        composing.composed(Self.composition(20))
        composing.keepAcknowledgements(of: stored)
        #expect(composing.acknowledgedIssuer == "signer-19")
        #expect(composing.sent.last == Self.composition(20))
    }

    @Test("failed renewals back off 1, 2, 4 … s up to 5 minutes; a success resets and says whether the certificate is new")
    func backoff() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let entry = ProxyCertificates.Entry(
            identity: "spiffe://cluster.local/ns/a/sa/b", chainPEM: [], keyPEM: "", notBefore: now, notAfter: now.addingTimeInterval(86_400),
            serial: "01", issuerKey: "k", rotateAt: nil)
        var holding = CertificateHolding(certificate: entry)
        let delays = (0..<12).map { _ in holding.failed(now: now) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300])
        #expect(holding.retryAt == now.addingTimeInterval(300) && holding.failures == 12)
        let rotatedToSame = holding.renewed(entry)
        #expect(rotatedToSame == false, "the same serial is no rotation")
        #expect(holding.failures == 0 && holding.retryAt == .distantPast)
        var next = entry
        next.serial = "02"
        let rotated = holding.renewed(next)
        #expect(rotated)
        #expect(holding.certificate?.serial == "02")
    }
}
