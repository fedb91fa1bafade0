public import CertificateAuthority
public import MeshModel
public import Foundation
internal import EnvoyAPI
public import GRPCCore
internal import GRPCNIOTransportHTTP2
internal import GRPCNIOTransportCore
internal import X509
internal import SwiftASN1

/// The cron path (`meshctl cert renew`): keeps a workload's certificate in a ``RenewalDirectory``
/// fresh by sending a CSR to meshd's CA service. The key is made here and never leaves the
/// machine. Safe to run every minute: it renews only past the renewal point, and otherwise only
/// refreshes the trust bundle if meshd's changed (a root rotation).
public struct CertificateRenewal: Sendable {
    /// What to renew and how.
    public struct Options: Sendable {
        /// The directory holding `key.pem`, `cert-chain.pem`, `root-cert.pem`.
        public var directory: String
        /// meshd's xDS/CA address (TLS, verified as `meshd.istio-system.svc`).
        public var xdsAddress: HostPort
        /// A workload token; without one the certificate already in the directory authenticates.
        public var token: String?
        /// The identity to ask for when the directory holds no certificate yet.
        public var identity: SpiffeID?
        /// Requested lifetime (0: meshd's default).
        public var ttlSeconds: Int64 = 0
        /// Renew when this share of the lifetime is left.
        public var remaining: Double = 0.5
        /// Renew even before the renewal point.
        public var force = false
        /// Extra roots to trust for meshd's certificate (first run, before the directory has a bundle).
        public var trustPEM: String?

        /// Options for `directory` and `xdsAddress`.
        public init(directory: String, xdsAddress: HostPort) {
            self.directory = directory
            self.xdsAddress = xdsAddress
        }
    }

    /// What a run did.
    public enum Outcome: Sendable, Equatable {
        /// Nothing was due; the next renewal point.
        case notDue(until: Date)
        /// The trust bundle changed and was written; the certificate was not due.
        case bundleUpdated(until: Date)
        /// A new certificate was written.
        case renewed(serial: String, notAfter: Date)
    }

