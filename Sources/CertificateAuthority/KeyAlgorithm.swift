public import X509
internal import Crypto
internal import _CryptoExtras

/// The key types meshd's CA makes and accepts.
public enum KeyAlgorithm: String, CaseIterable, Sendable, Codable {
    case ecdsaP256 = "ecdsa-p256"
    case ecdsaP384 = "ecdsa-p384"
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"

    /// A new private key of this type.
    public func generate() throws -> Certificate.PrivateKey {
        switch self {
        case .ecdsaP256: return Certificate.PrivateKey(P256.Signing.PrivateKey())
        case .ecdsaP384: return Certificate.PrivateKey(P384.Signing.PrivateKey())
        case .rsa2048: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .rsa3072: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits3072))
        case .rsa4096: return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits4096))
        }
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
        } else {
            self = .unsupported("\(key)")
        }
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
