import EnvoyAPI
import Testing
@testable import XDSServer

@Suite("One push order for both stream machines")
struct PushGateTests {
    @Test("clusters, endpoints and secrets always pass; listeners and routes only once the cluster side is settled, asked once per pass")
    func gate() {
        var asked = 0
        var busy = PushGate()
        let passed = XDSTypeURL.pushOrder.filter { busy.allows($0) { asked += 1; return true } }
        #expect(passed == [XDSTypeURL.cluster, XDSTypeURL.endpoint, XDSTypeURL.secret])
        #expect(asked == 1)
        var settled = PushGate()
        #expect(XDSTypeURL.pushOrder.filter { settled.allows($0) { false } } == XDSTypeURL.pushOrder)
    }
}
