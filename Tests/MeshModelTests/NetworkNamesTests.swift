import Testing
import MeshModel

@Suite("Addresses and host names")
struct NetworkNamesTests {
    @Test("IPv4 and IPv6 addresses parse and print canonically", arguments: [
        ("127.0.0.2", "127.0.0.2"), ("::1", "::1"), ("fe80::1", "fe80::1"), ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"),
    ])
    func parsesAddresses(text: String, canonical: String) {
        #expect(IPAddress(text)?.description == canonical)
    }

    @Test("non-addresses are refused", arguments: ["256.0.0.1", "1.2.3", "a.b.c.d", "1::2::3", "01234::1", "", "127.0.0.1 "])
    func refusesAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("loopback is recognised")
    func loopback() {
        #expect(IPAddress("127.41.2.9")?.isLoopback == true)
        #expect(IPAddress("::1")?.isLoopback == true)
        #expect(IPAddress("10.0.0.1")?.isLoopback == false)
    }

    @Test("CIDR blocks and host:port pairs parse")
    func blocksAndEndpoints() {
        #expect(CIDRBlock("10.0.0.0/8")?.prefixLength == 8)
        #expect(CIDRBlock("10.0.0.1")?.prefixLength == 32)
        #expect(CIDRBlock("10.0.0.0/33") == nil)
        #expect(HostPort("127.0.2.2:8080") == HostPort(host: "127.0.2.2", port: 8080))
        #expect(HostPort("[::1]:15010") == HostPort(host: "::1", port: 15010))
        #expect(HostPort("127.0.0.1:0") == nil)
        #expect(HostPort("127.0.0.1") == nil)
    }

    @Test("short names resolve in the resource's namespace; names with dots stay")
    func hostResolution() {
        #expect(HostName.resolve("reviews", in: "default") == "reviews.default.svc.cluster.local")
        #expect(HostName.resolve("reviews.other", in: "default") == "reviews.other")
        #expect(HostName.resolve("*", in: "default") == "*")
        #expect(HostName.matches("a.example.com", pattern: "*.example.com"))
        #expect(!HostName.matches("example.com", pattern: "*.example.com"))
    }

    @Test("SPIFFE identities parse and print")
    func spiffe() {
        let id = SpiffeID(uri: "spiffe://cluster.local/ns/tai-system/sa/governor")
        #expect(id == SpiffeID(trustDomain: "cluster.local", namespace: "tai-system", serviceAccount: "governor"))
        #expect(id?.principal == "cluster.local/ns/tai-system/sa/governor")
        #expect(SpiffeID(uri: "spiffe://cluster.local/ns/a/sa/b/c") == nil)
    }
}
