#!/usr/bin/env python3
"""Abuse probes of issue 19, one per fresh `coffer server` (started, unsealed and stopped by
bench/abuse/run.sh, which passes the server's address, pid and root token).

    abuse.py PROBE --addr 127.0.0.1:PORT --pid PID [--token T] [--cacert FILE] [--notes FILE]

Probes (each bounded in time and count, loopback only):
  body        8 concurrent token-less POSTs of a ~30 MB JSON body {"v":[0,0,...]} to
              /v1/secret/x. Measures the server's RSS peak, the statuses and time to answer.
              Target: RSS peak < 200 MB.
  idle-conns  The server runs under `prlimit --nofile=1024:1024`. 5,000 TCP connections that
              send nothing are held 15 s. Measures how many connected / were accepted / were
              closed by the server, the server's CPU time during the hold (an accept loop
              spinning on EMFILE shows here), whether a fresh client is answered during the hold
              and after the release. Target: light-request p99 < 50 ms at the connection limit.
  keygen      128 keep-alive connections of light traffic (sys/health or an authenticated KV
              read) while one client generates an RSA-8192 intermediate CSR on a pki mount;
              PUT sys/seal 2 s into the key generation. Measures the keygen's time, the light
              traffic's p99/max over the keygen window, the time sys/seal takes to answer.
              Target: light-request p99 < 50 ms during key generation.
  tls-storm   6 storms of 2,000 TLS connections (500 in flight), each handshake + one GET
              sys/health + close; RSS after each storm, then every 5 s for 60 s.
              Target: RSS back under 40 MB within a minute of a storm.

Every probe also runs the "light probe": GET /v1/sys/health every 20 ms on its own keep-alive
connection in its own process (so the attack's Python work does not skew it), 2 s timeout per
request, reconnecting after a failure. Its p99/max count a failed or timed-out request as
">2000" ms. RSS peak is VmHWM of the server (a fresh process per probe, so the lifetime peak
is the probe's peak); a 50 ms VmRSS sampler also kills the server past RSS_CAP_MB (default
half of MemAvailable, at most 8000) so a runaway cannot take the machine down.

Prints one table row (see run.sh for the header); details go to --notes.
QUICK=1 shrinks counts and durations for a smoke run.
"""
import argparse
import asyncio
import math
import multiprocessing as mp
import os
import resource
import selectors
import signal
import socket
import ssl
import threading
import time
from collections import Counter

