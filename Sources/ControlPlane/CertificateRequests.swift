public import CertificateAuthority
public import MeshModel
public import X509
public import Foundation

/// Who asks for a certificate, and with what proof: the identity a CSR is signed for is always
/// the caller's, from a token or from a client certificate of this CA.
public struct CertificateRequests: Sendable {
    let service: CertificateService
    let tokens: TokenAuthority
    let clock: @Sendable () -> Date

    /// Requests checked against `tokens` and signed by `service`; `clock` decides whether a
    /// client certificate has expired.
    public init(service: CertificateService, tokens: TokenAuthority, clock: @escaping @Sendable () -> Date = Date.init) {
        self.service = service
        self.tokens = tokens
        self.clock = clock
    }

    /// The generic answer every refused caller gets; the reason goes to the log and a counter.
    public static let refusal = "certificate request refused"

    /// The caller's identity from a bearer token or a client certificate (token first), or the
    /// refusal (already counted and logged).
    public func caller(token: String?, clientCertificate: Certificate?, path: String) throws(CAError) -> (identity: SpiffeID, description: String) {
        if let token {
            switch tokens.authenticate(token) {
            case .success(let record) where !record.isWorkload:
                let error = CAError(.unauthenticated, "a \(record.effectiveRole) token (\(record.id)) is not a workload's")
                service.refuse(error, caller: "token:\(record.id)", path: path)
                throw error
            case .success(let record):
                return (SpiffeID(trustDomain: service.options.trustDomain, namespace: record.namespace, serviceAccount: record.serviceAccount), "token:\(record.id)")
            case .failure(let rejection):
                let error = CAError(.unauthenticated, "token refused: \(rejection)")
                service.refuse(error, caller: "token", path: path)
                throw error
            }
        }
        if let clientCertificate {
            if let identity = Self.identity(of: clientCertificate, trustDomain: service.options.trustDomain, now: clock()) {
                return (identity, "certificate:\(identity.uri)")
            }
            let error = CAError(.unauthenticated, "client certificate without exactly one SPIFFE ID of this trust domain, or expired")
            service.refuse(error, caller: "certificate", path: path)
            throw error
        }
        let error = CAError(.unauthenticated, "neither a token nor a client certificate")
        service.refuse(error, caller: "anonymous", path: path)
        throw error
    }

    /// The workload identity a verified client certificate proves: its one SPIFFE ID, of
    /// `trustDomain`, while it has not expired.
    static func identity(of certificate: Certificate, trustDomain: String, now: Date) -> SpiffeID? {
        let uris = (try? certificate.extensions.subjectAlternativeNames)??.compactMap { name -> String? in
            if case .uniformResourceIdentifier(let uri) = name { return uri }
            return nil
        } ?? []
        guard uris.count == 1, let identity = SpiffeID(uri: uris[0]), identity.trustDomain == trustDomain, certificate.notValidAfter > now else { return nil }
        return identity
    }

    /// Signs `csr` for the authenticated caller; returns PEMs leaf first, root last.
    public func sign(csr: String, ttlSeconds: Int64, token: String?, clientCertificate: Certificate?, path: String) throws(CAError) -> [String] {
        let caller = try caller(token: token, clientCertificate: clientCertificate, path: path)
        let issued = try service.sign(csrPEM: csr, requestedTTL: ttlSeconds, caller: caller.identity, callerDescription: caller.description, path: path)
        do {
            return try issued.chainPEM()
        } catch {
            throw CAError(.encode, "\(error)", cause: error)
        }
    }
}
