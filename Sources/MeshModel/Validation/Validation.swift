/// Checks beyond the schema: what Istio's validating webhook refuses, plus what meshd needs to
/// run without Kubernetes. Every problem names its field path.
public enum Validation {
    /// The problems of one resource, in field order; empty when it is valid. `written` is the spec
    /// as the document had it, when at hand (else the spec is encoded again).
    public static func problems(of resource: MeshResource, written: ConfigValue? = nil) -> [SchemaError] {
        let spec = FieldPath().appending("spec")
        var out = Checker(root: spec, namespace: resource.metadata.namespace)
        switch resource.spec {
        case .serviceEntry(let entry): out.check(entry)
        case .workloadEntry(let entry): out.check(entry, at: spec)
        case .workloadGroup(let group): out.check(group)
        case .virtualService(let service): out.check(service)
        case .destinationRule(let rule): out.check(rule)
        case .sidecar(let sidecar): out.check(sidecar)
        case .gateway(let gateway): out.check(gateway)
        case .peerAuthentication(let policy): out.check(policy)
        case .authorizationPolicy(let policy): out.check(policy)
        case .requestAuthentication(let policy): out.check(policy)
        case .telemetry(let telemetry): out.check(telemetry)
        case .secret(let secret): return Checker.problems(of: secret)
        }
        // Fields meshd never acts on; a check above may have refused one already, in its words.
        let reported = Set(out.problems.map(\.path))
        out.add(FieldSupport.refusals(in: written ?? resource.spec.configValue, of: resource.kind, at: spec).filter { !reported.contains($0.path) })
        return out.problems
    }
}

/// Collects problems while walking a spec.
struct Checker {
    let root: FieldPath
    /// The namespace of the resource being checked.
    let namespace: String
    private(set) var problems: [SchemaError] = []

    init(root: FieldPath, namespace: String = "default") {
        self.root = root
        self.namespace = namespace
    }

    mutating func fail(_ path: FieldPath, _ reason: String) {
        problems.append(SchemaError(path: path, reason: reason))
    }

    mutating func add(_ more: [SchemaError]) {
        problems += more
    }

    mutating func port(_ number: UInt32?, at path: FieldPath, allowZero: Bool = false) {
        guard let number else { return }
        if number > 65535 || (number == 0 && !allowZero) {
            fail(path, "port \(number) is out of range 1-65535")
        }
    }

    mutating func percent(_ value: Double?, at path: FieldPath) {
        guard let value else { return }
        if !(0...100).contains(value) { fail(path, "percentage \(value) is out of range 0-100") }
    }

    mutating func nonNegative(_ value: (some BinaryInteger)?, at path: FieldPath) {
        if let value, value < 0 { fail(path, "must not be negative") }
    }

    mutating func unique(_ values: [String], at path: FieldPath, what: String) {
        var seen: Set<String> = []
        for (index, value) in values.enumerated() where !seen.insert(value).inserted {
            fail(path.appending(index: index), "duplicate \(what) \"\(value)\"")
        }
    }

    mutating func labels(_ labels: [String: String]?, at path: FieldPath) {
        for (key, value) in labels ?? [:] {
            if key.isEmpty || key.count > 317 { fail(path.appending(key), "invalid label key") }
            if value.count > 63 { fail(path.appending(key), "label value longer than 63 characters") }
        }
    }
}