QUICK = os.environ.get("QUICK", "") not in ("", "0")
def _default_cap_mb():
    """Half of MemAvailable, at most 8 GB: a runaway server must not take the machine down."""
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(ln.split()[1]) for ln in f if ln.startswith("MemAvailable:"))
        return min(8000, avail // 2048)
    except (OSError, StopIteration):
        return 4000


RSS_CAP_MB = int(os.environ.get("RSS_CAP_MB", "0")) or _default_cap_mb()
LIGHT_INTERVAL = 0.020
LIGHT_TIMEOUT = 2.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------- /proc of the server


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def rss_mb(pid, field="VmRSS"):
    kb = proc_status_kb(pid, field)
    return None if kb is None else kb / 1024.0


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15 of stat
    except (FileNotFoundError, ProcessLookupError):
        return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def socket_count(pid):
    """Open sockets of the server (its other fds include ~3 per event loop, made lazily)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return n


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class RssSampler(threading.Thread):
    """VmRSS every 50 ms; kills the server past RSS_CAP_MB."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max_mb, self.killed_at = pid, 0.0, None
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            mb = rss_mb(self.pid)
            if mb is not None:
                self.max_mb = max(self.max_mb, mb)
                if mb > RSS_CAP_MB and self.killed_at is None:
                    self.killed_at = mb
                    os.kill(self.pid, signal.SIGKILL)
            self._halt.wait(0.05)

    def stop(self):
        self._halt.set()
        self.join()


# ---------------------------------------------------------------- HTTP/1.1 by hand


def request_bytes(method, path, token=None, body=b"", close=False):
    h = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        h.append(f"X-Vault-Token: {token}")
    if body or method in ("POST", "PUT"):
        h += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        h.append("Connection: close")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def parse_head(head):
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    return status, length


class Conn:
    """One keep-alive connection (plain or TLS); request() has a total deadline."""

    def __init__(self, host, port, tls_ctx=None, timeout=LIGHT_TIMEOUT):
        deadline = time.monotonic() + timeout
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_ctx:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            s = tls_ctx.wrap_socket(s, server_hostname=host)
        self.sock, self.buf = s, b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by server")
        self.buf += chunk

    def request(self, raw, timeout=LIGHT_TIMEOUT):
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        self.sock.sendall(raw)
        return self.read_response(deadline)

    def read_response(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            self._recv(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, length = parse_head(head)
        length = 0 if status in (204, 304) else length
        if length is None:  # read to EOF
            try:
                while True:
                    self._recv(deadline)
            except ConnectionError:
                pass
            body, self.buf = self.buf, b""
            return status, body
        while len(self.buf) < length:
            self._recv(deadline)
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body


def err_name(e):
    if isinstance(e, (socket.timeout, TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(e, OSError) and e.errno:
        import errno
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


def tls_context(cafile):
    if not cafile:
        return None
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


# ---------------------------------------------------------------- the light probe


def _light_probe_main(host, port, cafile, stop, out):
    """Child process: GET /v1/sys/health every 20 ms; sends [(t, latency|None, what)]."""
    ctx = tls_context(cafile)
    raw = request_bytes("GET", "/v1/sys/health")
    rec, conn = [], None
    nxt = time.monotonic()
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = Conn(host, port, ctx, LIGHT_TIMEOUT)
            left = LIGHT_TIMEOUT - (time.monotonic() - t0)
            status, _ = conn.request(raw, max(0.001, left))
            lat = time.monotonic() - t0
            rec.append((t0, lat if lat <= LIGHT_TIMEOUT else None, status if lat <= LIGHT_TIMEOUT else "timeout"))
        except Exception as e:  # noqa: BLE001 - every failure is a data point
            rec.append((t0, None, err_name(e)))
            if conn:
                conn.close()
            conn = None
        nxt += LIGHT_INTERVAL
        now = time.monotonic()
        if nxt > now:
            time.sleep(nxt - now)
        else:
            nxt = now
    if conn:
        conn.close()
    out.send(rec)
    out.close()


class LightProbe:
    def __init__(self, host, port, cafile):
        ctx = mp.get_context("spawn")
        self.stop_ev = ctx.Event()
        self.rx, tx = ctx.Pipe(duplex=False)
        self.p = ctx.Process(target=_light_probe_main, args=(host, port, cafile, self.stop_ev, tx),
                             daemon=True)

    def start(self):
        self.p.start()
        return self

    def stop(self):
        self.stop_ev.set()
        rec = self.rx.recv() if self.rx.poll(30) else []
        self.p.join(5)
        return rec


def pct(values, q):
    """values: latencies in s, None = failed (ranks above every answer)."""
    if not values:
        return None
    v = sorted(values, key=lambda x: math.inf if x is None else x)
    return v[max(0, math.ceil(q * len(v)) - 1)]


def fmt_ms(x, timeout=LIGHT_TIMEOUT):
    """None = a failure or timeout (timeout: that request's timeout, s)."""
    if x is None:
        return f">{timeout * 1000:.0f}"
    return f"{x * 1000:.1f}"


def summarize(rec, t_from=None, t_to=None):
    rec = [r for r in rec if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] <= t_to)]
    lats = [r[1] for r in rec]
    fails = Counter(r[2] for r in rec if r[1] is None)
    answered = [x for x in lats if x is not None]
    return {
        "n": len(rec),
        "fail": sum(fails.values()),
        "fails": dict(fails),
        "p99": pct(lats, 0.99) if rec else None,
        "max": (None if fails else max(answered)) if rec else None,
        "max_answered": max(answered) if answered else None,
        "statuses": dict(Counter(r[2] for r in rec if r[1] is not None)),
    }


# ---------------------------------------------------------------- output

NOTES = []


def note(s):
    NOTES.append(s)


def fmt_counter(c):
    return ", ".join(f"{k}x{v}" for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))) or "-"


def row(probe, peak, after, light, errors):
    def mb(x):
        return "dead" if x is None else f"{x:.0f}"
    if light is None or light["n"] == 0:
        p99 = mx = "-"
        nf = "0/0"
    else:
        p99, mx = fmt_ms(light["p99"]), fmt_ms(light["max"])
        nf = f"{light['n']}/{light['fail']}"
    print(f"| {probe:<10} | {mb(peak):>8} | {after:>14} | {p99:>8} | {mx:>8} | {nf:>9} | {errors}",
          flush=True)


# ---------------------------------------------------------------- probe 1: body


def probe_body(a):
    conc = 2 if QUICK else 8
    n = (30_000_000 - 10) // 2
    body = b'{"v":[' + b"0," * n + b"0]}"
    raw_head = request_bytes("POST", "/v1/secret/x", body=body)[: -len(body)]
    results = []

    def one():
        t0 = time.monotonic()
        try:
            c = Conn(a.host, a.port, a.tls, 10)
            c.sock.settimeout(120)
            try:
                c.sock.sendall(raw_head)
                c.sock.sendall(body)
            except OSError as e:  # server may answer early and close; read what it said
                send_err = err_name(e)
            else:
                send_err = None
            status, resp = c.read_response(t0 + 120)
            results.append((time.monotonic() - t0, status, send_err, resp[:120]))
            c.close()
        except Exception as e:  # noqa: BLE001
            results.append((time.monotonic() - t0, err_name(e), None, b""))

    light = LightProbe(a.host, a.port, a.cafile).start()
    time.sleep(1.0)
    cpu0 = cpu_seconds(a.pid)
    ths = [threading.Thread(target=one) for _ in range(conc)]
    t0 = time.monotonic()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    t1 = time.monotonic()
    time.sleep(0.5)
    after = rss_mb(a.pid)
    cpu1 = cpu_seconds(a.pid)
    ls = summarize(light.stop(), t0, t1)
    st = Counter(r[1] for r in results)
    times = sorted(r[0] for r in results)
    note(f"body: {conc} x {len(body) / 1e6:.1f} MB POST /v1/secret/x without a token: "
         f"statuses {fmt_counter(st)}; answered in {times[0]:.2f}..{times[-1]:.2f} s; "
         f"server CPU {fmt_cpu(cpu0, cpu1)} s")
    send_errs = Counter(r[2] for r in results if r[2])
    if send_errs:
        note(f"body: send interrupted (server stopped reading): {fmt_counter(send_errs)}")
    bodies = {bytes(r[3]) for r in results if r[3]}
    for b in list(bodies)[:2]:
        note(f"body: a response body: {b.decode(errors='replace')}")
    return after_mb(after), ls, f"statuses {fmt_counter(st)}; answer {times[0]:.1f}-{times[-1]:.1f}s"


def fmt_cpu(a, b):
    return "?" if a is None or b is None else f"{b - a:.2f}"


def after_mb(x):
    return "dead" if x is None else f"{x:.0f}"


# ---------------------------------------------------------------- probe 2: idle-conns


def probe_idle(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    want = 1500 if QUICK else 5000
    target = min(want, hard - 200)
    hold = 4.0 if QUICK else 15.0
    connect_wait = 3.0 if QUICK else 5.0
    fds0 = fd_count(a.pid)

    sel = selectors.DefaultSelector()
    socks, connected, refused = [], [], Counter()
    t0 = time.monotonic()
    for _ in range(target):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((a.host, a.port))
        socks.append(s)
        if rc == 0:
            connected.append(s)
        elif rc in (115, 11):  # EINPROGRESS, EAGAIN
            sel.register(s, selectors.EVENT_WRITE)
        else:
            refused[os.strerror(rc)] += 1
            s.close()
    deadline = time.monotonic() + connect_wait
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            sel.unregister(s)
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e == 0:
                connected.append(s)
            else:
                refused[os.strerror(e)] += 1
                s.close()
    pending = len(sel.get_map())
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    t_open = time.monotonic() - t0

    # A new client arriving at the limit: the light probe starts now.
    light = LightProbe(a.host, a.port, a.cafile).start()
    time.sleep(0.3)
    fds_hold = fd_count(a.pid)
    cpu0 = cpu_seconds(a.pid)
    h0 = time.monotonic()
    time.sleep(hold)
    h1 = time.monotonic()
    cpu1 = cpu_seconds(a.pid)
    fresh_during = fresh_client(a)
    closed = Counter()
    for s in connected:
        try:
            d = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            closed["eof" if d == b"" else "data"] += 1
        except BlockingIOError:
            closed["open"] += 1
        except OSError as e:
            closed[err_name(e)] += 1
    ls = summarize(light.stop(), h0, h1)
    after_hold = rss_mb(a.pid)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    time.sleep(1.0)
    cpu2 = cpu_seconds(a.pid)
    time.sleep(1.0)
    cpu3 = cpu_seconds(a.pid)
    fresh_after = fresh_client(a)
    cpu_hold = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    note(f"idle-conns: client nofile {soft}->{hard}; opened {target} sockets in {t_open:.1f} s: "
         f"{len(connected)} connected, {pending} still connecting after {connect_wait:.0f} s, "
         f"failed {fmt_counter(refused)}")
    note(f"idle-conns: server fds before {fds0}, during hold {fds_hold} (limit 1024); "
         f"at end of {hold:.0f} s hold the connected sockets were: {fmt_counter(closed)}")
    note(f"idle-conns: server CPU during the {hold:.0f} s hold: "
         f"{'?' if cpu_hold is None else f'{cpu_hold:.2f}'} s "
         f"({'?' if cpu_hold is None else f'{100 * cpu_hold / (h1 - h0):.0f}'}% of a core); "
         f"in the 2nd second after release: {fmt_cpu(cpu2, cpu3)} s")
    note(f"idle-conns: fresh client GET sys/health during the hold: {fresh_during}; "
         f"1-2 s after release: {fresh_after}")
    note(f"idle-conns: light probe (new connection after the flood) failures: {fmt_counter(ls['fails'])}")
    server_closed = len(connected) - closed.get("open", 0) - closed.get("data", 0)
    errors = (f"{len(connected)}/{target} connected, {server_closed} closed by server; "
              f"CPU {'?' if cpu_hold is None else f'{cpu_hold:.1f}'}s/{hold:.0f}s; fresh: {fresh_during.split(' ')[0]}")
    return after_mb(after_hold), ls, errors


def fresh_client(a):
    t0 = time.monotonic()
    try:
        c = Conn(a.host, a.port, a.tls, LIGHT_TIMEOUT)
        st, _ = c.request(request_bytes("GET", "/v1/sys/health"),
                          max(0.001, LIGHT_TIMEOUT - (time.monotonic() - t0)))
        c.close()
        return f"{st} in {(time.monotonic() - t0) * 1000:.0f} ms"
    except Exception as e:  # noqa: BLE001
        return f"{err_name(e)} after {(time.monotonic() - t0) * 1000:.0f} ms"


# ---------------------------------------------------------------- probe 3: keygen

TRAFFIC_PAUSE = 0.1      # each traffic connection: one request, then 100 ms pause
TRAFFIC_TIMEOUT = 30.0   # long enough to see the real stall


def _traffic_main(host, port, cafile, token, nconns, stop, out):
    """Child process: nconns keep-alive loops; even ones GET sys/health, odd ones a KV read."""
    ctx = tls_context(cafile)
    health = request_bytes("GET", "/v1/sys/health")
    kv = request_bytes("GET", "/v1/secret/abuse/read", token=token)
    rec = []

    async def loop(i):
        raw = health if i % 2 == 0 else kv
        reader = writer = None
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port, ssl=ctx), TRAFFIC_TIMEOUT)
                writer.write(raw)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                              TRAFFIC_TIMEOUT - (time.monotonic() - t0))
                status, length = parse_head(head[:-4])
                if length:
                    await asyncio.wait_for(reader.readexactly(length),
                                           TRAFFIC_TIMEOUT - (time.monotonic() - t0))
                rec.append((t0, time.monotonic() - t0, status))
            except Exception as e:  # noqa: BLE001
                rec.append((t0, None, err_name(e)))
                if writer:
                    writer.transport.abort()
                reader = writer = None
            await asyncio.sleep(TRAFFIC_PAUSE)
        if writer:
            writer.transport.abort()

    async def main():
        await asyncio.gather(*(loop(i) for i in range(nconns)))

    asyncio.run(main())
    out.send(rec)
    out.close()


