import Testing
import MeshConfig
import MeshModel

@Suite("YAML as users write it")
struct YAMLDocumentsTests {
    @Test("multi-document files skip empty documents and type plain scalars")
    func multiDocument() throws {
        let text = """
            # leading comment
            ---
            a: 1
            b: "2"
            c: true
            d: 1.5
            e: ~
            f: 'quoted'
            ---
            # only a comment
            ---
            - x
            """
        let documents = try YAMLDocuments.parse(text, source: "t.yaml")
        #expect(documents.map(\.document) == [1, 3])
        #expect(documents[0].value == ["a": 1, "b": "2", "c": true, "d": 1.5, "e": nil, "f": "quoted"])
        #expect(documents[1].value == ["x"])
    }

    @Test("YAML 1.1 integers in every form; one too large for 64 bits (a sexagesimal that overflows, found by fuzzing) is a string, never a crash")
    func integers() throws {
        let text = "a: 0x1F\nb: 0o17\nc: 017\nd: 0b101\ne: 1:30\nf: -1_000\ng: +7\nh: 1:2:3:4:5:6:7:8:9:10:11:12:13\ni: 99999999999999999999\n"
        let documents = try YAMLDocuments.parse(text, source: "t.yaml")
        guard case .object(let object)? = documents.first?.value else {
            Issue.record("not an object: \(documents)")
            return
        }
        #expect(object["a"] == .int(31) && object["b"] == .int(15) && object["c"] == .int(15) && object["d"] == .int(5))
        #expect(object["e"] == .int(90) && object["f"] == .int(-1000) && object["g"] == .int(7))
        #expect(object["h"] == .string("1:2:3:4:5:6:7:8:9:10:11:12:13"))
        #expect(object["i"] == .string("99999999999999999999"))
    }

    @Test("duplicate keys are refused with the line")
    func duplicateKeys() {
        #expect {
            try YAMLDocuments.parse("a: 1\nb: 2\na: 3\n", source: "dup.yaml")
        } throws: { error in
            guard let error = error as? ConfigLoadError else { return false }
            return error.source == "dup.yaml" && error.reason.contains("duplicate") && error.line != nil
        }
    }

    @Test("syntax errors name the file and line")
    func syntaxError() {
        #expect {
            try YAMLDocuments.parse("a: [1, 2\nb: 3\n", source: "broken.yaml")
        } throws: { error in
            guard let error = error as? ConfigLoadError else { return false }
            return error.description.hasPrefix("broken.yaml") && error.reason.hasPrefix("invalid YAML") && error.line != nil
        }
    }

    @Test("JSON is read too, and ConfigJSON writes it back")
    func json() throws {
        let value = try #require(YAMLDocuments.parse(#"{"a": [1, "two", {"b": null}], "c": false}"#, source: "x.json").first?.value)
        #expect(value == ["a": [1, "two", ["b": nil]], "c": false])
        #expect(ConfigJSON.encode(value) == #"{"a":[1,"two",{"b":null}],"c":false}"#)
        #expect(ConfigJSON.quote("a\"b\n\u{1}") == #""a\"b\n\u0001""#)
    }

    @Test("a YAML error never quotes the input: a broken Secret's key stays out of errors and logs")
    func errorsQuoteNothing() {
        let text = "apiVersion: v1\nkind: Secret\nstringData:\n  tls.key: MIIEvTOPSECRET\u{1}KEY\n"
        #expect { try YAMLDocuments.parse(text, source: "secret.yaml") } throws: { error in
            let description = "\(error)"
            return description.contains("invalid YAML") && !description.contains("TOPSECRET")
        }
        let scanner = "a: b\nkey: [TOPSECRET, \n  : x\n"
        #expect { try YAMLDocuments.parse(scanner, source: "secret.yaml") } throws: { error in
            "\(error)".contains("invalid YAML") && !"\(error)".contains("TOPSECRET")
        }
    }
}
