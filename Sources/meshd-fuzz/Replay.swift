#if !FUZZING
import Foundation

/// Without libFuzzer (a normal build): runs inputs through a fuzz target, as the regression run
/// over the committed corpus and to reproduce a finding: `meshd-fuzz TARGET FILE|DIR...`.
/// `meshd-fuzz seed xds DIR` writes seed inputs for the xds target.
@main
struct Replay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "seed", arguments.count == 3, arguments[1] == "xds" {
            try SeedInputs.writeXDS(to: arguments[2])
            return
        }
        guard let target = arguments.first, FuzzTargets.names.contains(target), arguments.count > 1 else {
            FileHandle.standardError.write(Data("usage: meshd-fuzz \(FuzzTargets.names.joined(separator: "|")) FILE|DIR...\n".utf8))
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                FuzzTargets.run(target, Array(data))
                count += 1
            }
        }
        print("\(target): \(count) inputs, no crash")
    }
}
#endif