def probe_keygen(a):
    nconns = 32 if QUICK else 128
    bits = 4096 if QUICK else 8192
    seal_at = 0.5 if QUICK else 2.0
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    rx, tx = ctx.Pipe(duplex=False)
    traffic = ctx.Process(target=_traffic_main,
                          args=(a.host, a.port, a.cafile, a.token, nconns, stop, tx), daemon=True)
    traffic.start()
    light = LightProbe(a.host, a.port, a.cafile).start()
    time.sleep(2.0)  # warm: all connections open
    res = {}

    def call(name, raw, timeout):
        t0 = time.monotonic()
        try:
            c = Conn(a.host, a.port, a.tls, 10)
            st, body = c.request(raw, timeout)
            c.close()
            res[name] = (t0, time.monotonic(), st, body[:200])
        except Exception as e:  # noqa: BLE001
            res[name] = (t0, time.monotonic(), err_name(e), b"")

    kg_body = ('{"common_name":"x","key_type":"rsa","key_bits":%d}' % bits).encode()
    cpu0 = cpu_seconds(a.pid)
    kg = threading.Thread(target=call, args=(
        "keygen", request_bytes("POST", "/v1/pki/intermediate/generate/internal", a.token, kg_body),
        180.0))
    seal = threading.Thread(target=call, args=(
        "seal", request_bytes("PUT", "/v1/sys/seal", a.token), 120.0))
    kg.start()
    time.sleep(seal_at)
    seal.start()
    kg.join()
    seal.join()
    cpu1 = cpu_seconds(a.pid)
    time.sleep(0.2)
    stop.set()
    light_rec = light.stop()
    trec = rx.recv() if rx.poll(60) else []
    traffic.join(5)
    after = rss_mb(a.pid)
    T = TRAFFIC_TIMEOUT
    k0, k1, kst, kbody = res["keygen"]
    s0, s1, sst, sbody = res["seal"]
    ls = summarize(light_rec, k0, k1)
    ts = summarize(trec, k0, k1)
    tpre = summarize(trec, None, k0)
    # The keygen alone (before sys/seal was sent), and while sys/seal was waiting.
    ts_alone = summarize(trec, k0, min(k1, s0))
    ls_alone = summarize(light_rec, k0, min(k1, s0))
    ts_sealing = summarize(trec, s0, max(s0, min(k1, s1)))
    ls_sealing = summarize(light_rec, s0, max(s0, min(k1, s1)))
    note(f"keygen: RSA-{bits} intermediate/generate/internal: {kst} in {k1 - k0:.1f} s"
         + (f" ({kbody.decode(errors='replace')})" if kst != 200 else ""))
    note(f"keygen: PUT sys/seal sent {s0 - k0:.1f} s into the keygen: {sst} after {s1 - s0:.2f} s"
         f" (answered {s1 - k0:.1f} s after the keygen started; keygen answered at {k1 - k0:.1f} s)")
    note(f"keygen: {nconns} traffic connections (health / KV read, {TRAFFIC_PAUSE * 1000:.0f} ms pause,"
         f" {TRAFFIC_TIMEOUT:.0f} s timeout) before the keygen: {tpre['n']} req, p99 {fmt_ms(tpre['p99'], T)} ms,"
         f" max {fmt_ms(tpre['max'], T)} ms")
    note(f"keygen: traffic during the keygen window: {ts['n']} req, p99 {fmt_ms(ts['p99'], T)} ms, "
         f"max {fmt_ms(ts['max_answered'], T)} ms (answered), fails {fmt_counter(ts['fails'])}, "
         f"statuses {fmt_counter(ts['statuses'])}")
    note(f"keygen: keygen alone (start until sys/seal sent, {min(k1, s0) - k0:.1f} s): traffic "
         f"{ts_alone['n']} req p99 {fmt_ms(ts_alone['p99'], T)} max {fmt_ms(ts_alone['max_answered'], T)} ms;"
         f" light probe {ls_alone['n']} req p99 {fmt_ms(ls_alone['p99'])} max {fmt_ms(ls_alone['max'])} ms")
    note(f"keygen: while sys/seal waited (sent until answered or keygen end): traffic "
         f"{ts_sealing['n']} req p99 {fmt_ms(ts_sealing['p99'], T)} max "
         f"{fmt_ms(ts_sealing['max_answered'], T)} ms, fails {fmt_counter(ts_sealing['fails'])};"
         f" light probe {ls_sealing['n']} req, fails {fmt_counter(ls_sealing['fails'])}")
    slow = sum(1 for r in trec if k0 <= r[0] <= k1 and (r[1] is None or r[1] > 0.05))
    stuck = [r for r in trec if k0 <= r[0] < s0 and (r[1] is None or r[1] > 1.0)]
    note(f"keygen: traffic requests sent before sys/seal that took over 1 s: {len(stuck)} "
         f"({nconns} connections; longest "
         f"{fmt_ms(None if any(r[1] is None for r in stuck) else max((r[1] for r in stuck), default=0), T)}"
         " ms; such requests sit on the keygen's I/O thread)")
    note(f"keygen: traffic requests over 50 ms in the window: {slow}; server CPU over the "
         f"keygen+seal: {fmt_cpu(cpu0, cpu1)} s")
    note(f"keygen: light probe over the window: statuses {fmt_counter(ls['statuses'])}, "
         f"fails {fmt_counter(ls['fails'])}")
    errors = (f"keygen {kst} {k1 - k0:.1f}s; seal {sst} {s1 - s0:.1f}s; traffic p99 "
              f"{fmt_ms(ts['p99'], T)} max {fmt_ms(ts['max_answered'], T)} ms, fails {ts['fail']}")
    return after_mb(after), ls, errors


