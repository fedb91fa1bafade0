import CertificateAuthority
import Testing

@Suite("One retry back-off for the CA's steps and proxies' renewals")
struct RetryBackoffTests {
    @Test("1, 2, 4 … seconds after consecutive failures, at most the maximum")
    func doubling() {
        #expect((1...5).map { RetryBackoff.delay(afterFailures: $0) } == [1, 2, 4, 8, 16])
        #expect(RetryBackoff.delay(afterFailures: 20) == 300)
        #expect(RetryBackoff.delay(afterFailures: 12, maximum: 60) == 60)
        #expect(RetryBackoff.delay(afterFailures: 0) == 1, "never less than a second")
    }
}
