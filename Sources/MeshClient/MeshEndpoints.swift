/// Names both sides of a connection to meshd agree on.
public enum MeshEndpoints {
    /// The DNS name in meshd's xDS/CA serving certificate, which proxies and `meshctl cert
    /// renew` verify (Istio's istiod name).
    public static let xdsServerName = "meshd.istio-system.svc"
}
