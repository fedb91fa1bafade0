import ArgumentParser
import CertificateAuthority
import Foundation
import MeshModel

/// `meshctl ca`: the certificate authority.
struct CA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The certificate authority.", subcommands: [Status.self, RotateRoot.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the roots and the signing certificate (subject, SHA-256 fingerprint, expiry) and any root rotation.",
            discussion: "With --fail-within 30d, exits 1 when a root or CA certificate expires within 30 days (for monitoring jobs).")
        @OptionGroup var server: ServerOptions
        @Option(name: .customLong("output"), help: "text or json") var output = "text"
        @Option(name: .customLong("fail-within"), help: "Exit 1 if a CA certificate expires within this long (e.g. 30d, 12h).") var failWithin: String?

        func run() async throws {
            let window = try failWithin.map { try parseDays($0, flag: "--fail-within") }
            let client = server.client
            let data = try await client.get("/v1/ca")
            let status = try client.decode(CertificateService.Status.self, from: data)
            if output == "json" {
                FileHandle.standardOutput.write(data)
            } else {
                print(describe(status))
            }
            guard let window else { return }
            let limit = Date().addingTimeInterval(window)
            let expiring = ([("signer", status.signer)] + status.chain.map { ("intermediate", $0) } + status.roots.map { ("root", $0) })
                .filter { $0.1.notAfter <= limit }
            if !expiring.isEmpty {
                let iso = ISO8601DateFormatter()
                for (role, info) in expiring {
                    FileHandle.standardError.write(Data("EXPIRING: \(role) \(info.subject) not after \(iso.string(from: info.notAfter))\n".utf8))
                }
                throw ExitCode(1)
            }
        }
    }

    struct RotateRoot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-root",
            abstract: "Replace the self-signed root without an outage: trust both, issue from the new, then drop the old.",
            discussion: """
                Phase 1 pushes the trust bundle old+new to every proxy and waits until each has acknowledged it;                 phase 2 issues every certificate from the new root and waits until no certificate from the old                 one is in use or still valid; then the old root is dropped. meshd persists the phase and resumes                 it after a restart. With --wait, shows each phase until the rotation completes.
                """)
        @OptionGroup var server: ServerOptions
        @Flag(name: .customLong("wait"), help: "Wait for the rotation to complete, showing progress.") var wait = false
        @Option(name: .customLong("timeout"), help: "With --wait, give up after this long (e.g. 10m).") var timeout = "30m"

        func run() async throws {
            let limit = try parseDays(timeout, flag: "--timeout")
            let client = server.client
            let started = try client.decode(CertificateService.Status.self, from: try await client.post("/v1/ca/rotate-root", json: [:]))
            print("root rotation started: \(started.rotation?.phase ?? "complete")")
            guard wait else { return }
            let deadline = Date().addingTimeInterval(limit)
            var last = ""
            while Date() < deadline {
                let status = try client.decode(CertificateService.Status.self, from: try await client.get("/v1/ca"))
                guard let rotation = status.rotation else {
                    print("root rotation complete: trusted roots \(status.roots.map(\.subject).joined(separator: ", "))")
                    return
                }
                let line = "phase \(rotation.phase): waiting for \(rotation.waitingFor)"
                if line != last { print(line) }
                last = line
                try await Task.sleep(for: .seconds(1))
            }
            throw CLIError("the rotation did not complete within \(timeout); it continues in meshd (meshctl ca status shows it)")
        }
    }

    static func describe(_ status: CertificateService.Status) -> String {
        let iso = ISO8601DateFormatter()
        var lines = ["mode: \(status.mode)   trust domain: \(status.trustDomain)   workload TTL: \(status.defaultTTLSeconds)s (max \(status.maximumTTLSeconds)s)"]
        let rows = status.roots.map { ["root", $0.subject, $0.fingerprint, iso.string(from: $0.notAfter)] }
            + status.chain.map { ["intermediate", $0.subject, $0.fingerprint, iso.string(from: $0.notAfter)] }
            + (status.roots.contains { $0.fingerprint == status.signer.fingerprint } ? [] : [["signer", status.signer.subject, status.signer.fingerprint, iso.string(from: status.signer.notAfter)]])
        lines.append(table(["ROLE", "SUBJECT", "SHA-256", "NOT AFTER"], rows))
        if let rotation = status.rotation {
            lines.append("root rotation: phase \(rotation.phase) since \(iso.string(from: rotation.phaseSince)) (started \(iso.string(from: rotation.startedAt)): \(rotation.reason))")
            lines.append("  waiting for \(rotation.waitingFor)")
        }
        return lines.joined(separator: "\n")
    }
}

/// A duration with Go-style units plus `d` (days), in seconds.
func parseDays(_ text: String, flag: String) throws -> TimeInterval {
    if text.hasSuffix("d"), let days = Double(text.dropLast()), days >= 0 { return days * 86400 }
    guard let duration = IstioDuration(parsing: text) else { throw ValidationError("\(flag) must be a duration such as 30d or 12h, got \(text)") }
    return Double(duration.nanoseconds) / 1e9
}

/// `meshctl certs`: what the CA issued.
struct Certs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Certificates the CA issued.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every issued certificate (from the issuance ledger).")
        @OptionGroup var server: ServerOptions

        func run() async throws {
            let client = server.client
            let entries = try client.decode([IssuanceLedger.Entry].self, from: try await client.get("/v1/certificates"))
            let iso = ISO8601DateFormatter()
            print(table(["SERIAL", "IDENTITY", "NOT BEFORE", "NOT AFTER", "CALLER", "PATH"], entries.map {
                [$0.serial, $0.identity, iso.string(from: $0.notBefore), iso.string(from: $0.notAfter), $0.caller, $0.path]
            }))
        }
    }
}
