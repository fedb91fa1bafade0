import ArgumentParser
import CertificateAuthority
import Foundation

/// `meshctl ca`: the certificate authority.
struct CA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The certificate authority.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the roots and the signing certificate: subject, SHA-256 fingerprint, expiry.")
        @OptionGroup var server: ServerOptions
        @Option(name: .customLong("output"), help: "text or json") var output = "text"

        func run() async throws {
            let client = server.client
            let data = try await client.get("/v1/ca")
            if output == "json" {
                FileHandle.standardOutput.write(data)
                return
            }
            let status = try client.decode(CertificateService.Status.self, from: data)
            let iso = ISO8601DateFormatter()
            print("mode: \(status.mode)   trust domain: \(status.trustDomain)   workload TTL: \(status.defaultTTLSeconds)s (max \(status.maximumTTLSeconds)s)")
            let rows = status.roots.map { ["root", $0.subject, $0.fingerprint, iso.string(from: $0.notAfter)] }
                + (status.mode == "plugged-in" ? [["signer", status.signer.subject, status.signer.fingerprint, iso.string(from: status.signer.notAfter)]] : [])
            print(table(["ROLE", "SUBJECT", "SHA-256", "NOT AFTER"], rows))
        }
    }
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
