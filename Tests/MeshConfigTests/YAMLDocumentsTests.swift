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
}
