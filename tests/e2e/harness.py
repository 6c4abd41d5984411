"""Shared helpers for Coffer's end-to-end tests: real `coffer` processes, real TLS, loopback only.

Stdlib only. The binary comes from $COFFER_BIN (set by CTest). Test certificates are made by each
test with the openssl CLI in its own temporary folder (see make_test_ca).
"""
import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

COFFER_BIN = os.environ.get("COFFER_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "coffer")


_PORT_DIR = os.path.join(tempfile.gettempdir(), "coffer-e2e-ports-%d" % os.getuid())
_PORT_LOW, _PORT_HIGH = 20000, 32767  # below Linux's ephemeral range (32768-60999)


_reserved = []


@atexit.register
def _release_ports():
    for mark in _reserved:
        try:
            os.unlink(mark)
        except OSError:
            pass


def free_port():
    """A loopback port nobody listens on, reserved for this test process.

    Asking the kernel (bind to port 0) hands out ports from the ephemeral range, where the same
    number can go to another test's server or outgoing connection between this call and the moment
    the server binds it (CI saw "Address already in use"). So: a random port below that range, one
    that binds now, reserved across the tests running in parallel by creating a file named after
    it (O_EXCL); reservations older than an hour are stale and are taken over.
    """
    import random
    os.makedirs(_PORT_DIR, exist_ok=True)
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(_PORT_LOW, _PORT_HIGH + 1)
        mark = os.path.join(_PORT_DIR, str(port))
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            try:
                if time.time() - os.stat(mark).st_mtime < 3600:
                    continue
                os.utime(mark)
            except OSError:
                continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # in use outside the tests: the mark keeps it skipped for an hour
                continue
        _reserved.append(mark)
        return port
    raise RuntimeError("no free loopback port in %d-%d" % (_PORT_LOW, _PORT_HIGH))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_test_ca(d, name="server"):
    """A test CA (EC P-256) and a server certificate for 127.0.0.1/localhost signed by it.

    Files: ca.pem, ca.key, <name>.pem, <name>.key in folder d.
    """
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    if not os.path.exists(ca):
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=Coffer Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    key, csr, crt = (os.path.join(d, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=" + name])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "1", "-extfile", ext])
    return ca, crt, key


class Server:
    """A `coffer server` subprocess started from a config file."""

    def __init__(self, workdir, tls=True, extra_config="", log_format="text", log_level="info",
                 listener_extra="", nofile=None, storage=None):
        self.dir = workdir
        self.nofile = nofile  # a descriptor limit (soft and hard) for the server process
        self.port = free_port()
        self.tls = tls
        self.db = os.path.join(workdir, "data", "coffer.db")
        self.log_path = os.path.join(workdir, "server.log")
        if tls:
            self.ca, self.cert, self.key = make_test_ca(workdir)
            listener = (f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
                        f'  tls_cert_file = "{self.cert}"\n  tls_key_file = "{self.key}"\n{listener_extra}}}\n')
        else:
            self.ca = None
            listener = (f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n  tls_disable = true\n'
                        f'{listener_extra}}}\n')
        self.config = os.path.join(workdir, "coffer.hcl")
        with open(self.config, "w") as f:
            storage = storage or f'storage "sqlite" {{\n  path = "{self.db}"\n}}\n'
            f.write(f'{storage}{listener}'
                    f'log_level = "{log_level}"\nlog_format = "{log_format}"\n{extra_config}')
        self.proc = None
        self.addr = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        self.log = open(self.log_path, "ab")
        limit = None
        if self.nofile:
            import resource
            n = self.nofile

            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        self.proc = subprocess.Popen([COFFER_BIN, "server", f"-config={self.config}"],
                                     stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limit)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + open(self.log_path).read())
            try:
                self.request("GET", "sys/seal-status")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError("server did not start: " + open(self.log_path).read())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def ssl_context(self):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        return ctx

    def request(self, method, path, token=None, body=None, raw_body=None, headers=None):
        """Returns (status, parsed JSON body or None, raw text)."""
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.addr + "/v1/" + path, data=data, method=method)
        if token:
            req.add_header("X-Vault-Token", token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as r:
                text = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            status = e.code
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return status, parsed, text

    def cli(self, *args, token=None, stdin=None, env_extra=None, check=False):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("VAULT_") or k.startswith("COFFER_") and k != "COFFER_BIN":
                del env[k]
        env["COFFER_ADDR"] = self.addr
        if self.ca:
            env["COFFER_CACERT"] = self.ca
        if token:
            env["COFFER_TOKEN"] = token
        env.update(env_extra or {})
        p = subprocess.run([COFFER_BIN, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"coffer {' '.join(args)} -> {p.returncode}: {p.stdout} {p.stderr}")
        return p

    def init_and_unseal(self, shares=5, threshold=3):
        status, body, _ = self.request("PUT", "sys/init", body={"secret_shares": shares, "secret_threshold": threshold})
        assert status == 200, body
        self.keys = body["keys"]
        self.root = body["root_token"]
        self.unseal(threshold)
        return body

    def unseal(self, n):
        for k in self.keys[:n]:
            status, body, _ = self.request("PUT", "sys/unseal", body={"key": k})
            assert status == 200, body
        assert body["sealed"] is False, body


class ServerTest(unittest.TestCase):
    """Base: a fresh temporary folder per test, servers stopped and the folder removed after."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-e2e-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, **kw):
        d = tempfile.mkdtemp(dir=self.tmp)
        s = Server(d, **kw)
        self.servers.append(s)
        return s