    /// Why a run failed; the files in the directory are unchanged.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What went wrong, for the operator.
        public var description: String
    }

    let options: Options

    /// A renewal with `options`.
    public init(options: Options) {
        self.options = options
    }

    /// Renews if due. `bundle` is meshd's current trust bundle if it could be fetched;
    /// `beforeSwap` runs after the new files are on disk and before they become current.
    public func run(now: Date, bundle: String?, beforeSwap: @Sendable () -> Void = {}) async throws(Failure) -> Outcome {
        let directory = RenewalDirectory(path: options.directory)
        let existing = directory.contents()
        var identity = options.identity
        if let existing {
            guard let found = Self.identity(of: existing.leaf) else {
                throw Failure(description: "\(options.directory)/\(RenewalDirectory.chainFile) holds no SPIFFE ID")
            }
            if let asked = identity, asked != found {
                throw Failure(description: "\(options.directory) holds a certificate for \(found.uri), not \(asked.uri)")
            }
            identity = found
        }
        guard let identity else {
            throw Failure(description: "\(options.directory) holds no certificate yet: say whose to ask for (--namespace and --service-account)")
        }
        let bundlePEM = bundle ?? existing?.rootPEM
        if let existing, !options.force {
            let point = RenewalDirectory.renewalPoint(of: existing.leaf, remaining: options.remaining)
            if now < point && now < existing.leaf.notValidAfter {
                guard let bundle, Self.normalized(bundle) != Self.normalized(existing.rootPEM) else { return .notDue(until: point) }
                do {
                    try directory.commit(keyPEM: existing.keyPEM, chainPEM: existing.chainPEM, rootPEM: bundle, now: now, beforeSwap: beforeSwap)
                } catch {
                    throw Failure(description: "cannot write the new trust bundle: \(error.message)")
                }
                return .bundleUpdated(until: point)
            }
        }
        var clientCertificate: (chain: String, key: String)? = nil
        if options.token == nil {
            guard let existing, existing.leaf.notValidAfter > now else {
                throw Failure(description: "no token given and no valid certificate in \(options.directory) to authenticate with: pass --token or --token-file")
            }
            clientCertificate = (existing.chainPEM, existing.keyPEM)
        }
        let trust = [bundlePEM, options.trustPEM].compactMap { $0 }.joined(separator: "\n")
        guard !trust.isEmpty else {
            throw Failure(description: "no trust bundle to verify meshd with: meshd's admin API did not answer and \(options.directory) has none (pass --ca-file)")
        }
        let key: Certificate.PrivateKey
        let csr: String
        do {
            key = try KeyAlgorithm.ecdsaP256.generate()
            csr = try WorkloadCSR.make(privateKey: key, identity: identity)
        } catch {
            throw Failure(description: "cannot make a key and CSR: \(error)")
        }
        let chain: [String]
        do {
            chain = try await Self.createCertificate(
                address: options.xdsAddress, trustPEM: trust, client: clientCertificate, token: options.token, csr: csr, ttl: options.ttlSeconds)
        } catch let error as RPCError {
            throw Failure(description: "meshd refused the certificate request (\(error.code)): \(error.message)")
        } catch {
            throw Failure(description: "cannot reach meshd's CA at \(options.xdsAddress): \(error)")
        }
        let leaf: Certificate
        do {
            let certificates = try chain.map { try Certificate(pemDocument: try PEMDocument(pemString: $0)) }
            guard let first = certificates.first, first.publicKey == key.publicKey, Self.identity(of: first) == identity else {
                throw Failure(description: "meshd answered with a certificate that is not for this key and identity")
            }
            leaf = first
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(description: "meshd answered with an unreadable chain: \(error)")
        }
        // The chain file holds the leaf and intermediates; the bundle, every trusted root.
        let chainPEM = chain.dropLast(chain.count > 1 ? 1 : 0).map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined()
        let rootPEM = bundle ?? (chain.last.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" } ?? "")
        do {
            try directory.commit(keyPEM: try key.serializeAsPEM().pemString + "\n", chainPEM: chainPEM, rootPEM: rootPEM, now: now, beforeSwap: beforeSwap)
        } catch let error as CAError {
            throw Failure(description: "cannot write the new certificate: \(error.message)")
        } catch {
            throw Failure(description: "cannot write the new certificate: \(error)")
        }
        return .renewed(serial: SerialNumbers.hex(leaf.serialNumber), notAfter: leaf.notValidAfter)
    }

    static func identity(of leaf: Certificate) -> SpiffeID? {
        let uris = ((try? leaf.extensions.subjectAlternativeNames) ?? nil)?.compactMap { name -> String? in
            if case .uniformResourceIdentifier(let uri) = name { return uri }
            return nil
        } ?? []
        return uris.count == 1 ? SpiffeID(uri: uris[0]) : nil
    }

    private static func normalized(_ pem: String) -> String {
        pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    /// One `IstioCertificateService/CreateCertificate` call over TLS.
    static func createCertificate(
        address: HostPort, trustPEM: String, client: (chain: String, key: String)?, token: String?, csr: String, ttl: Int64
    ) async throws -> [String] {
        return try await withGRPCClient(transport: try MeshEndpoints.transport(to: address, trustPEM: trustPEM, client: client)) { client in
            try await createCertificate(on: client, csrPEM: csr, ttlSeconds: ttl, token: token)
        }
    }

    /// One `IstioCertificateService/CreateCertificate` call on `client`, with the workload's
    /// bearer token when given; the chain, leaf first.
    public static func createCertificate(on client: GRPCClient<some ClientTransport>, csrPEM: String, ttlSeconds: Int64, token: String?) async throws -> [String] {
        let service = Istio_V1_Auth_IstioCertificateService.Client(wrapping: client)
        var request = Istio_V1_Auth_IstioCertificateRequest()
        request.csr = csrPEM
        request.validityDuration = ttlSeconds
        let metadata: Metadata = token.map { ["authorization": "Bearer \($0)"] } ?? [:]
        return try await service.createCertificate(request: ClientRequest(message: request, metadata: metadata)).certChain
    }
}
