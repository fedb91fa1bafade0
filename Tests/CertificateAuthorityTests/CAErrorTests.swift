import CertificateAuthority
import Foundation
import Testing

@Suite("CA errors: a typed code, a message, the cause")
struct CAErrorTests {
    @Test("codes show as counters label them; the cause is kept and does not make two errors differ")
    func typed() throws {
        #expect { _ = try CAStore.readCertificates("/nonexistent-\(UUID())/root-cert.pem") } throws: { error in
            guard let error = error as? CAError else { return false }
            return error.code == .storage && "\(error)".hasPrefix("storage: cannot read") && error.cause != nil
        }
        let a = CAError(.ttlTooLong, "x", cause: CocoaError(.fileNoSuchFile))
        #expect(a == CAError(.ttlTooLong, "x") && a.code.rawValue == "ttl_too_long")
    }
}
