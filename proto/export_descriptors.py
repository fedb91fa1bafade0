#!/usr/bin/env python3
"""Export the Envoy API descriptors meshd needs from the pinned `xds-protos` package.

`xds-protos` ships no .proto files, only `_pb2` modules that each carry a serialized
FileDescriptorProto. This script imports the roots listed in `envoy-api-roots.txt`, collects
the import closure into a FileDescriptorSet (for `protoc --descriptor_set_in`), and prints
the files to generate: those that define a message, enum or service reachable by type
reference from a root. Option-only files (validate, udpa/xds annotations) and the well-known
types that SwiftProtobuf already ships are left out.

usage: export_descriptors.py ROOTS_FILE OUT_DESCRIPTOR_SET OUT_FILE_LIST
"""
import importlib
import sys

from google.protobuf import descriptor_pb2


def module_for(proto_path):
    return proto_path[: -len(".proto")].replace("/", ".").replace("-", "_") + "_pb2"


def main():
    roots_file, out_set, out_list = sys.argv[1:4]
    roots = []
    with open(roots_file) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                roots.append(line)

    files = {}  # name -> FileDescriptorProto

    def load(name):
        if name in files:
            return
        module = importlib.import_module(module_for(name))
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        files[name] = proto
        for dep in proto.dependency:
            load(dep)

    for root in roots:
        load(root)

    # Which file defines each fully-qualified type.
    owner = {}

    def index(prefix, messages, enums, file_name):
        for enum in enums:
            owner[f"{prefix}.{enum.name}"] = file_name
        for message in messages:
            full = f"{prefix}.{message.name}"
            owner[full] = file_name
            index(full, message.nested_type, message.enum_type, file_name)

    for name, proto in files.items():
        index("." + proto.package if proto.package else "", proto.message_type, proto.enum_type, name)

    def referenced(proto):
        out = set()

        def walk(messages):
            for message in messages:
                for field in message.field:
                    if field.type_name:
                        out.add(owner[field.type_name])
                walk(message.nested_type)

        walk(proto.message_type)
        for service in proto.service:
            for method in service.method:
                out.add(owner[method.input_type])
                out.add(owner[method.output_type])
        return out

    wanted = set()
    queue = list(roots)
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.add(name)
        queue.extend(referenced(files[name]) - wanted)

    generate = sorted(n for n in wanted if not n.startswith("google/protobuf/"))

    descriptor_set = descriptor_pb2.FileDescriptorSet()
    # Dependencies first, in a stable order, so protoc can link every file.
    emitted = set()

    def emit(name):
        if name in emitted:
            return
        for dep in files[name].dependency:
            emit(dep)
        emitted.add(name)
        descriptor_set.file.append(files[name])

    for name in sorted(files):
        emit(name)

    with open(out_set, "wb") as handle:
        handle.write(descriptor_set.SerializeToString(deterministic=True))
    with open(out_list, "w") as handle:
        handle.write("\n".join(generate) + "\n")
    print(f"{len(files)} descriptors in the closure, {len(generate)} files to generate", file=sys.stderr)


if __name__ == "__main__":
    main()
