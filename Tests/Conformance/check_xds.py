#!/usr/bin/env python3
"""Independent conformance check of what meshd serves, with Envoy's official Python bindings.

For each node in the expectations file, this script opens an ADS stream to meshd the way Envoy
does (CDS, then EDS for the EDS clusters, then LDS, then RDS for the routes the listeners name),
acknowledges every response, decodes every resource with `xds-protos`, walks every nested
message and `Any` (typed_config and friends), and reports:
  - unknown fields anywhere (there must be none),
  - `Any` payloads whose type the bindings do not know,
  - the resource names per type, compared with the expected ones.

usage: check_xds.py HOST:PORT EXPECTATIONS.json ROOTS_FILE [TRUST_BUNDLE.pem]
With a trust bundle the stream uses TLS (meshd's certificate names `meshd.istio-system.svc`); each expectation may
carry the `token` its stream authenticates with.
Prints a JSON report; exits 0 when everything matched, 1 otherwise.
"""
import importlib
import json
import queue
import sys
import threading

import grpc
from google.protobuf import any_pb2, message, symbol_database
from google.protobuf.unknown_fields import UnknownFieldSet

from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.config.core.v3 import base_pb2

TYPES = {
    "cds": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "eds": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "lds": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "rds": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "sds": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
}


def import_roots(roots_file):
    with open(roots_file) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                importlib.import_module(line[: -len(".proto")].replace("/", ".") + "_pb2")


def unpack(any_message):
    name = any_message.type_url.split("/", 1)[1]
    cls = symbol_database.Default().GetSymbol(name)
    decoded = cls()
    decoded.ParseFromString(any_message.value)
    return decoded


def is_repeated(field):
    # protobuf 6+ has `is_repeated`; older releases only `label`.
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == field.LABEL_REPEATED


def problems_in(msg, path, out):
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        out.append(f"{path}: {len(unknown)} unknown field(s) in {msg.DESCRIPTOR.full_name}: "
                   + ", ".join(str(field.field_number) for field in unknown))
    if isinstance(msg, any_pb2.Any):
        if not msg.type_url:
            return
        try:
            inner = unpack(msg)
        except KeyError:
            out.append(f"{path}: Any of unknown type {msg.type_url}")
            return
        problems_in(inner, f"{path}<{inner.DESCRIPTOR.full_name}>", out)
        return
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == value_field.TYPE_MESSAGE:
                for key, item in value.items():
                    problems_in(item, f"{path}.{field.name}[{key}]", out)
        elif is_repeated(field):
            for index, item in enumerate(value):
                problems_in(item, f"{path}.{field.name}[{index}]", out)
        else:
            problems_in(value, f"{path}.{field.name}", out)


class Stream:
    def __init__(self, channel, node, token=None):
        self.requests = queue.Queue()
        self.responses = queue.Queue()
        self.node = node
        self.first = True
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        metadata = [("authorization", f"Bearer {token}")] if token else None
        self.call = stub.StreamAggregatedResources(iter(self.requests.get, None), metadata=metadata)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.responses.put(error)

    def send(self, type_url, names=(), version="", nonce=""):
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), version_info=version, response_nonce=nonce)
        if self.first:
            request.node.CopyFrom(self.node)
            self.first = False
        self.requests.put(request)

    def receive(self, type_url):
        while True:
            response = self.responses.get(timeout=10)
            if isinstance(response, Exception):
                raise response
            if response.type_url == type_url:
                return response
            # Another type arrived first (the server pushes in its own order): acknowledge it.
            self.send(response.type_url, version=response.version_info, nonce=response.nonce)

    def fetch(self, short, names=()):
        type_url = TYPES[short]
        self.send(type_url, names)
        response = self.receive(type_url)
        self.send(type_url, names, version=response.version_info, nonce=response.nonce)
        return [unpack(item) for item in response.resources]

    def close(self):
        self.requests.put(None)
        self.call.cancel()


def resource_name(short, resource):
    return resource.cluster_name if short == "eds" else resource.name


def check(address, expectation, trust_bundle):
    node = base_pb2.Node(id=expectation["node"]["id"])
    for key, value in expectation["node"].get("metadata", {}).items():
        node.metadata.fields[key].string_value = value
    if trust_bundle:
        credentials = grpc.ssl_channel_credentials(root_certificates=trust_bundle)
        channel = grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", "meshd.istio-system.svc")])
    else:
        channel = grpc.insecure_channel(address)
    stream = Stream(channel, node, expectation.get("token"))
    report = {"node": node.id, "problems": [], "names": {}, "counts": {}}
    try:
        fetched = {"cds": stream.fetch("cds")}
        eds_names = sorted(c.eds_cluster_config.service_name or c.name for c in fetched["cds"] if c.type == c.EDS)
        fetched["eds"] = stream.fetch("eds", eds_names)
        fetched["lds"] = stream.fetch("lds")
        route_names = set()
        for listener in fetched["lds"]:
            for chain in listener.filter_chains:
                for network_filter in chain.filters:
                    config = unpack(network_filter.typed_config)
                    if config.DESCRIPTOR.full_name.endswith("HttpConnectionManager") and config.HasField("rds"):
                        route_names.add(config.rds.route_config_name)
        fetched["rds"] = stream.fetch("rds", sorted(route_names))
        if "sds" in expectation:
            fetched["sds"] = stream.fetch("sds", ["default", "ROOTCA"])
        for short, resources in fetched.items():
            names = sorted(resource_name(short, r) for r in resources)
            report["names"][short] = names
            report["counts"][short] = len(resources)
            for resource in resources:
                problems_in(resource, f"{short}/{resource_name(short, resource)}", report["problems"])
            expected = sorted(expectation.get(short, []))
            if short in expectation and names != expected:
                report["problems"].append(f"{short}: names {names} != expected {expected}")
    except Exception as error:  # a failure to talk to meshd is itself a finding
        report["problems"].append(f"stream failed: {error!r}")
    finally:
        stream.close()
        channel.close()
    return report


def self_test():
    """The detector must see an unknown field, also inside an Any, or this check proves nothing."""
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.core.v3 import extension_pb2
    raw = cluster_pb2.Cluster(name="probe").SerializeToString() + bytes([0xf8, 0xff, 0x7f, 0x01])
    wrapped = extension_pb2.TypedExtensionConfig(name="probe", typed_config=any_pb2.Any(
        type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster", value=raw))
    found = []
    problems_in(wrapped, "self-test", found)
    return len(found) == 1 and "unknown field" in found[0]


def main():
    address, expectations_file, roots_file = sys.argv[1:4]
    trust_bundle = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None
    import_roots(roots_file)
    if not self_test():
        print("self-test failed: the unknown-field detector does not work with this protobuf runtime", file=sys.stderr)
        return 2
    with open(expectations_file) as handle:
        expectations = json.load(handle)
    reports = [check(address, expectation, trust_bundle) for expectation in expectations]
    print(json.dumps(reports, indent=2, sort_keys=True))
    return 0 if all(not report["problems"] for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
