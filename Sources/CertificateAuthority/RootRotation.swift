public import Foundation

/// Replacing the trust root A by B without an outage, in phases:
///
/// 1. ``Phase/distributingTrust``: every proxy gets the trust bundle A+B; leaves still come from A.
///    Waits until every connected proxy has acknowledged a bundle holding B.
/// 2. ``Phase/issuingFromNewRoot``: leaves come from B (every proxy gets one at once); the bundle is
///    still A+B. Waits until every connected proxy has acknowledged a leaf from B and no other leaf
///    from A is still valid (CSR-issued ones, or those of disconnected proxies).
/// 3. Then A is dropped: the bundle is B alone.
///
/// A pure value: ``step(_:now:)`` says what to do next; the caller persists and applies it.
public struct RootRotation: Codable, Hashable, Sendable {
    /// Where a rotation stands.
    public enum Phase: String, Codable, Hashable, Sendable {
        /// Bundle A+B, leaves from A.
        case distributingTrust = "1-distributing-trust"
        /// Bundle A+B, leaves from B.
        case issuingFromNewRoot = "2-issuing-from-new-root"
        /// A is being dropped (persisted so that a crash in the middle finishes the job on restart).
        case droppingOldRoot = "3-dropping-old-root"
    }

    /// The phase.
    public var phase: Phase
    /// When the rotation began.
    public var startedAt: Date
    /// When the current phase began.
    public var phaseSince: Date
    /// Why: `meshctl ca rotate-root`, or the plugged-in files changed.
    public var reason: String
    /// Key id of the old signer (A).
    public var oldSignerKey: String
    /// Key id of the new signer (B).
    public var newSignerKey: String
    /// SHA-256 fingerprints of the new roots.
    public var newRoots: [String]

    /// A rotation starting now.
    public init(reason: String, oldSignerKey: String, newSignerKey: String, newRoots: [String], now: Date) {
        phase = .distributingTrust
        startedAt = now
        phaseSince = now
        self.reason = reason
        self.oldSignerKey = oldSignerKey
        self.newSignerKey = newSignerKey
        self.newRoots = newRoots
    }

    /// What meshd sees of the mesh while rotating.
    public struct Observation: Sendable {
        /// A connected proxy.
        public struct Proxy: Sendable, Hashable {
            /// Its node id.
            public var id: String
            /// Whether it acknowledged a trust bundle holding every new root.
            public var trustsNewRoots: Bool
            /// Whether it acknowledged a leaf from the new signer (or gets its leaf elsewhere, e.g.
            /// from files a renewal job writes, whose leaves count under ``oldLeaves``).
            public var usesNewSigner: Bool

            /// A proxy's state.
            public init(id: String, trustsNewRoots: Bool, usesNewSigner: Bool) {
                self.id = id
                self.trustsNewRoots = trustsNewRoots
                self.usesNewSigner = usesNewSigner
            }
        }

        /// A leaf from the old signer that may still be in use.
        public struct Leaf: Sendable, Hashable {
            /// Serial (hex).
            public var serial: String
            /// Its identity.
            public var identity: String
            /// Its end of validity.
            public var notAfter: Date
            /// Who holds it (`csr`, `disconnected proxy <id>`).
            public var holder: String

            /// A leaf.
            public init(serial: String, identity: String, notAfter: Date, holder: String) {
                self.serial = serial
                self.identity = identity
                self.notAfter = notAfter
                self.holder = holder
            }
        }

        /// Every connected proxy.
        public var proxies: [Proxy]
        /// Leaves from the old signer not held by a connected proxy.
        public var oldLeaves: [Leaf]

        /// An observation.
        public init(proxies: [Proxy], oldLeaves: [Leaf]) {
            self.proxies = proxies
            self.oldLeaves = oldLeaves
        }
    }

    /// What to do next.
    public enum Step: Hashable, Sendable {
        /// Stay; the text says what the phase waits for.
        case wait(String)
        /// Move to the next phase.
        case advance(Phase)
    }

    /// The next step, given what meshd sees now.
    public func step(_ observation: Observation, now: Date) -> Step {
        switch phase {
        case .distributingTrust:
            let pending = observation.proxies.filter { !$0.trustsNewRoots }.map(\.id).sorted()
            if pending.isEmpty { return .advance(.issuingFromNewRoot) }
            return .wait("\(pending.count) of \(observation.proxies.count) connected proxies to acknowledge the trust bundle with the new root: \(Self.list(pending))")
        case .issuingFromNewRoot:
            let pending = observation.proxies.filter { !$0.usesNewSigner }.map(\.id).sorted()
            let valid = observation.oldLeaves.filter { $0.notAfter > now }.sorted { $0.notAfter < $1.notAfter }
            if pending.isEmpty && valid.isEmpty { return .advance(.droppingOldRoot) }
            var parts: [String] = []
            if !pending.isEmpty {
                parts.append("\(pending.count) of \(observation.proxies.count) connected proxies to acknowledge a certificate from the new root: \(Self.list(pending))")
            }
            if let last = valid.last {
                let holders = Self.list(valid.map { "\($0.identity) (\($0.holder))" })
                parts.append("\(valid.count) certificates from the old root to expire (the last at \(ISO8601DateFormatter().string(from: last.notAfter))): \(holders)")
            }
            return .wait(parts.joined(separator: "; "))
        case .droppingOldRoot:
            return .wait("dropping the old root")
        }
    }

    private static func list(_ items: [String]) -> String {
        items.count <= 5 ? items.joined(separator: ", ") : items.prefix(5).joined(separator: ", ") + ", and \(items.count - 5) more"
    }
}
