public import Foundation

/// A core `v1` Secret that holds a gateway credential, as Kubernetes writes it: `type`
/// (`kubernetes.io/tls`, or `Opaque` with Istio's generic keys), `data` (base64) and `stringData`
/// (plain text, folded into `data`).
///
/// The bytes never appear in descriptions, so a log line or error that prints a resource cannot
/// leak a key.
public struct CredentialSecret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The keys meshd reads, by role: Kubernetes' TLS names first, Istio's generic names second.
    public static let certificateKeys = ["tls.crt", "cert"]
    public static let privateKeyKeys = ["tls.key", "key"]
    public static let caKeys = ["ca.crt", "cacert"]
    /// The types meshd accepts.
    public static let types = ["kubernetes.io/tls", "Opaque"]

    /// `kubernetes.io/tls` or `Opaque`.
    public var type: String
    /// The values by key.
    public var data: [String: [UInt8]]

    /// A secret from its parts.
    public init(type: String = "kubernetes.io/tls", data: [String: [UInt8]]) {
        self.type = type
        self.data = data
    }

    /// The certificate chain, PEM (`tls.crt` or `cert`).
    public var certificateChain: [UInt8]? { Self.first(of: Self.certificateKeys, in: data) }
    /// The private key, PEM (`tls.key` or `key`).
    public var privateKey: [UInt8]? { Self.first(of: Self.privateKeyKeys, in: data) }
    /// The certificates client certificates are checked against, PEM (`ca.crt` or `cacert`).
    public var caCertificates: [UInt8]? { Self.first(of: Self.caKeys, in: data) }

    private static func first(of keys: [String], in data: [String: [UInt8]]) -> [UInt8]? {
        keys.lazy.compactMap { data[$0] }.first
    }

    /// Type and key names only.
    public var description: String { "Secret(type: \(type), keys: \(data.keys.sorted().joined(separator: ", ")))" }
    public var debugDescription: String { description }
    /// Reflection (`dump`) shows the description, not the bytes.
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }

    /// Reads the body of a Secret document (every member but `apiVersion`, `kind` and
    /// `metadata`) strictly, at `path`.
    public init(config source: ConfigValue, at path: FieldPath) throws(SchemaError) {
        let reader = try ObjectReader(source, at: path, type: "Secret", fields: ["type", "data", "stringData", "immutable"])
        if let immutable: Bool = try reader.optional("immutable"), immutable {
            throw SchemaError(path: path.appending("immutable"), reason: "immutable Secrets are not supported; rotate a credential by replacing its Secret")
        }
        type = try reader.optional("type") ?? "Opaque"
        guard Self.types.contains(type) else {
            throw SchemaError(path: path.appending("type"), reason: "meshd holds TLS credentials only: type kubernetes.io/tls (or Opaque with Istio's keys cert, key, cacert); found \"\(type)\"")
        }
        let known = Self.certificateKeys + Self.privateKeyKeys + Self.caKeys
        var data: [String: [UInt8]] = [:]
        let encoded: [String: String] = try reader.optional("data") ?? [:]
        for key in encoded.keys.sorted() {
            // The value is never echoed: it may be a private key.
            guard let bytes = Data(base64Encoded: encoded[key]!) else {
                throw SchemaError(path: path.appending("data").appending(key), reason: "not base64 (data values are base64; put plain PEM under stringData)")
            }
            data[key] = Array(bytes)
        }
        let plain: [String: String] = try reader.optional("stringData") ?? [:]
        for (key, value) in plain { data[key] = Array(value.utf8) }
        for key in data.keys.sorted() where !known.contains(key) {
            let member = plain[key] != nil ? "stringData" : "data"
            throw SchemaError(path: path.appending(member).appending(key), reason: "meshd reads only \(known.joined(separator: ", ")); remove this key")
        }
        self.data = data
    }

    /// The body in its YAML/JSON shape: `type` and `data` (base64, keys sorted).
    public var configValue: ConfigValue {
        .object(ConfigObject([
            ("type", .string(type)),
            ("data", .object(ConfigObject(data.keys.sorted().map { ($0, .string(Data(data[$0]!).base64EncodedString())) }))),
        ]))
    }
}
