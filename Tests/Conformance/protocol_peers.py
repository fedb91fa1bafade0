#!/usr/bin/env python3
"""Peers of the protocol tests (Tests/EndToEndTests/ProtocolEndToEndTests.swift), on grpcio.

  banner HOST PORT [PORT ...]          a server-first protocol: on each port, writes "banner PORT\\n" to
                                       every connection as it opens, then closes it
  grpc-server HOST PORT NAME           tai.Governor over h2c (methods below)
  grpc-xds-server HOST PORT NAME       the same as a proxyless xDS server (GRPC_XDS_BOOTSTRAP): TLS and
                                       authorization from the listener meshd serves it
  grpc-call TARGET AUTHORITY METHOD PAYLOAD
                                       one unary call; prints "code=<status> reply=<text>"
  grpc-calls TARGET AUTHORITY METHOD COUNT INTERVAL_MS
                                       COUNT unary calls on one channel, INTERVAL_MS apart; prints
                                       "<n> <reply>" or "<n> ERROR <status>" for each
  grpc-stream TARGET AUTHORITY SECONDS one bidirectional Watch stream, a message every 100 ms; prints
                                       "streaming" after the first echo and "echoed N of M" at the end;
                                       exits 1 if the stream broke or an echo is missing

tai.Governor, every message raw bytes (no protobuf):
  Status   payload "ok": answers NAME; "fail-once:KEY": UNAVAILABLE on the first call with KEY, then
           "NAME attempt N"; "status:N": ends with gRPC status N
  Admin    answers "admin NAME"
  Slow     answers after 2 s
  Watch    echoes each message

A TARGET of the form xds:///HOST:PORT makes grpcio resolve it through GRPC_XDS_BOOTSTRAP (proxyless), with
xDS channel credentials: mTLS where meshd's clusters say so, from the bootstrap's certificate provider.
"""
import socket
import sys
import threading
import time


def identity(data):
    return data


def banner(host, ports):
    def serve(port):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        while True:
            connection, _ = listener.accept()
            try:
                connection.sendall(b"banner %d\n" % port)
            finally:
                connection.close()

    for port in ports:
        threading.Thread(target=serve, args=(port,), daemon=True).start()
    time.sleep(0.2)
    print("listening", flush=True)
    while True:
        time.sleep(3600)


def grpc_server(host, port, name, xds=False):
    from concurrent import futures

    import grpc

    attempts = {}
    lock = threading.Lock()

    def status(request, context):
        text = request.decode()
        if text.startswith("fail-once:"):
            with lock:
                count = attempts.get(text, 0) + 1
                attempts[text] = count
            print("Status %s attempt %d" % (text, count), flush=True)
            if count == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "first attempt fails")
            return ("%s attempt %d" % (name, count)).encode()
        if text.startswith("status:"):
            code = int(text.split(":", 1)[1])
            context.abort(next(c for c in grpc.StatusCode if c.value[0] == code), "asked for status %d" % code)
        return name.encode()

    def admin(request, context):
        return ("admin " + name).encode()

    def slow(request, context):
        time.sleep(2)
        return b"slow"

    def watch(requests, context):
        for message in requests:
            yield message

    handlers = {
        "Status": grpc.unary_unary_rpc_method_handler(status, request_deserializer=identity, response_serializer=identity),
        "Admin": grpc.unary_unary_rpc_method_handler(admin, request_deserializer=identity, response_serializer=identity),
        "Slow": grpc.unary_unary_rpc_method_handler(slow, request_deserializer=identity, response_serializer=identity),
        "Watch": grpc.stream_stream_rpc_method_handler(watch, request_deserializer=identity, response_serializer=identity),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), xds=xds)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tai.Governor", handlers),))
    if xds:
        # Security and authorization from the listener meshd serves; not serving until it comes.
        server.add_secure_port("%s:%d" % (host, port), grpc.xds_server_credentials(grpc.insecure_server_credentials()))
    else:
        server.add_insecure_port("%s:%d" % (host, port))
    server.start()
    print("listening", flush=True)
    server.wait_for_termination()


def channel(target, authority):
    import grpc
    import grpc.experimental

    if target.startswith("xds:"):
        # Security from xDS (the clusters' mTLS through the bootstrap's certificate provider),
        # plaintext where xDS configures none.
        return grpc.secure_channel(target, grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials()))
    options = [("grpc.default_authority", authority)] if authority else []
    return grpc.insecure_channel(target, options=options)


def grpc_call(target, authority, method, payload):
    import grpc

    with channel(target, authority) as chan:
        call = chan.unary_unary("/tai.Governor/" + method, request_serializer=identity, response_deserializer=identity)
        try:
            reply = call(payload.encode(), timeout=10)
            print("code=OK reply=%s" % reply.decode(), flush=True)
        except grpc.RpcError as error:
            print("code=%s reply=%s" % (error.code().name, error.details()), flush=True)


def grpc_calls(target, authority, method, count, interval):
    import grpc

    with channel(target, authority) as chan:
        call = chan.unary_unary("/tai.Governor/" + method, request_serializer=identity, response_deserializer=identity)
        for index in range(count):
            try:
                print("%d %s" % (index, call(b"ok", timeout=10).decode()), flush=True)
            except grpc.RpcError as error:
                print("%d ERROR %s %s" % (index, error.code().name, error.details()), flush=True)
            time.sleep(interval)


def grpc_stream(target, authority, seconds):
    import grpc

    total = int(seconds * 10)

    def messages():
        for index in range(total):
            yield b"message %d" % index
            time.sleep(0.1)

    echoed = 0
    with channel(target, authority) as chan:
        call = chan.stream_stream("/tai.Governor/Watch", request_serializer=identity, response_deserializer=identity)
        try:
            for reply in call(messages(), timeout=seconds + 30):
                if reply != b"message %d" % echoed:
                    print("out of order: %r after %d" % (reply, echoed), flush=True)
                    sys.exit(1)
                echoed += 1
                if echoed == 1:
                    print("streaming", flush=True)
        except grpc.RpcError as error:
            print("stream broke after %d: %s %s" % (echoed, error.code().name, error.details()), flush=True)
            sys.exit(1)
    print("echoed %d of %d" % (echoed, total), flush=True)
    sys.exit(0 if echoed == total else 1)


def main(arguments):
    command = arguments[0]
    if command == "banner":
        banner(arguments[1], [int(port) for port in arguments[2:]])
    elif command == "grpc-server":
        grpc_server(arguments[1], int(arguments[2]), arguments[3])
    elif command == "grpc-xds-server":
        grpc_server(arguments[1], int(arguments[2]), arguments[3], xds=True)
    elif command == "grpc-call":
        grpc_call(arguments[1], arguments[2], arguments[3], arguments[4])
    elif command == "grpc-calls":
        grpc_calls(arguments[1], arguments[2], arguments[3], int(arguments[4]), int(arguments[5]) / 1000)
    elif command == "grpc-stream":
        grpc_stream(arguments[1], arguments[2], float(arguments[3]))
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main(sys.argv[1:])
