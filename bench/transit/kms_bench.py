#!/usr/bin/python3
"""KMS v2 Encrypt throughput of a running `coffer kms-plugin`, over its unix socket.

Usage:
    /usr/bin/python3 bench/transit/kms_bench.py --socket /run/kms/coffer.sock \
        [--clients 8] [--seconds 10] [--size 32] [--proto src/kms/kms_v2.proto]

Starts --clients threads, each with its own gRPC channel on the socket (as several
kube-apiservers would), each calling Encrypt with a fresh --size-byte random plaintext (a DEK
seed is 32 bytes) back to back for --seconds after a one-second warm-up; checks one Decrypt
round trip first. Prints one line:

    kms-plugin encrypt: 1234 ops/s (8 clients, 32-byte DEKs, 10.0s, p50 5.1ms, p99 12.0ms, 0 errors)

Exit status 1 when a call failed or the round trip did not match. The plugin (and the Coffer
server and Transit key behind it) must be running already: bench/transit/run.sh sets them up.
Needs python3-grpcio and python3-grpc-tools (scripts/install-deps.sh); the client stubs are
compiled from the proto into a temporary folder at start.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.join(HERE, "..", "..", "src", "kms", "kms_v2.proto")


def stubs(proto):
    import grpc  # noqa: F401  (fails here, clearly, when python3-grpcio is missing)
    out = tempfile.mkdtemp(prefix="kms-bench-")
    shutil.copy(proto, os.path.join(out, "kms_v2.proto"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", out, f"--python_out={out}",
                    f"--grpc_python_out={out}", "kms_v2.proto"], check=True)
    sys.path.insert(0, out)
    import kms_v2_pb2
    import kms_v2_pb2_grpc
    return kms_v2_pb2, kms_v2_pb2_grpc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", required=True, help="the plugin's socket path (or unix:///path)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=32, help="plaintext bytes per Encrypt")
    ap.add_argument("--proto", default=DEFAULT_PROTO)
    a = ap.parse_args()

    import grpc
    pb, pb_grpc = stubs(a.proto)
    target = a.socket if a.socket.startswith("unix:") else "unix://" + os.path.abspath(a.socket)

    channels = [grpc.insecure_channel(target) for _ in range(a.clients)]
    for ch in channels:
        grpc.channel_ready_future(ch).result(timeout=10)
    clients = [pb_grpc.KeyManagementServiceStub(ch) for ch in channels]

    dek = os.urandom(a.size)
    enc = clients[0].Encrypt(pb.EncryptRequest(plaintext=dek, uid="bench"), timeout=10)
    back = clients[0].Decrypt(pb.DecryptRequest(ciphertext=enc.ciphertext, key_id=enc.key_id,
                                                uid="bench"), timeout=10).plaintext
    if back != dek:
        print("kms-plugin encrypt: FAILED: the round trip did not give the plaintext back")
        return 1

    start = time.monotonic() + 1.0  # warm-up second: connections, threads
    stop = start + a.seconds
    latencies = [[] for _ in clients]
    errors = [0] * len(clients)
    first_error = []

    def worker(i):
        stub = clients[i]
        while True:
            t0 = time.monotonic()
            if t0 >= stop:
                return
            try:
                stub.Encrypt(pb.EncryptRequest(plaintext=os.urandom(a.size), uid=f"bench-{i}"),
                             timeout=10)
            except grpc.RpcError as e:
                errors[i] += 1
                if not first_error:
                    first_error.append(f"{e.code().name}: {e.details()}")
                continue
            t1 = time.monotonic()
            if t0 >= start:
                latencies[i].append(t1 - t0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ch in channels:
        ch.close()

    lat = sorted(x for per in latencies for x in per)
    n = len(lat)
    errs = sum(errors)

    def pct(p):
        return lat[min(n - 1, int(p * n))] * 1000 if n else 0.0

    print(f"kms-plugin encrypt: {n / a.seconds:.0f} ops/s ({a.clients} clients, "
          f"{a.size}-byte DEKs, {a.seconds:.1f}s, p50 {pct(0.50):.1f}ms, p99 {pct(0.99):.1f}ms, "
          f"{errs} errors)" + (f" first error: {first_error[0]}" if first_error else ""))
    return 1 if errs or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
