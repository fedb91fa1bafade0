import Testing
@testable import MeshModel

@Suite("Strict decoding of Istio resources")
struct SchemaDecodingTests {
    static let canary: ConfigValue = [
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": ["name": "coordinator-canary", "namespace": "tai-system"],
        "spec": [
            "hosts": ["coordinator"],
            "http": [
                ["match": [["headers": ["user-agent": ["exact": "canary-tester"]]]],
                 "route": [["destination": ["host": "coordinator", "subset": "canary"], "weight": 100]]],
            ],
        ],
    ]

    func decodeError(_ document: ConfigValue) -> ResourceDecodeError? {
        do {
            _ = try MeshResource(document: document)
            return nil
        } catch {
            return error
        }
    }

    func replacing(_ value: ConfigValue, at path: [String], with replacement: ConfigValue?) -> ConfigValue {
        guard let first = path.first else { return replacement ?? .null }
        if case .array(var elements) = value, let index = Int(first) {
            elements[index] = replacing(elements[index], at: Array(path.dropFirst()), with: replacement)
            return .array(elements)
        }
        guard case .object(var object) = value else { return value }
        if path.count == 1 {
            object[first] = replacement
        } else {
            object[first] = replacing(object[first] ?? [:], at: Array(path.dropFirst()), with: replacement)
        }
        return .object(object)
    }

    @Test("a valid VirtualService decodes into typed fields")
    func decodesTypedFields() throws {
        let resource = try MeshResource(document: Self.canary)
        #expect(resource.key == ResourceKey(kind: .virtualService, namespace: "tai-system", name: "coordinator-canary"))
        guard case .virtualService(let service) = resource.spec else {
            Issue.record("wrong kind")
            return
        }
        #expect(service.hosts == ["coordinator"])
        let route = try #require(service.http?.first)
        #expect(route.match?.first?.headers?["user-agent"]?.exact == "canary-tester")
        #expect(route.route?.first?.destination.subset == "canary")
        #expect(route.route?.first?.weight == 100)
    }

    @Test("an unknown field is refused with its path and the fields that exist")
    func unknownField() throws {
        let document = replacing(Self.canary, at: ["spec", "http", "0", "route", "0", "destinaton"], with: "x")
        let error = try #require(decodeError(document))
        #expect(error.error.path.description == "spec.http[0].route[0].destinaton")
        #expect(error.error.reason.contains("unknown field \"destinaton\""))
        #expect(error.error.reason.contains("destination"))
        #expect(error.description.hasPrefix("VirtualService tai-system/coordinator-canary: "))
    }

    @Test("a wrong type names the field and what was expected")
    func wrongType() throws {
        let error = try #require(decodeError(replacing(Self.canary, at: ["spec", "hosts"], with: "coordinator")))
        #expect(error.error.path.description == "spec.hosts")
        #expect(error.error.reason == "expected a list, found a string")
    }

    @Test("a quoted number is a string, as Istio's CRD schema treats it")
    func quotedNumber() throws {
        let error = try #require(decodeError(replacing(Self.canary, at: ["spec", "http", "0", "route", "0", "weight"], with: "100")))
        #expect(error.error.path.description == "spec.http[0].route[0].weight")
        #expect(error.error.reason == "expected an integer, found a string")
    }

    @Test("a missing required field is refused")
    func missingRequired() throws {
        let error = try #require(decodeError(replacing(Self.canary, at: ["spec", "http", "0", "route", "0", "destination", "host"], with: nil)))
        #expect(error.error.path.description == "spec.http[0].route[0].destination.host")
        #expect(error.error.reason == "missing required field \"host\"")
    }

    @Test("two members of a oneof are refused")
    func oneofConflict() throws {
        let document = replacing(Self.canary, at: ["spec", "http", "0", "match", "0", "headers", "user-agent", "prefix"], with: "canary")
        let error = try #require(decodeError(document))
        #expect(error.error.path.description == "spec.http[0].match[0].headers[\"user-agent\"].prefix")
        #expect(error.error.reason.contains("only one of exact, prefix, regex"))
    }

    @Test("an unknown enum value lists the allowed ones")
    func unknownEnumValue() throws {
        let document: ConfigValue = [
            "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": ["name": "default", "namespace": "tai-system"],
            "spec": ["mtls": ["mode": "STRICTER"]],
        ]
        let error = try #require(decodeError(document))
        #expect(error.error.path.description == "spec.mtls.mode")
        #expect(error.error.reason == "unknown value \"STRICTER\"; expected one of UNSET, DISABLE, PERMISSIVE, STRICT")
    }

    @Test("integers must fit the field's range")
    func integerRange() throws {
        let document: ConfigValue = [
            "apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
            "metadata": ["name": "w", "namespace": "ns"],
            "spec": ["address": "127.0.0.9", "weight": -1],
        ]
        let error = try #require(decodeError(document))
        #expect(error.error.path.description == "spec.weight")
        #expect(error.error.reason.contains("out of range"))
    }

    @Test("unsupported kinds and versions are refused")
    func kindsAndVersions() throws {
        var document = replacing(Self.canary, at: ["kind"], with: "Deployment")
        #expect(decodeError(document)?.error.reason.hasPrefix("unsupported kind \"Deployment\"") == true)
        document = replacing(Self.canary, at: ["apiVersion"], with: "security.istio.io/v1")
        #expect(decodeError(document)?.error.reason.hasPrefix("VirtualService is not served as \"security.istio.io/v1\"") == true)
        for version in ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"] {
            #expect(decodeError(replacing(Self.canary, at: ["apiVersion"], with: .string(version))) == nil)
        }
    }

    @Test("metadata names must be DNS names, and the namespace defaults to default")
    func metadataRules() throws {
        let bad = replacing(Self.canary, at: ["metadata", "name"], with: "Coordinator_Canary")
        #expect(decodeError(bad)?.error.path.description == "metadata.name")
        let noNamespace = replacing(Self.canary, at: ["metadata", "namespace"], with: nil)
        #expect(try MeshResource(document: noNamespace).metadata.namespace == "default")
    }

    @Test("Istio's alternative CRD key is accepted")
    func alternativeKey() throws {
        let document = replacing(Self.canary, at: ["spec", "http", "0", "mirror_percent"], with: 5)
        let resource = try MeshResource(document: document)
        guard case .virtualService(let service) = resource.spec else { return }
        #expect(service.http?.first?.mirrorPercent == 5)
    }

    @Test("status written by Istio is accepted and dropped")
    func statusAccepted() throws {
        let document = replacing(Self.canary, at: ["status"], with: ["validationMessages": []])
        #expect(decodeError(document) == nil)
    }

    @Test("decoding what meshd encodes gives the same resource")
    func roundTrip() throws {
        let resource = try MeshResource(document: Self.canary)
        #expect(try MeshResource(document: resource.configValue) == resource)
    }
}
