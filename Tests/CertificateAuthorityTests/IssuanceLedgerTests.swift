import CertificateAuthority
import Foundation
import Testing
import XDSTesting

@Suite("The issuance ledger")
struct IssuanceLedgerTests {
    @Test("entries are written as JSON lines (0600) and read back exactly, whatever characters the caller has")
    func roundTrip() throws {
        let directory = try TestTools.temporaryDirectory("ledger")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = IssuanceLedger(path: directory + "/issued.jsonl")
        let notBefore = Date(timeIntervalSince1970: 1_795_000_000)
        let entries = [
            IssuanceLedger.Entry(serial: "0a1b", identity: "spiffe://cluster.local/ns/a/sa/b", notBefore: notBefore, notAfter: notBefore.addingTimeInterval(86400), caller: "proxy:sidecar~127.0.0.1~a.b~b.svc.cluster.local", path: "sds", issuerKey: "ff00"),
            IssuanceLedger.Entry(serial: "ff", identity: "spiffe://cluster.local/ns/x/sa/y", notBefore: notBefore, notAfter: notBefore.addingTimeInterval(60), caller: "quote \" backslash \\ newline \n tab \t bell \u{07} é", path: "rest-csr"),
        ]
        for entry in entries { try ledger.append(entry) }
        #expect(ledger.entries() == entries)
        let text = try String(contentsOfFile: ledger.path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2, "one line per entry")
        #expect(text.contains(#""notBefore":"2026-11-18T"#), "RFC 3339 UTC times: \(text)")
        let attributes = try FileManager.default.attributesOfItem(atPath: ledger.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
