internal import Foundation

/// One PEM block read as Go's `encoding/pem` and OpenSSL read it: any base64 line length (76 as
/// well as RFC 7468's 64), CRLF or LF, surrounding text ignored. SwiftASN1's `PEMDocument` insists
/// on 64-character lines and would refuse CSRs that other CAs accept.
struct LenientPEM: Sendable {
    /// The label after `BEGIN` (`CERTIFICATE REQUEST`).
    let discriminator: String
    /// The decoded body.
    let derBytes: [UInt8]

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// The first PEM block of `text`.
    init(_ text: String) throws {
        let lines = text.split(omittingEmptySubsequences: true) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") && $0.count > 16 }) else {
            throw Malformed(description: "no PEM BEGIN line")
        }
        let label = String(lines[begin].dropFirst("-----BEGIN ".count).dropLast(5))
        guard let end = lines[(begin + 1)...].firstIndex(of: "-----END \(label)-----") else {
            throw Malformed(description: "no PEM END line for \(label)")
        }
        let body = lines[(begin + 1)..<end]
        guard !body.contains(where: { $0.contains(":") }) else { throw Malformed(description: "PEM headers are not accepted") }
        guard let data = Data(base64Encoded: body.joined()), !data.isEmpty else { throw Malformed(description: "the PEM body is not base64") }
        discriminator = label
        derBytes = Array(data)
    }
}
