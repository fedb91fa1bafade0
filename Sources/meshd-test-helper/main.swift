// A helper the test suite runs as a separate process, to kill it at random moments.
//
//   meshd-test-helper rewrite-key|rewrite-cache PATH KEY_A KEY_B
//     Rewrites PATH with the contents of KEY_A and KEY_B in turn, forever, with CertificateAuthority's
//     atomic write (the one meshd uses for CA keys; `rewrite-cache`: without fsync, as for the SDS
//     certificate records). The test SIGKILLs it and checks that PATH always holds one whole key.
import CertificateAuthority
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 5, ["rewrite-key", "rewrite-cache"].contains(arguments[1]) else {
    FileHandle.standardError.write(Data("usage: meshd-test-helper rewrite-key|rewrite-cache PATH KEY_A KEY_B\n".utf8))
    exit(64)
}
let keys = [try String(contentsOfFile: arguments[3], encoding: .utf8), try String(contentsOfFile: arguments[4], encoding: .utf8)]
FileHandle.standardError.write(Data("writing\n".utf8))
var turn = 0
while true {
    try AtomicFile.write(keys[turn % 2], to: arguments[2], mode: 0o600, durable: arguments[1] == "rewrite-key")
    turn += 1
}
