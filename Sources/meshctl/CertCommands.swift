import ArgumentParser
import CertificateAuthority
import MeshClient
import MeshModel
import Foundation

/// `meshctl cert`: a workload's certificate kept in files.
struct Cert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A workload certificate kept in files by a renewal job.", subcommands: [Renew.self])

    struct Renew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Renew the certificate in a directory when it is due (safe to run every minute).",
            discussion: """
                Makes a key locally, sends a CSR to meshd's CA, and atomically replaces key.pem (0600), \
                cert-chain.pem and root-cert.pem in --dir (they are links into a versioned directory that \
                is swapped in one step, as Envoy's watched_directory expects). Renews only when half the \
                certificate's life is left (--renew-at); otherwise only refreshes root-cert.pem if meshd's \
                trust bundle changed. Authenticates with --token/--token-file, or else with the certificate \
                already in --dir. Exits 0 when nothing was due or renewal worked, 1 on failure.
                Crontab:  * * * * *  meshctl cert renew --dir /etc/meshd/certs/app --token-file /etc/meshd/app.token
                """)

        @OptionGroup var server: ServerOptions

        @Option(name: .customLong("dir"), help: "The directory of key.pem, cert-chain.pem and root-cert.pem.")
        var directory: String

        @Option(name: .customLong("xds-address"), help: "meshd's xDS/CA address (host:port).")
        var xdsAddress = "127.0.0.1:15012"

        @Option(name: .customLong("token"), help: "A workload token (meshctl token create).")
        var token: String?

        @Option(name: .customLong("token-file"), help: "A file holding a workload token.")
        var tokenFile: String?

        @Option(name: .customLong("namespace"), help: "The workload's namespace (first run only; later runs read it from the certificate).")
        var namespace: String?

        @Option(name: .customLong("service-account"), help: "The workload's service account (first run only).")
        var serviceAccount: String?

        @Option(name: .customLong("trust-domain"), help: "The trust domain (first run only).")
        var trustDomain = "cluster.local"

        @Option(name: .customLong("ca-file"), help: "Roots to verify meshd with when --dir has none yet (default: <data-dir>/ca/root-cert.pem if present).")
        var caFile: String?

        @Option(name: .customLong("ttl"), help: "Requested lifetime (e.g. 24h; default: meshd's).")
        var ttl: String?

        @Option(name: .customLong("renew-at"), help: "Renew when this share of the lifetime is left.")
        var remaining = 0.5

        @Flag(name: .customLong("force"), help: "Renew now even if not due.")
        var force = false

        func run() async throws {
            guard let xds = HostPort(xdsAddress) else { throw ValidationError("--xds-address must be host:port") }
            let directory = URL(fileURLWithPath: self.directory).standardizedFileURL.path
            var options = CertificateRenewal.Options(directory: directory, xdsAddress: xds)
            if let token {
                options.token = token
            } else if let tokenFile {
                guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else { throw CLIError("cannot read --token-file \(tokenFile)") }
                options.token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let namespace, let serviceAccount {
                options.identity = SpiffeID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
            }
            if let ttl {
                guard let parsed = IstioDuration(parsing: ttl), parsed.nanoseconds > 0 else { throw ValidationError("--ttl must be a duration such as 24h") }
                options.ttlSeconds = Int64(parsed.nanoseconds / 1_000_000_000)
            }
            guard remaining > 0, remaining < 1 else { throw ValidationError("--renew-at must be between 0 and 1") }
            options.remaining = remaining
            options.force = force
            options.trustPEM = try? String(contentsOfFile: caFile ?? server.dataDirectory + "/ca/root-cert.pem", encoding: .utf8)
            // meshd's current trust bundle (public); during a root rotation it holds both roots.
            let bundle = (try? await AdminClient(base: server.server, token: nil).get("/v1/ca/root")).map { String(decoding: $0, as: UTF8.self) }
            let stall = ProcessInfo.processInfo.environment["MESHCTL_TEST_STALL_BEFORE_SWAP"] != nil
            let outcome: CertificateRenewal.Outcome
            do {
                outcome = try await RenewalDirectory(path: directory).exclusively {
                    try await CertificateRenewal(options: options).run(now: Date(), bundle: bundle) {
                        // A test hook: stop between writing the new files and making them current.
                        guard stall else { return }
                        FileHandle.standardError.write(Data("stalled before swap\n".utf8))
                        sleep(600)
                    }
                }
            } catch let failure as CertificateRenewal.Failure {
                FileHandle.standardError.write(Data("meshctl cert renew: \(failure.description)\n".utf8))
                throw ExitCode(1)
            }
            let iso = ISO8601DateFormatter()
            switch outcome {
            case .notDue(let until): print("not due: renews after \(iso.string(from: until))")
            case .bundleUpdated(let until): print("trust bundle updated; the certificate renews after \(iso.string(from: until))")
            case .renewed(let serial, let notAfter): print("renewed: serial \(serial), valid until \(iso.string(from: notAfter))")
            }
        }
    }
}
