public import X509
internal import SwiftASN1
internal import Crypto
internal import _CryptoExtras

/// The key types meshd's CA makes and accepts.
public enum KeyAlgorithm: String, CaseIterable, Sendable, Codable {
    case ecdsaP256 = "ecdsa-p256"
    case ecdsaP384 = "ecdsa-p384"
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"

    /// A new private key of this type, from the system's generator.
    public func generate() throws -> Certificate.PrivateKey {
        var generator = RandomSource.system
        return try generate(using: &generator)
    }

    /// A new private key of this type. ECDSA keys are a uniformly random scalar drawn from
    /// `generator` (rejection sampling, as key generation does; several times faster than
    /// BoringSSL's generate-and-self-test path); RSA keys come from BoringSSL's own generator,
    /// which cannot be given another.
    public func generate(using generator: inout some RandomNumberGenerator) throws -> Certificate.PrivateKey {
        switch self {
        case .ecdsaP256:
            if let key = Self.scalarKey(bytes: 32, using: &generator, P256.Signing.PrivateKey.init(rawRepresentation:)) { return Certificate.PrivateKey(key) }
            return Certificate.PrivateKey(P256.Signing.PrivateKey())
        case .ecdsaP384:
            if let key = Self.scalarKey(bytes: 48, using: &generator, P384.Signing.PrivateKey.init(rawRepresentation:)) { return Certificate.PrivateKey(key) }
            return Certificate.PrivateKey(P384.Signing.PrivateKey())
        case .rsa2048: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .rsa3072: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits3072))
        case .rsa4096: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits4096))
        }
    }

    /// A key from a random scalar of `bytes` bytes, drawn again while it is out of range (zero
    /// or not below the group order); `nil` after 16 draws, which happens with probability
    /// below 2^-500.
    private static func scalarKey<Key>(bytes: Int, using generator: inout some RandomNumberGenerator, _ make: ([UInt8]) throws -> Key) -> Key? {
        for _ in 0..<16 {
            let scalar = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if let key = try? make(scalar) { return key }
        }
        return nil
    }

    /// Whether keys of this type are RSA keys (which may carry keyEncipherment).
    public var isRSA: Bool {
        switch self {
        case .rsa2048, .rsa3072, .rsa4096: true
        default: false
        }
    }
}

/// What kind of public key a certificate or CSR carries.
public enum PublicKeyKind: Equatable, Sendable {
    case ecdsaP256
    case ecdsaP384
    case rsa(bits: Int)
    case unsupported(String)

    /// Classifies a public key.
    public init(_ key: Certificate.PublicKey) {
        if P256.Signing.PublicKey(key) != nil {
            self = .ecdsaP256
        } else if P384.Signing.PublicKey(key) != nil {
            self = .ecdsaP384
        } else if let rsa = _RSA.Signing.PublicKey(key) {
            self = .rsa(bits: rsa.keySizeInBits)
        } else if let bits = Self.rsaModulusBits(Array(key.subjectPublicKeyInfoBytes)) {
            // An RSA key swift-crypto will not load (below 2048 bits): still name it as RSA.
            self = .rsa(bits: bits)
        } else {
            self = .unsupported("\(key)")
        }
    }

    /// The modulus size of an RSA SubjectPublicKeyInfo, read straight from its DER.
    static func rsaModulusBits(_ spki: [UInt8]) -> Int? {
        let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
        guard let root = try? DER.parse(spki), case .constructed(let parts) = root.content else { return nil }
        var iterator = parts.makeIterator()
        guard let algorithm = iterator.next(), let keyBits = iterator.next(),
              case .constructed(let algorithmParts) = algorithm.content,
              let oidNode = algorithmParts.first(where: { _ in true }),
              let oid = try? ASN1ObjectIdentifier(derEncoded: oidNode), oid == rsaEncryption,
              let bitString = try? ASN1BitString(derEncoded: keyBits),
              let key = try? DER.parse(Array(bitString.bytes)), case .constructed(let keyParts) = key.content,
              let modulusNode = keyParts.first(where: { _ in true }), case .primitive(let modulus) = modulusNode.content
        else { return nil }
        let significant = modulus.drop(while: { $0 == 0 })
        guard let first = significant.first else { return nil }
        return (significant.count - 1) * 8 + (8 - first.leadingZeroBitCount)
    }

    /// Whether the key is RSA.
    public var isRSA: Bool {
        if case .rsa = self { return true }
        return false
    }

    /// The signature algorithm an issuer with this key type signs with.
    public var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .ecdsaP384: .ecdsaWithSHA384
        case .rsa: .sha256WithRSAEncryption
        default: .ecdsaWithSHA256
        }
    }
}
