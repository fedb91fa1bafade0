import CertificateAuthority
import Crypto
import Foundation
import Logging
import MetricsTestKit
import MeshModel
import SwiftASN1
import Testing
import X509
import XDSTesting
import _CryptoExtras

/// One test per refused CSR: each asserts the refusal code and its counter.
@Suite("CSRs are refused unless they ask for exactly the caller's identity")
struct CSRPolicyTests {
    let key = Certificate.PrivateKey(P256.Signing.PrivateKey())

    func refused(_ fixture: CAFixture, _ pem: String, ttl: Int64 = 0) -> String? {
        do {
            _ = try fixture.service.sign(csrPEM: pem, requestedTTL: ttl, caller: governor, callerDescription: "test", path: "test")
            return nil
        } catch {
            return error.code.rawValue
        }
    }

    @Test("a CSR with the caller's identity, or with no SAN at all, is signed for the caller")
    func accepted() throws {
        let fixture = try CAFixture()
        for pem in [try csr(key: key, sans: [.uniformResourceIdentifier(governor.uri)]), try csr(key: key)] {
            let issued = try fixture.service.sign(csrPEM: pem, requestedTTL: 0, caller: governor, callerDescription: "test", path: "test")
            #expect(try issued.leaf.extensions.subjectAlternativeNames == SubjectAlternativeNames([.uniformResourceIdentifier(governor.uri)]))
        }
        #expect(try fixture.metrics.expectCounter("citadel_server_csr_count").totalValue == 2)
        #expect(try fixture.metrics.expectCounter("citadel_server_success_cert_issuance_count").totalValue == 2)
    }

    @Test("a PEM with 76-character lines and CRLF line ends (as Go and OpenSSL accept) is signed; a body that is not base64 is refused")
    func lineLengths() throws {
        let fixture = try CAFixture()
        let pem = try csr(key: key, sans: [.uniformResourceIdentifier(governor.uri)])
        let lines = pem.split(separator: "\n").map(String.init)
        let body = lines.dropFirst().dropLast().joined()
        var rewrapped: [String] = []
        var rest = Substring(body)
        while !rest.isEmpty {
            rewrapped.append(String(rest.prefix(76)))
            rest = rest.dropFirst(76)
        }
        #expect(rewrapped.first?.count == 76)
        let wide = ([lines[0]] + rewrapped + [lines[lines.count - 1]]).joined(separator: "\r\n") + "\r\n"
        let issued = try fixture.service.sign(csrPEM: wide, requestedTTL: 0, caller: governor, callerDescription: "test", path: "test")
        #expect(try issued.leaf.extensions.subjectAlternativeNames == SubjectAlternativeNames([.uniformResourceIdentifier(governor.uri)]))
        let broken = ([lines[0], "!!not base64!!"] + [lines[lines.count - 1]]).joined(separator: "\n")
        #expect(refused(fixture, broken) == "bad_pem")
    }

    @Test("another identity's URI SAN")
    func otherIdentity() throws {
        let fixture = try CAFixture()
        #expect(refused(fixture, try csr(key: key, sans: [.uniformResourceIdentifier("spiffe://cluster.local/ns/tai-system/sa/coordinator")])) == "identity_mismatch")
        #expect(fixture.refusals("identity_mismatch") == 1)
    }

    @Test("more than one URI SAN")
    func twoURIs() throws {
        let fixture = try CAFixture()
        let pem = try csr(key: key, sans: [.uniformResourceIdentifier(governor.uri), .uniformResourceIdentifier("spiffe://cluster.local/ns/x/sa/y")])
        #expect(refused(fixture, pem) == "multiple_uri_sans")
        #expect(fixture.refusals("multiple_uri_sans") == 1)
    }

    @Test("DNS, IP and email SANs", arguments: ["dns", "ip", "email"])
    func otherSANs(kind: String) throws {
        let fixture = try CAFixture()
        let name: GeneralName = switch kind {
        case "dns": .dnsName("governor.example.com")
        case "ip": .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))
        default: .rfc822Name("ops@example.com")
        }
        #expect(refused(fixture, try csr(key: key, sans: [.uniformResourceIdentifier(governor.uri), name])) == "forbidden_san")
        #expect(fixture.refusals("forbidden_san") == 1)
    }

    @Test("CA:true")
    func certificateAuthority() throws {
        let fixture = try CAFixture()
        #expect(refused(fixture, try csr(key: key, certificateAuthority: true)) == "ca_requested")
        #expect(fixture.refusals("ca_requested") == 1)
    }

    @Test("RSA below 2048 bits")
    func weakRSA() async throws {
        let fixture = try CAFixture()
        let (status, _) = try await openssl(["req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", fixture.directory + "/weak.key", "-subj", "/", "-out", fixture.directory + "/weak.csr"], in: fixture.directory)
        #expect(status == 0)
        #expect(refused(fixture, try String(contentsOfFile: fixture.directory + "/weak.csr", encoding: .utf8)) == "weak_key")
        #expect(fixture.refusals("weak_key") == 1)
    }

    @Test("an unsupported key (Ed25519)")
    func unsupportedKey() async throws {
        let fixture = try CAFixture()
        let (status, output) = try await openssl(["req", "-new", "-newkey", "ed25519", "-nodes", "-keyout", fixture.directory + "/ed.key", "-subj", "/", "-out", fixture.directory + "/ed.csr"], in: fixture.directory)
        #expect(status == 0, "\(output)")
        #expect(refused(fixture, try String(contentsOfFile: fixture.directory + "/ed.csr", encoding: .utf8)) == "unsupported_key")
        #expect(fixture.refusals("unsupported_key") == 1)
    }

    @Test("a bad signature")
    func badSignature() throws {
        let fixture = try CAFixture()
        var document = try PEMDocument(pemString: try csr(key: key))
        var der = document.derBytes
        der[der.count - 5] ^= 0x5a  // inside the signature value
        document = PEMDocument(type: document.discriminator, derBytes: der)
        #expect(refused(fixture, document.pemString) == "bad_signature")
        #expect(fixture.refusals("bad_signature") == 1)
    }

    @Test("a PEM over 64 KiB is refused before parsing")
    func oversized() throws {
        let fixture = try CAFixture()
        let padding = String(repeating: "# padding\n", count: 7000)
        #expect(refused(fixture, padding + (try csr(key: key))) == "too_large")
        #expect(fixture.refusals("too_large") == 1)
    }

    @Test("a TTL above the maximum")
    func tooLong() throws {
        let fixture = try CAFixture()
        #expect(refused(fixture, try csr(key: key), ttl: 100 * 86400) == "ttl_too_long")
        #expect(fixture.refusals("ttl_too_long") == 1)
    }

    @Test("garbage and other PEM types")
    func notACSR() throws {
        let fixture = try CAFixture()
        #expect(refused(fixture, "hello") == "bad_pem")
        #expect(refused(fixture, try fixture.authority.certificate.serializeAsPEM().pemString) == "bad_pem")
        #expect(fixture.refusals("bad_pem") == 2)
    }
}
