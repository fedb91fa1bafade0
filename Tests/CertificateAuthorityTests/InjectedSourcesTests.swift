import CertificateAuthority
import Crypto
import Foundation
import Logging
import X509
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

@Suite("The CA's randomness is injected, as its clock")
struct RandomSourceTests {
    @Test("one seeded source, one clock: the same CSR gets the same serial; the system source does not repeat")
    func seededSerials() throws {
        let fixture = try CAFixture()
        let now = Date()
        func serial(_ random: RandomSource) throws -> String {
            let service = CertificateService(
                authority: fixture.authority, options: .init(), ledger: IssuanceLedger(path: fixture.directory + "/issued-\(UUID()).jsonl"),
                clock: { now }, random: random, logger: Logger(label: "test"), metrics: fixture.metrics)
            let issued = try service.sign(csrPEM: try csr(key: Certificate.PrivateKey(P256.Signing.PrivateKey())), requestedTTL: 3600, caller: governor, callerDescription: "t", path: "t")
            return SerialNumbers.hex(issued.leaf.serialNumber)
        }
        #expect(try serial(.seeded(7)) == serial(.seeded(7)))
        #expect(try serial(.seeded(7)) != serial(.seeded(8)))
        #expect(try serial(.system) != serial(.system))
    }

    @Test("ECDSA keys are drawn from the injected source; RSA keys from BoringSSL")
    func keys() throws {
        for algorithm in [KeyAlgorithm.ecdsaP256, .ecdsaP384] {
            var one = RandomSource.seeded(5), two = RandomSource.seeded(5), three = RandomSource.seeded(6)
            let a = try algorithm.generate(using: &one), b = try algorithm.generate(using: &two), c = try algorithm.generate(using: &three)
            #expect(a.publicKey == b.publicKey && a.publicKey != c.publicKey, "\(algorithm)")
            #expect(try algorithm.generate().publicKey != algorithm.generate().publicKey)
        }
    }
}
