import CertificateAuthority
import Crypto
import Foundation
import Testing
import XDSTesting

@Suite("Key files survive a crash in the middle of a write")
struct AtomicFileTests {
    @Test("a writer killed with SIGKILL at random moments always leaves one whole key, mode 0600 (durable, and without fsync as for caches)", arguments: ["rewrite-key", "rewrite-cache"])
    func killedWriter(mode: String) async throws {
        let directory = try TestTools.temporaryDirectory("atomic")
        let keyA = P256.Signing.PrivateKey().pemRepresentation
        let keyB = P384.Signing.PrivateKey().pemRepresentation
        try keyA.write(toFile: directory + "/a.pem", atomically: true, encoding: .utf8)
        try keyB.write(toFile: directory + "/b.pem", atomically: true, encoding: .utf8)
        let target = directory + "/ca/root-key.pem"
        try FileManager.default.createDirectory(atPath: directory + "/ca", withIntermediateDirectories: true)
        try AtomicFile.write(keyA, to: target, mode: 0o600)
        var seen: Set<String> = []
        for round in 0..<20 {
            let writer = try ProcessHandle(
                executable: try TestTools.productBinary("meshd-test-helper"),
                arguments: [mode, target, directory + "/a.pem", directory + "/b.pem"], logPath: directory + "/writer-\(round).log")
            try await Eventually.wait(timeout: .seconds(10), what: "the writer to start") { writer.log.contains("writing") }
            try await Task.sleep(for: .milliseconds(Int.random(in: 1...40)))
            await writer.killNow()
            #expect(writer.terminationStatus == 128 + SIGKILL)
            let contents = try String(contentsOfFile: target, encoding: .utf8)
            #expect(contents == keyA || contents == keyB, "round \(round): the key file is torn")
            seen.insert(contents == keyA ? "A" : "B")
            #expect(permissions(target) == 0o600)
        }
        #expect(seen.count == 2, "the writer made progress between kills")
        // A crashed writer may leave its temporary file; the next start removes it.
        AtomicFile.removeLeftovers(in: directory + "/ca")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/ca") == ["root-key.pem"])
    }
}
