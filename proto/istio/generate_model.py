#!/usr/bin/env python3
"""Generate meshd's Swift model of the Istio kinds from the pinned field inventory.

Input:  proto/istio/istio-api-fields.txt (facts about every field of Istio's kinds: YAML name,
        number, type, repeated/required/oneof; copied from the project's shared reference).
Output: Sources/MeshModel/Generated/IstioSchema.swift — one Swift struct per Istio message and one
        enum per Istio enum reachable from the kinds meshd accepts, each with a strict decoder
        (unknown fields, wrong types, missing required fields and oneof conflicts are errors with
        a field path) and an encoder back to the YAML/JSON shape.

The output is committed and never edited by hand; run this script again after changing it.
usage: generate_model.py [FIELDS_FILE] [OUT_FILE]
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

# The kinds meshd reads, plus the mesh-wide config (mesh.yaml).
ROOTS = [
    "istio.networking.v1alpha3.ServiceEntry",
    "istio.networking.v1alpha3.WorkloadEntry",
    "istio.networking.v1alpha3.WorkloadGroup",
    "istio.networking.v1alpha3.VirtualService",
    "istio.networking.v1alpha3.DestinationRule",
    "istio.networking.v1alpha3.Sidecar",
    "istio.networking.v1alpha3.Gateway",
    "istio.security.v1beta1.PeerAuthentication",
    "istio.security.v1beta1.AuthorizationPolicy",
    "istio.security.v1beta1.RequestAuthentication",
    "istio.telemetry.v1alpha1.Telemetry",
    "istio.mesh.v1alpha1.MeshConfig",
]

# Swift names where the proto name alone would collide across Istio packages or read badly.
RENAMES = {
    "istio.type.v1beta1.WorkloadSelector": "PolicySelector",
    "istio.type.v1beta1.PortSelector": "PolicyPortSelector",
    "istio.type.v1beta1.WorkloadMode": "PolicyWorkloadMode",
    "istio.security.v1beta1.Rule": "AuthorizationRule",
    "istio.security.v1beta1.Source": "AuthorizationSource",
    "istio.security.v1beta1.Operation": "AuthorizationOperation",
    "istio.security.v1beta1.Condition": "AuthorizationCondition",
    "istio.telemetry.v1alpha1.Tracing": "TelemetryTracing",
    "istio.telemetry.v1alpha1.Metrics": "TelemetryMetrics",
    "istio.telemetry.v1alpha1.AccessLogging": "TelemetryAccessLogging",
    "istio.telemetry.v1alpha1.WorkloadMode": "TelemetryWorkloadMode",
    "istio.telemetry.v1alpha1.ProviderRef": "ProviderRef",
    "istio.telemetry.v1alpha1.MetricSelector": "MetricSelector",
    "istio.telemetry.v1alpha1.MetricsOverrides": "MetricsOverrides",
    "istio.mesh.v1alpha1.ProxyConfig": "MeshProxyConfig",
    "istio.mesh.v1alpha1.Tracing": "MeshProxyTracing",
    "istio.networking.v1alpha3.WorkloadGroup.ObjectMeta": "WorkloadGroupMetadata",
}

SCALARS = {
    "string": "String",
    "bool": "Bool",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "uint64": "UInt64",
    "double": "Double",
    "bytes": "String",
    "Duration": "IstioDuration",
    "Struct": "ConfigValue",
    "BoolValue": "Bool",
    "Int32Value": "Int32",
    "UInt32Value": "UInt32",
    "Int64Value": "Int64",
    "UInt64Value": "UInt64",
    "DoubleValue": "Double",
}

SWIFT_KEYWORDS = {
    "protocol", "default", "operator", "extension", "import", "in", "is", "as", "class", "struct",
    "enum", "func", "var", "let", "return", "where", "while", "for", "repeat", "switch", "case",
    "break", "continue", "self", "super", "init", "deinit", "subscript", "static", "public",
    "private", "internal", "fileprivate", "open", "true", "false", "nil", "try", "throw", "throws",
    "catch", "do", "else", "if", "guard", "defer", "inout", "typealias", "associatedtype", "any",
    "some", "Type",
}


class Field:
    def __init__(self, json_name, number, ftype, repeated, oneof, markers, alt):
        self.json_name = json_name
        self.number = number
        self.ftype = ftype
        self.repeated = repeated
        self.oneof = oneof
        self.markers = markers
        self.alt = alt

    @property
    def required(self):
        return "REQUIRED" in self.markers


class Message:
    def __init__(self, full, fields, package):
        self.full = full
        self.fields = fields
        self.package = package


class Enum:
    def __init__(self, full, values):
        self.full = full
        self.values = values


FIELD_RE = re.compile(
    r"^(?P<json>[A-Za-z0-9_]+)(\((?P<proto>[A-Za-z0-9_]+)\))?=(?P<num>\d+) (?P<type>\S+)"
    r"(?P<rest>.*)$"
)


def parse(path):
    messages, enums = {}, {}
    package = None
    with open(path) as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("==="):
                package = line.split(" package ", 1)[1].split()[0]
                continue
            if line.startswith("M "):
                head, _, body = line[2:].partition(": ")
                name = head.split()[0]
                body = re.sub(r"\s*\{reserved[^}]*\}\s*$", "", body)
                fields = []
                if body.strip() != "(no fields)":
                    for part in body.split("; "):
                        m = FIELD_RE.match(part.strip())
                        if not m:
                            raise SystemExit(f"cannot parse field {part!r} of {name}")
                        rest = m.group("rest")
                        oneof = None
                        om = re.search(r"\(oneof (\w+)\)", rest)
                        if om:
                            oneof = om.group(1)
                        markers = set(re.findall(r"\[([A-Za-z-]+)(?::[^\]]*)?\]", rest))
                        alt = re.findall(r"\[crd-alt:([^\]]+)\]", rest)
                        fields.append(Field(
                            m.group("json"), int(m.group("num")), m.group("type"),
                            " repeated" in rest, oneof, markers, alt[0] if alt else None))
                messages[f"{package}.{name}"] = Message(f"{package}.{name}", fields, package)
            elif line.startswith("E "):
                head, _, body = line[2:].partition(": ")
                values = []
                for part in body.split():
                    vm = re.match(r"^([A-Za-z0-9_]+)=(\d+)(.*)$", part)
                    values.append((vm.group(1), int(vm.group(2)), vm.group(3)))
                enums[f"{package}.{head.strip()}"] = Enum(f"{package}.{head.strip()}", values)
    return messages, enums


def resolve(type_name, package, messages, enums):
    """Resolves a type reference written relative to `package` to a full name."""
    if type_name.startswith("istio."):
        return type_name
    candidate = f"{package}.{type_name}"
    if candidate in messages or candidate in enums:
        return candidate
    raise SystemExit(f"unresolved type {type_name} in {package}")


def swift_path(full, messages, enums):
    """The Swift type path of a full proto name, e.g. `TrafficPolicy.PortTrafficPolicy`."""
    if full in RENAMES:
        return RENAMES[full]
    package = messages[full].package if full in messages else None
    if package is None:
        # Enum: find the package by prefix match against known messages/packages.
        package = ".".join(full.split(".")[:3])
    rel = full[len(package) + 1:]
    parts = rel.split(".")
    # An enclosing type that was renamed carries the rename.
    for i in range(len(parts) - 1, 0, -1):
        outer = f"{package}." + ".".join(parts[:i])
        if outer in RENAMES:
            return RENAMES[outer] + "." + ".".join(parts[i:])
    return rel


def package_of(full, messages, enums):
    if full in messages:
        return messages[full].package
    for pkg in ("istio.networking.v1alpha3", "istio.security.v1beta1", "istio.telemetry.v1alpha1",
                "istio.type.v1beta1", "istio.mesh.v1alpha1"):
        if full.startswith(pkg + "."):
            return pkg
    raise SystemExit(f"no package for {full}")


def field_swift_type(field, msg, messages, enums):
    t = field.ftype
    if t.startswith("map<"):
        key, value = t[4:-1].split(",")
        return f"[String: {element_type(value, msg, messages, enums)}]", True
    element = element_type(t[len("enum:"):] if t.startswith("enum:") else t, msg, messages, enums)
    if field.repeated:
        return f"[{element}]", True
    return element, False


def element_type(t, msg, messages, enums):
    if t.startswith("enum:"):
        t = t[len("enum:"):]
    if t in SCALARS:
        return SCALARS[t]
    full = resolve(t, msg.package, messages, enums)
    return swift_path(full, messages, enums)


def referenced_types(msg, messages, enums):
    out = []
    for field in msg.fields:
        t = field.ftype
        if t.startswith("map<"):
            t = t[4:-1].split(",")[1]
        if t.startswith("enum:"):
            t = t[len("enum:"):]
        if t in SCALARS:
            continue
        out.append(resolve(t, msg.package, messages, enums))
    return out


def reachable(messages, enums):
    seen = set()
    queue = list(ROOTS)
    while queue:
        full = queue.pop()
        if full in seen:
            continue
        seen.add(full)
        if full in messages:
            queue.extend(referenced_types(messages[full], messages, enums))
    return seen


def ident(name):
    return f"`{name}`" if name in SWIFT_KEYWORDS else name


def doc_markers(field):
    notes = []
    if field.required:
        notes.append("required")
    if field.oneof:
        notes.append(f"oneof `{field.oneof}`")
    if "deprecated" in field.markers or "deprecated-doc" in field.markers:
        notes.append("deprecated")
    if "hidden" in field.markers:
        notes.append("hidden from Istio's docs")
    if "extended" in field.markers:
        notes.append("extended release channel")
    if field.alt:
        notes.append(f"also accepted as `{field.alt}`")
    return ("; " + ", ".join(notes)) if notes else ""


def emit_message(msg, swift_name, messages, enums, out, indent):
    pad = " " * indent
    local = swift_name.split(".")[-1]
    out.append(f"{pad}/// Istio `{msg.full}`: the fields users write under this key, by their YAML names.")
    out.append(f"{pad}public struct {local}: IstioMessage {{")
    props = []
    for field in msg.fields:
        stype, _ = field_swift_type(field, msg, messages, enums)
        optional = not field.required
        props.append((field, stype, optional))
        out.append(f"{pad}    /// `{field.json_name}` (field {field.number}){doc_markers(field)}.")
        out.append(f"{pad}    public var {ident(field.json_name)}: {stype}{'?' if optional else ''}")
    if props:
        out.append("")
    # Memberwise initialiser.
    params = ", ".join(
        f"{ident(f.json_name)}: {t}{'? = nil' if opt else ''}" for f, t, opt in props)
    out.append(f"{pad}    /// Creates a value from its fields.")
    out.append(f"{pad}    public init({params}) {{")
    for f, _, _ in props:
        out.append(f"{pad}        self.{ident(f.json_name)} = {ident(f.json_name)}")
    out.append(f"{pad}    }}")
    out.append("")
    # Decoder.
    names = ", ".join(f'"{f.json_name}"' for f in msg.fields)
    aliases = ", ".join(f'"{f.alt}": "{f.json_name}"' for f in msg.fields if f.alt)
    groups = {}
    for f in msg.fields:
        if f.oneof:
            groups.setdefault(f.oneof, []).append(f.json_name)
    oneofs = ", ".join("[" + ", ".join(f'"{n}"' for n in g) + "]" for g in groups.values())
    out.append(f"{pad}    /// Decodes strictly: unknown fields, wrong types, missing required fields and")
    out.append(f"{pad}    /// conflicting oneof members are errors naming the field path.")
    out.append(f"{pad}    public init(config source: ConfigValue, at location: FieldPath) throws(SchemaError) {{")
    var = "reader" if props else "_"
    out.append(
        f'{pad}        let {var} = try ObjectReader(source, at: location, type: "{local}", fields: [{names}]'
        + (f", aliases: [{aliases}]" if aliases else "")
        + (f", oneofs: [{oneofs}]" if oneofs else "")
        + ")")
    for f, _, opt in props:
        call = "optional" if opt else "required"
        out.append(f'{pad}        self.{ident(f.json_name)} = try reader.{call}("{f.json_name}")')
    out.append(f"{pad}    }}")
    out.append("")
    out.append(f"{pad}    /// The value in its YAML/JSON shape; unset fields are left out.")
    out.append(f"{pad}    public var configValue: ConfigValue {{")
    if props:
        out.append(f"{pad}        var writer = ObjectWriter()")
        for f, _, _ in props:
            out.append(f'{pad}        writer.set("{f.json_name}", self.{ident(f.json_name)})')
        out.append(f"{pad}        return writer.value")
    else:
        out.append(f"{pad}        ObjectWriter().value")
    out.append(f"{pad}    }}")
    out.append(f"{pad}}}")


def emit_enum(enum, swift_name, out, indent):
    pad = " " * indent
    local = swift_name.split(".")[-1]
    out.append(f"{pad}/// Istio enum `{enum.full}`; cases keep Istio's own value names.")
    out.append(f"{pad}public enum {local}: String, IstioEnum {{")
    for name, number, marks in enum.values:
        note = ""
        if "deprecated" in marks:
            note = ", deprecated"
        if "hidden" in marks:
            note += ", hidden from Istio's docs"
        out.append(f"{pad}    /// `{name}` ({number}{note}).")
        out.append(f"{pad}    case {name}")
    out.append(f"{pad}}}")


def main():
    fields_file = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "istio-api-fields.txt")
    out_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        TOP, "Sources", "MeshModel", "Generated", "IstioSchema.swift")
    messages, enums = parse(fields_file)
    wanted = reachable(messages, enums)

    # Group by Swift path: top-level types first, nested ones inside `extension Outer`.
    entries = []
    for full in sorted(wanted):
        path = swift_path(full, messages, enums)
        entries.append((path, full))
    entries.sort(key=lambda e: (e[0].count("."), e[0]))

    out = [
        "// DO NOT EDIT. Generated by proto/istio/generate_model.py from proto/istio/istio-api-fields.txt.",
        "// swift-format-ignore-file",
        "",
    ]
    for path, full in entries:
        out.append("")
        if "." in path:
            outer = path.rsplit(".", 1)[0]
            out.append(f"extension {outer} {{")
            if full in messages:
                emit_message(messages[full], path, messages, enums, out, 4)
            else:
                emit_enum(enums[full], path, out, 4)
            out.append("}")
        else:
            if full in messages:
                emit_message(messages[full], path, messages, enums, out, 0)
            else:
                emit_enum(enums[full], path, out, 0)
    os.makedirs(os.path.dirname(out_file), exist_ok=True)
    with open(out_file, "w") as handle:
        handle.write("\n".join(out) + "\n")
    print(f"{len(entries)} types -> {out_file}", file=sys.stderr)


if __name__ == "__main__":
    main()