# ---------------------------------------------------------------- probe 4: tls-storm


async def storm(a, ctx, total, inflight):
    sem = asyncio.Semaphore(inflight)
    raw = request_bytes("GET", "/v1/sys/health")
    out = Counter()

    async def one():
        async with sem:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(a.host, a.port, ssl=ctx, server_hostname=a.host), 10)
                writer.write(raw)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                status, length = parse_head(head[:-4])
                if length:
                    await asyncio.wait_for(reader.readexactly(length), 10)
                out[status] += 1
            except Exception as e:  # noqa: BLE001
                out[err_name(e)] += 1
            finally:
                if writer:
                    writer.close()
                    try:
                        await asyncio.wait_for(writer.wait_closed(), 2)
                    except Exception:  # noqa: BLE001
                        writer.transport.abort()

    await asyncio.gather(*(one() for _ in range(total)))
    return out


def probe_storm(a):
    storms = 2 if QUICK else 6
    total = 300 if QUICK else 2000
    inflight = 100 if QUICK else 500
    watch = 10 if QUICK else 60
    ctx = tls_context(a.cafile) or ssl.create_default_context()
    light = LightProbe(a.host, a.port, a.cafile).start()
    time.sleep(1.0)
    base = rss_mb(a.pid)
    socks0 = socket_count(a.pid)
    t0 = time.monotonic()
    afters, results = [], Counter()
    for i in range(storms):
        s0 = time.monotonic()
        r = asyncio.run(storm(a, ctx, total, inflight))
        results.update(r)
        afters.append(rss_mb(a.pid))
        note(f"tls-storm: storm {i + 1}: {total} connections in {time.monotonic() - s0:.1f} s, "
             f"{fmt_counter(r)}; VmRSS right after {after_mb(afters[-1])} MB, "
             f"server sockets open {socket_count(a.pid)}")
    t1 = time.monotonic()
    ls = summarize(light.stop(), t0, t1)
    samples, under = [], None
    w0 = time.monotonic()
    for k in range(watch // 5 + 1):
        target = w0 + 5 * k
        now = time.monotonic()
        if target > now:
            time.sleep(target - now)
        mb = rss_mb(a.pid)
        samples.append((5 * k, mb, socket_count(a.pid)))
        if under is None and mb is not None and mb < 40:
            under = 5 * k
    note(f"tls-storm: VmRSS before the storms {after_mb(base)} MB; after each storm: "
         + " / ".join(after_mb(x) for x in afters) + " MB")
    note(f"tls-storm: VmRSS after the last storm, every 5 s: "
         + " ".join(f"+{t}s:{after_mb(m)}" for t, m, _ in samples)
         + f"; under 40 MB: {'at +%d s' % under if under is not None else 'never within %d s' % watch}")
    note(f"tls-storm: server sockets open (before the storms {socks0}) after the last storm: "
         + " ".join(f"+{t}s:{n}" for t, _, n in samples[::3]))
    after = f"{after_mb(afters[-1])}->{after_mb(samples[-1][1])}@{watch}s"
    errors = (f"{fmt_counter(results)}; <40MB: "
              + (f"+{under}s" if under is not None else f"never in {watch}s"))
    return after, ls, errors


# ---------------------------------------------------------------- main

PROBES = {"body": probe_body, "idle-conns": probe_idle, "keygen": probe_keygen,
          "tls-storm": probe_storm}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("probe", choices=sorted(PROBES))
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--cacert", default="")
    ap.add_argument("--notes", default="")
    a = ap.parse_args()
    a.host, port = a.addr.rsplit(":", 1)
    a.port = int(port)
    a.cafile = a.cacert or None
    a.tls = tls_context(a.cafile)
    sampler = RssSampler(a.pid)
    sampler.start()
    try:
        after, light, errors = PROBES[a.probe](a)
    except Exception as e:  # noqa: BLE001
        after, light, errors = after_mb(rss_mb(a.pid)), None, f"probe failed: {e!r}"
    peak = rss_mb(a.pid, "VmHWM")
    sampler.stop()
    if peak is None:
        peak = sampler.max_mb or None
    if sampler.killed_at:
        errors += f"; SERVER KILLED at RSS {sampler.killed_at:.0f} MB (cap {RSS_CAP_MB})"
    if not alive(a.pid):
        errors += "; SERVER NOT RUNNING after the probe"
    row(a.probe, peak, after, light, errors)
    if light and light["fails"]:
        note(f"{a.probe}: light probe failures: {fmt_counter(light['fails'])}")
    if a.notes:
        with open(a.notes, "a") as f:
            for n in NOTES:
                f.write(n + "\n")


if __name__ == "__main__":
    main()
