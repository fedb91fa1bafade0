public import MeshModel

/// Turns a kubectl export of a cluster running Istio into meshd configuration (`meshctl import
/// kubernetes`): a MESH_INTERNAL ServiceEntry per Service, a WorkloadEntry per ready Pod, the
/// Istio resources and TLS Secrets as they are (without what the API server set), and findings:
/// what could not be carried over and why (notes), and what makes the export unusable (errors:
/// with any, nothing is produced). Pure: the caller reads the files and writes the result.
public enum KubernetesImport {
    /// What to import.
    public struct Options: Sendable {
        /// Only these namespaces (all when `nil`).
        public var namespaces: Set<String>?
        /// Leave out objects of kinds meshd does not import (listed as notes) instead of refusing
        /// the export.
        public var skipUnsupported: Bool

        /// Every namespace, unsupported kinds refused.
        public init(namespaces: Set<String>? = nil, skipUnsupported: Bool = false) {
            self.namespaces = namespaces
            self.skipUnsupported = skipUnsupported
        }
    }

    /// One object of the export, where it is.
    public struct Input: Sendable {
        /// The file (or `stdin`).
        public var source: String
        /// The document, or item of a List, in it.
        public var document: SourceDocument

        /// An object of `source`.
        public init(source: String, document: SourceDocument) {
            self.source = source
            self.document = document
        }
    }

    /// Something said about one object of the export.
    public struct Finding: Hashable, Sendable, CustomStringConvertible {
        /// `export.yaml, document 1, item 4`.
        public var origin: String
        /// `Service shop/cart`.
        public var object: String
        /// What and why.
        public var reason: String

        /// `export.yaml, document 1, item 4 (Service shop/cart): reason`.
        public var description: String { "\(origin) (\(object)): \(reason)" }
    }

    /// What an import gives.
    public struct Result: Sendable {
        /// meshd's resources, in a stable order (namespace, kind, name); empty when there are errors.
        public var resources: [MeshResource] = []
        /// What was left out or changed, and why.
        public var notes: [Finding] = []
        /// What makes the export unusable.
        public var errors: [Finding] = []
    }

    /// The kinds of Kubernetes' own API that an import reads (beyond Secrets, which are resources).
    public static let convertedKinds: Set<String> = ["Service", "Pod", "EndpointSlice", "Endpoints", "ServiceAccount", "Node", "Namespace"]
    /// Namespaces of Kubernetes itself, left out unless asked for.
    static let systemNamespaces: Set<String> = ["kube-system", "kube-public", "kube-node-lease"]

    /// Converts the objects of an export.
    public static func convert(_ inputs: [Input], options: Options = Options()) -> Result {
        var state = Conversion(options: options)
        for input in inputs { state.classify(input) }
        state.convertServices()
        state.convertPods()
        return state.finish()
    }

    /// The object without what the API server and controllers set: `status`, the metadata
    /// Kubernetes keeps (uid, resourceVersion, generation, timestamps, managedFields, owners,
    /// finalizers) and kubectl's last-applied annotation.
    public static func withoutServerFields(_ value: ConfigValue) -> ConfigValue {
        guard var object = value.objectValue else { return value }
        object["status"] = nil
        guard var metadata = object["metadata"]?.objectValue else { return .object(object) }
        for field in ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds"] {
            metadata[field] = nil
        }
        if var annotations = metadata["annotations"]?.objectValue {
            annotations[lastAppliedAnnotation] = nil
            metadata["annotations"] = annotations.isEmpty ? nil : .object(annotations)
        }
        object["metadata"] = .object(metadata)
        return .object(object)
    }

    /// kubectl's copy of the last applied object (a Secret's included, data and all).
    public static let lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

    /// The object as meshd reads it: without server-set fields when it was exported from a
    /// Kubernetes API server (``isExported(_:)``), else as written.
    public static func asRead(_ value: ConfigValue) -> ConfigValue {
        isExported(value) ? withoutServerFields(value) : value
    }

    /// Whether the object was read from a Kubernetes API server (only the server sets `uid`):
    /// its server-set fields mean nothing to meshd.
    public static func isExported(_ value: ConfigValue) -> Bool {
        value["metadata"]?["uid"] != nil
    }
}

/// One object of the export, read far enough to place it.
struct ExportedObject {
    var origin: String
    var apiVersion: String
    var kind: String
    var name: String
    var namespace: String
    var value: ConfigValue

    var label: String { kind == "Node" || kind == "Namespace" ? "\(kind) \(name)" : "\(kind) \(namespace)/\(name)" }
    var labels: [String: String] { Self.strings(value["metadata"]?["labels"]) }
    var annotations: [String: String] { Self.strings(value["metadata"]?["annotations"]) }

    static func strings(_ value: ConfigValue?) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in value?.objectValue?.pairs ?? [] { if let text = value.stringValue { out[key] = text } }
        return out
    }
}

extension ConfigValue {
    /// An integer, also from a number written as a string.
    var integer: Int64? {
        switch self {
        case .int(let value): value
        case .string(let text): Int64(text)
        default: nil
        }
    }
}
