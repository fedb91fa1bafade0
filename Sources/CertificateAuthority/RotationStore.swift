internal import Foundation
internal import X509

/// Where a root rotation lives on disk, under the CA directory (`<data>/ca/`): `rotation/state.json`,
/// `rotation/next/` (a self-signed rotation's new root, in Istio's layout, with its
/// `cross-signed.pem`) or `rotation/previous/` (a plug-in rotation's old CA), and the CA's own
/// `cross-signed.pem` (each former root's successor signed by it, newest first).
///
/// `state.json` is written last when a rotation starts and removed last when it ends, so a crash
/// anywhere leaves a state the next start completes.
struct RotationStore: Sendable {
    /// The CA directory.
    let directory: String

    var rotationDirectory: String { directory + "/rotation" }
    private var statePath: String { rotationDirectory + "/state.json" }
    private var nextDirectory: String { rotationDirectory + "/next" }
    private var previousDirectory: String { rotationDirectory + "/previous" }

    /// The rotation in progress, or `nil`.
    func read() throws(CAError) -> RootRotation? {
        guard let data = FileManager.default.contents(atPath: statePath) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(RootRotation.self, from: data)
        } catch {
            throw CAError(.storage, "\(statePath) is unreadable (\(error)); restore it or remove the rotation directory to abandon the rotation", cause: error)
        }
    }

    /// Records the rotation's state (0600, atomically).
    func write(_ rotation: RootRotation) throws(CAError) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try AtomicFile.write(Array(try encoder.encode(rotation)), to: statePath, mode: 0o600)
        } catch let error as AtomicFile.WriteError {
            throw CAError(.storage, error.description)
        } catch {
            throw CAError(.storage, "cannot encode the rotation state: \(error)", cause: error)
        }
    }

    /// Removes whatever a rotation left (nothing of it took effect, or it is over).
    func discard() {
        try? FileManager.default.removeItem(atPath: rotationDirectory)
    }

    /// The CA's former roots' successors signed by them, newest first (none when unreadable).
    func crossSigned() -> [Certificate] {
        (try? CAStore.readCertificates(directory + "/cross-signed.pem")) ?? []
    }

    // MARK: Self-signed rotation

    /// Stages a self-signed rotation's new root and its certificate signed by the old root.
    func stageNext(_ new: SigningAuthority, crossSigned: Certificate) throws(CAError) {
        discard()
        try CAStore.writeIstioLayout(new, to: nextDirectory)
        try CAStore.writeCertificates([crossSigned], to: nextDirectory + "/cross-signed.pem")
    }

    /// The staged new root and its cross-signed certificate.
    func loadNext() throws(CAError) -> (authority: SigningAuthority, crossSigned: [Certificate]) {
        let new = try CAStore.loadPluggedIn(directory: nextDirectory, mode: .selfSigned)
        return (new, (try? CAStore.readCertificates(nextDirectory + "/cross-signed.pem")) ?? [])
    }

    /// Makes the new root the root: key, certificate and cross-signed list, then removes the
    /// rotation directory. Safe to repeat after a crash at any point.
    func finishSelfSigned() throws(CAError) {
        guard FileManager.default.fileExists(atPath: nextDirectory + "/ca-key.pem") else {
            // Already copied and the directory partly removed.
            discard()
            return
        }
        let (new, crossSigned) = try loadNext()
        let existing = self.crossSigned()
        try CAStore.writeCertificates(crossSigned + existing.filter { !crossSigned.contains($0) }, to: directory + "/cross-signed.pem")
        do {
            try AtomicFile.write(try new.privateKeyPEM(), to: directory + "/root-key.pem", mode: 0o600)
        } catch let error as AtomicFile.WriteError {
            throw CAError(.storage, error.description)
        } catch {
            throw CAError(.storage, "cannot write the new root key: \(error)", cause: error)
        }
        try CAStore.writeCertificates([new.certificate], to: directory + "/root-cert.pem")
        // Remove the state last: until then a restart repeats this step.
        try? FileManager.default.removeItem(atPath: nextDirectory)
        discard()
    }

    // MARK: Plug-in rotation

    /// Keeps the CA in use while a plug-in rotation to new files runs.
    func stagePrevious(_ current: SigningAuthority) throws(CAError) {
        discard()
        try CAStore.writeIstioLayout(current, to: previousDirectory)
    }

    /// The plug-in CA in use before the rotation.
    func loadPrevious() throws(CAError) -> SigningAuthority {
        try CAStore.loadPluggedIn(directory: previousDirectory)
    }
}
