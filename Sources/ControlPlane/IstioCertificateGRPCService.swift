internal import EnvoyAPI
internal import GRPCCore
internal import CertificateAuthority

/// Istio's `IstioCertificateService/CreateCertificate` on the xDS port, for agents and renewal
/// jobs: the caller is authenticated by a bearer token or by its client certificate.
struct IstioCertificateGRPCService: Istio_V1_Auth_IstioCertificateService.ServiceProtocol {
    let requests: CertificateRequests
    let peers: PeerCertificates

    func createCertificate(
        request: ServerRequest<Istio_V1_Auth_IstioCertificateRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Istio_V1_Auth_IstioCertificateResponse> {
        let token = TokenAuthority.bearer(request.metadata[stringValues: "authorization"].first { _ in true })
        let certificate = peers.certificate(peer: context.remotePeer)
        do throws(CAError) {
            let chain = try requests.sign(
                csr: request.message.csr, ttlSeconds: request.message.validityDuration, token: token,
                clientCertificate: certificate, path: "grpc-csr")
            var response = Istio_V1_Auth_IstioCertificateResponse()
            response.certChain = chain
            return ServerResponse(message: response)
        } catch {
            let code: RPCError.Code = error.code == .unauthenticated ? .unauthenticated : .invalidArgument
            return ServerResponse(error: RPCError(code: code, message: CertificateRequests.refusal))
        }
    }
}
