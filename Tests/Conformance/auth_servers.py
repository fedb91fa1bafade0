#!/usr/bin/env python3
"""Peers of the end-user authentication tests (Tests/EndToEndTests/RequestAuthenticationEndToEndTests.swift).

  mint DIR                    keys and tokens: DIR/jwks-rs.json (kid rs1), DIR/jwks-rs-rotated.json (rs1 + rs2),
                              DIR/jwks-ec.json (kid ec1), DIR/tokens.json (name -> token)
  jwks HOST PORT FILE [CERT KEY]   serves FILE (read on every request) at any path but /moved (a
                              redirect to /keys); TLS with CERT/KEY
  ext-authz-http HOST PORT    Envoy's HTTP ext_authz check: allows when x-ext-authz is "allow"
  ext-authz-grpc HOST PORT    envoy.service.auth.v3.Authorization/Check, the same decision

Both authorization servers answer an allowed request with the upstream header
x-ext-authz-check-result: allowed and x-ext-authz-received: <the request header names they got,
sorted>, and a denied one with 403 and x-ext-authz-check-result: denied.
"""
import base64
import http.server
import json
import os
import ssl
import sys
import time

ISSUER_RS = "https://rs.issuer.meshd.test"
ISSUER_EC = "https://ec.issuer.meshd.test"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def number(value):
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def mint(directory):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    rs1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec1 = ec.generate_private_key(ec.SECP256R1())

    def rsa_jwk(key, kid):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": number(numbers.n), "e": number(numbers.e)}

    def ec_jwk(key, kid):
        numbers = key.public_key().public_numbers()
        return {"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
                "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}

    def token(claims, key=rs1, kid="rs1", alg="RS256"):
        header = {"alg": alg, "typ": "JWT", "kid": kid}
        signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        if alg == "none":
            return signing_input.decode() + "."
        if alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64(signature)

    now = int(time.time())
    base = {"iss": ISSUER_RS, "sub": "alice", "aud": "api", "iat": now, "exp": now + 3600}

    def claims(**changes):
        out = dict(base)
        out.update(changes)
        return {k: v for k, v in out.items() if v is not None}

    tokens = {
        "valid": token(claims()),
        "admin": token(claims(sub="admin-user")),
        "engineering": token(claims(groups=["staff", "engineering"])),
        "sales": token(claims(groups=["sales"])),
        "blocked": token(claims(org={"tier": "blocked"})),
        "gold": token(claims(org={"tier": "gold"})),
        "audiences": token(claims(aud=["web", "api"], azp="portal")),
        "expired": token(claims(iat=now - 7200, exp=now - 3600)),
        "wrong-issuer": token(claims(iss="https://elsewhere.meshd.test")),
        "wrong-audience": token(claims(aud="billing")),
        "alg-none": token(claims(), alg="none"),
        "unknown-kid": token(claims(), key=stranger, kid="stranger"),
        "rotated": token(claims(sub="rotated"), key=rs2, kid="rs2"),
        "ec": token({"iss": ISSUER_EC, "sub": "bob", "iat": now, "exp": now + 3600}, key=ec1, kid="ec1", alg="ES256"),
    }
    good = tokens["valid"]
    tokens["bad-signature"] = good[: good.rindex(".") + 1] + b64(b"\x00" * 256)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "jwks-rs.json"), "w") as f:
        json.dump({"keys": [rsa_jwk(rs1, "rs1")]}, f)
    with open(os.path.join(directory, "jwks-rs-rotated.json"), "w") as f:
        json.dump({"keys": [rsa_jwk(rs1, "rs1"), rsa_jwk(rs2, "rs2")]}, f)
    with open(os.path.join(directory, "jwks-ec.json"), "w") as f:
        json.dump({"keys": [ec_jwk(ec1, "ec1")]}, f)
    with open(os.path.join(directory, "tokens.json"), "w") as f:
        json.dump(tokens, f)


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_jwks(host, port, path, cert=None, key=None):
    class Handler(Quiet):
        def do_GET(self):
            if self.path == "/moved":
                self.reply(302, b"", [("location", "/keys")])
                return
            with open(path, "rb") as f:
                body = f.read()
            self.reply(200, body, [("content-type", "application/json")])

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()


def decide(headers):
    """(allowed, upstream headers) for request headers (lower-case names)."""
    received = ",".join(sorted(name for name in headers if not name.startswith(":")))
    if headers.get("x-ext-authz") == "allow":
        return True, [("x-ext-authz-check-result", "allowed"), ("x-ext-authz-received", received)]
    return False, [("x-ext-authz-check-result", "denied")]


def serve_http_authz(host, port):
    class Handler(Quiet):
        def check(self):
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            allowed, headers = decide({k.lower(): v for k, v in self.headers.items()})
            self.reply(200 if allowed else 403, b"" if allowed else b"denied by ext_authz", headers)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = check

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    print("listening", flush=True)
    server.serve_forever()


def serve_grpc_authz(host, port):
    from concurrent import futures

    import grpc
    from envoy.config.core.v3 import base_pb2
    from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
    from google.rpc import code_pb2, status_pb2
    from envoy.type.v3 import http_status_pb2

    class Authorization(external_auth_pb2_grpc.AuthorizationServicer):
        def Check(self, request, context):
            headers = dict(request.attributes.request.http.headers)
            print("check", request.attributes.request.http.path, flush=True)
            allowed, extra = decide(headers)
            options = [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v)) for k, v in extra]
            if allowed:
                return external_auth_pb2.CheckResponse(
                    status=status_pb2.Status(code=code_pb2.OK),
                    ok_response=external_auth_pb2.OkHttpResponse(headers=options))
            return external_auth_pb2.CheckResponse(
                status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
                denied_response=external_auth_pb2.DeniedHttpResponse(
                    status=http_status_pb2.HttpStatus(code=http_status_pb2.Forbidden), headers=options, body="denied by ext_authz"))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(Authorization(), server)
    server.add_insecure_port("%s:%d" % (host, port))
    server.start()
    print("listening", flush=True)
    server.wait_for_termination()


def main():
    command = sys.argv[1]
    if command == "mint":
        mint(sys.argv[2])
    elif command == "jwks":
        serve_jwks(sys.argv[2], int(sys.argv[3]), sys.argv[4], *(sys.argv[5:7]))
    elif command == "ext-authz-http":
        serve_http_authz(sys.argv[2], int(sys.argv[3]))
    elif command == "ext-authz-grpc":
        serve_grpc_authz(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
