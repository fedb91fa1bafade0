import Testing
import MeshModel

@Suite("Durations as Istio YAML writes them")
struct IstioDurationTests {
    @Test("protobuf and Go forms parse", arguments: [
        ("5s", 5_000_000_000), ("1.5s", 1_500_000_000), ("0.001s", 1_000_000), ("500ms", 500_000_000),
        ("1m", 60_000_000_000), ("1h30m", 5_400_000_000_000), ("250us", 250_000), ("0s", 0),
    ] as [(String, Int64)])
    func parses(text: String, nanoseconds: Int64) {
        #expect(IstioDuration(parsing: text)?.nanoseconds == nanoseconds)
    }

    @Test("malformed durations are refused", arguments: ["5", "-1s", "abc", "", "1.2.3s", "5 s", "1d"])
    func refuses(text: String) {
        #expect(IstioDuration(parsing: text) == nil)
    }

    @Test("durations are written as seconds")
    func writes() {
        #expect(IstioDuration(nanoseconds: 90_000_000_000).description == "90s")
        #expect(IstioDuration(nanoseconds: 250_000_000).description == "0.25s")
        #expect(IstioDuration.milliseconds(1).description == "0.001s")
    }

    @Test("a non-string duration names the expected form")
    func wrongType() {
        #expect(throws: SchemaError(path: FieldPath().appending("timeout"), reason: "expected a duration string such as \"5s\" or \"1.5s\", found an integer")) {
            try IstioDuration(config: 5, at: FieldPath().appending("timeout"))
        }
    }
}
