import CertificateAuthority
import ControlPlane
import Foundation
import Testing

@Suite("The control plane's time and randomness are injected")
struct ControlPlaneSourcesTests {
    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("meshd-sources-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("tokens and the admin token come from the injected source: one seed, the same tokens; the system source never repeats")
    func tokens() throws {
        let (a, b, c) = (try Self.directory(), try Self.directory(), try Self.directory())
        defer { for path in [a, b, c] { try? FileManager.default.removeItem(atPath: path) } }
        let first = try TokenAuthority(dataDirectory: a, random: .seeded(3)).mint(namespace: "web", serviceAccount: "web", ttl: nil).token
        let second = try TokenAuthority(dataDirectory: b, random: .seeded(3)).mint(namespace: "web", serviceAccount: "web", ttl: nil).token
        let other = try TokenAuthority(dataDirectory: c, random: .system).mint(namespace: "web", serviceAccount: "web", ttl: nil).token
        #expect(first == second && first != other && first.hasPrefix("mdt_"))
        _ = try AdminCredential.loadOrCreate(dataDirectory: a, random: .seeded(9))
        _ = try AdminCredential.loadOrCreate(dataDirectory: b, random: .seeded(9))
        let adminA = try String(contentsOfFile: a + "/admin-token", encoding: .utf8)
        #expect(adminA == (try String(contentsOfFile: b + "/admin-token", encoding: .utf8)) && adminA.hasPrefix("mda_"))
    }

    @Test("the audit log stamps entries with the injected clock")
    func auditClock() throws {
        let path = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = AuditLog(dataDirectory: path, clock: { Date(timeIntervalSince1970: 1_800_000_000) })
        #expect(log.append(who: "admin", action: "token.create", target: "x", result: "ok"))
        let line = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(line.contains("\"time\":\"2027-01-15T08:00:00Z\""), "\(line)")
    }
}
