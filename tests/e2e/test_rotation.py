"""CA rotation across a cluster's nodes (`coffer cluster rotate-ca`, docs/rotation.md), with real
`coffer agent run` processes: the phases and what each leaves on disk, checked with openssl;
batches of max_unavailable; a failing hook (paused, reported with its output, resumed after the
fix); a node that is down (reported pending, then skipped); abort in each phase (every node back
on the old CA); and the driver outliving a SIGKILLed server.
"""
import hashlib
import json
import os
import re
import subprocess
import time
import unittest

from agent_env import Agent, serial_of
from harness import COFFER_BIN, ServerTest

ETCD_FILES = ["etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key", "etcd/ca.crt",
              "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"]


def pem_certs(path):
    text = read(path)
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", text, re.S)


def fingerprint(pem):
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem.encode(),
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def read(path):
    with open(path) as f:
        return f.read()


def verifies(ca_file, cert_file):
    p = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", ca_file, cert_file],
                       capture_output=True, text=True)
    return p.returncode == 0


class Rotation(ServerTest):
    def tearDown(self):
        for a in getattr(self, "agents", {}).values():
            a.stop()
        super().tearDown()

    def cluster(self, nodes, hooks=None):
        """A server, `cluster setup` of the given nodes, and their agents (polling every second).

        hooks: {node: shell command} run for the node's etcd certificates. Every hook also
        appends "<node> <phase> start|end <time>" lines to hooks.log.
        """
        s = self.s = self.server().start()
        s.init_and_unseal(1, 1)
        tokdir = os.path.join(self.tmp, "tokens")
        args = ["cluster", "setup", "r1", "--leaf-ttl", "1h", "--init-token-dir", tokdir]
        for n in nodes:
            args += ["--node", n]
        s.cli(*args, token=s.root, check=True)
        self.hooklog = os.path.join(self.tmp, "hooks.log")
        self.agents = {}
        for spec in nodes:
            name = spec.split(":")[0]
            a = Agent(self, s, "r1", name, tokdir)
            with open(a.cfg) as f:
                c = json.load(f)
            # Agents learn of each step through their long poll (answered when the document is
            # written); the periodic read is far too slow for these tests to pass on it.
            c["rotation_poll"] = "5m"
            c["rotation_wait"] = "5s"
            extra = (hooks or {}).get(name, "true")
            hook = (f'echo "{name} $COFFER_ROTATION_PHASE start $(date +%s.%N)" >> {self.hooklog}; '
                    f'sleep 0.3; {extra}; rc=$?; '
                    f'echo "{name} $COFFER_ROTATION_PHASE end $(date +%s.%N)" >> {self.hooklog}; exit $rc')
            for cert in c["certificates"]:
                if "/pki/etcd/" in cert["role"]:
                    cert["exec"] = hook
            with open(a.cfg, "w") as f:
                json.dump(c, f)
            self.agents[name] = a.start()
        for name, a in self.agents.items():
            if any(":etcd" in n or "+etcd" in n for n in nodes if n.startswith(name + ":")):
                a.wait_for(ETCD_FILES)
        # Each agent has written its registry entry (its first pass is over).
        deadline = time.time() + 30
        for name in self.agents:
            while s.request("GET", f"r1/nodes/data/{name}", token=s.root)[0] != 200:
                self.assertLess(time.time(), deadline, f"{name} never reported")
                time.sleep(0.2)
        return s

    def rotate(self, *extra, check_rc=None):
        p = self.s.cli("cluster", "rotate-ca", "r1", "--ca", "etcd", *extra, token=self.s.root)
        if check_rc is not None:
            self.assertEqual(p.returncode, check_rc, p.stdout + p.stderr)
        return p

    def status(self):
        p = self.s.cli("cluster", "rotation", "status", "r1", token=self.s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def doc(self):
        st, body, _ = self.s.request("GET", "r1/nodes/data/_rotation", token=self.s.root)
        self.assertEqual(st, 200, body)
        return body["data"]["data"]

    def issuer(self, ref):
        st, body, _ = self.s.request("GET", f"r1/pki/etcd/issuer/{ref}", token=self.s.root)
        self.assertEqual(st, 200, body)
        return body["data"]

    def default_issuer(self):
        st, body, _ = self.s.request("GET", "r1/pki/etcd/config/issuers", token=self.s.root)
        self.assertEqual(st, 200, body)
        return body["data"]["default"]

    def hook_lines(self):
        if not os.path.exists(self.hooklog):
            return []
        with open(self.hooklog) as f:
            # Hooks run outside a rotation (first issue, renewals) have no phase: 3 fields.
            return [l.split() for l in f if len(l.split()) == 4]

    def assert_on_ca(self, node, ca_pem):
        """The node's etcd CA file holds exactly ca_pem and its leaves verify against it."""
        a = self.agents[node]
        certs = pem_certs(a.pki("etcd/ca.crt"))
        self.assertEqual([fingerprint(c) for c in certs], [fingerprint(ca_pem)], node)
        for leaf in ("etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt"):
            self.assertTrue(verifies(a.pki("etcd/ca.crt"), a.pki(leaf)), f"{node} {leaf}")

    def wait_for(self, what, fn, timeout=60):
        deadline = time.time() + timeout
        while True:
            r = fn()
            if r:
                return r
            self.assertLess(time.time(), deadline, "timed out waiting for " + what)
            time.sleep(0.3)

    def test_long_poll_of_a_kv_version_2_key(self):
        """The agents' watch: a read with wait/after_version is answered when the key is written,
        or when the wait is over; bad parameters are a 400 with the rule."""
        s = self.s = self.server().start()
        s.init_and_unseal(1, 1)
        st, body, _ = s.request("POST", "sys/mounts/kv", token=s.root, body={"type": "kv", "options": {"version": "2"}})
        self.assertEqual(st, 204, body)
        t0 = time.time()
        st, body, _ = s.request("GET", "kv/data/doc?wait=2s&after_version=0", token=s.root)
        self.assertEqual(st, 404, body)  # nothing written: answered after the wait
        self.assertGreaterEqual(time.time() - t0, 1.9)
        import threading
        writer = threading.Timer(1.0, lambda: s.request("POST", "kv/data/doc", token=s.root, body={"data": {"v": 1}}))
        writer.start()
        t0 = time.time()
        st, body, _ = s.request("GET", "kv/data/doc?wait=60s&after_version=0", token=s.root)
        writer.join()
        self.assertEqual(st, 200, body)
        self.assertEqual((body["data"]["data"], body["data"]["metadata"]["version"]), ({"v": 1}, 1))
        self.assertLess(time.time() - t0, 10)  # woken by the write, not by the wait
        t0 = time.time()
        st, body, _ = s.request("GET", "kv/data/doc?wait=60s&after_version=0", token=s.root)
        self.assertEqual((st, body["data"]["metadata"]["version"]), (200, 1))  # newer already: at once
        self.assertLess(time.time() - t0, 5)
        for q, msg in (("wait=10m&after_version=1", "from 1s to 5m"), ("wait=5s", "needs after_version"),
                       ("wait=5s&after_version=x", "after_version")):
            st, body, _ = s.request("GET", "kv/data/doc?" + q, token=s.root)
            self.assertEqual(st, 400, (q, body))
            self.assertIn(msg, body["errors"][0])
        # A token that may not read the key is refused before any wait.
        st, body, _ = s.request("POST", "auth/token/create", token=s.root, body={"policies": ["default"]})
        t0 = time.time()
        st, body, _ = s.request("GET", "kv/data/doc?wait=30s&after_version=1", token=body["auth"]["client_token"])
        self.assertEqual(st, 403, body)
        self.assertLess(time.time() - t0, 5)

    def test_full_rotation_in_batches(self):
        s = self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1", "e-3:etcd:127.0.0.1",
                          "w-1:worker:127.0.0.2"])
        old_ca = pem_certs(self.agents["e-1"].pki("etcd/ca.crt"))[0]
        old_default = self.default_issuer()
        keys = {n: read(self.agents[n].pki("etcd/server.key")) for n in ("e-1", "e-2", "e-3")}
        worker_kubelet = serial_of(self.agents["w-1"].pki("kubelet.crt"))
        fin = os.path.join(self.tmp, "finalize.log")
        p = self.rotate("--finalize-hook", f"echo finalized >> {fin}", "--timeout", "120s",
                        check_rc=0)
        self.assertIn("phase trust done on 3 nodes", p.stdout)
        self.assertIn("phase finalize done on 3 nodes", p.stdout)
        doc = self.doc()
        self.assertEqual(doc["phase"], "done")
        self.assertEqual(doc["nodes"], ["e-1", "e-2", "e-3"])  # the worker holds nothing of etcd's
        new_ca = doc["new_pem"] + "\n"
        self.assertNotEqual(fingerprint(new_ca), fingerprint(old_ca))
        old_file = os.path.join(self.tmp, "old-ca.pem")
        with open(old_file, "w") as f:
            f.write(old_ca)
        for n in ("e-1", "e-2", "e-3"):
            self.assert_on_ca(n, new_ca)
            a = self.agents[n]
            self.assertFalse(verifies(old_file, a.pki("etcd/server.crt")), n)
            self.assertNotEqual(read(a.pki("etcd/server.key")), keys[n], f"{n}: key not rotated")
            self.assertEqual(oct(os.stat(a.pki("etcd/server.key")).st_mode & 0o777), "0o600")
            # The acknowledgement in the registry names what the node configured.
            st, body, _ = s.request("GET", f"r1/nodes/data/{n}", token=s.root)
            ack = body["data"]["data"]["rotation"]
            self.assertEqual((ack["id"], ack["phase"], ack["state"]), (doc["id"], "finalize", "done"))
            self.assertEqual(ack["ca_fingerprints"][a.pki("etcd/ca.crt")], [fingerprint(new_ca)])
        self.assertEqual(serial_of(self.agents["w-1"].pki("kubelet.crt")), worker_kubelet)
        # Every node ran its hook once per phase, one node at a time (max_unavailable 1).
        lines = self.hook_lines()
        for n in ("e-1", "e-2", "e-3"):
            self.assertEqual([l[1] for l in lines if l[0] == n and l[2] == "start"],
                             ["trust", "reissue", "finalize"], lines)
        spans = {}
        for node, phase, what, t in lines:
            spans.setdefault((node, phase), {})[what] = float(t)
        ordered = sorted(spans.values(), key=lambda v: v["start"])
        for a, b in zip(ordered, ordered[1:]):
            self.assertLessEqual(a["end"], b["start"], "two nodes ran hooks at once: " + str(lines))
        with open(fin) as f:
            self.assertEqual(f.read(), "finalized\n")
        # The server: the new issuer is the default; the old one keeps its CRL and signs nothing.
        self.assertEqual(self.default_issuer(), doc["new_issuer"])
        self.assertNotEqual(doc["new_issuer"], old_default)
        self.assertNotIn("issuing-certificates", self.issuer(doc["old_issuer"])["usage"])
        st, body, _ = s.request("POST", f"r1/pki/etcd/issuer/{doc['old_issuer']}/issue/etcd-healthcheck-client",
                                token=s.root, body={"common_name": "kube-etcd-healthcheck-client"})
        self.assertEqual(st, 400, body)
        self.assertIn("done", self.status())
        # Another rotation may start now; one at a time while it runs.
        p = self.rotate("--no-wait", check_rc=0)
        p = self.rotate("--no-wait")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is in phase trust", p.stderr)

    def test_new_intermediate_from_an_external_root(self):
        """--from-csr: the new CA's key stays in Coffer, its CSR is signed by a root kept
        elsewhere (openssl here), --signed starts the rotation; nodes end with the intermediate
        and its root in their CA files."""
        self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1"])
        d = self.tmp
        csr = os.path.join(d, "etcd.csr")
        p = self.rotate("--from-csr", "--csr-out", csr, check_rc=0)
        self.assertIn("--signed", p.stdout)
        subj = subprocess.run(["openssl", "req", "-in", csr, "-noout", "-subject", "-verify"],
                              capture_output=True, text=True, check=True)
        self.assertIn("CN = etcd-ca", subj.stdout)
        root_key, root = os.path.join(d, "root.key"), os.path.join(d, "root.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", root_key, "-out", root, "-days", "30", "-subj", "/CN=Offline Root",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], capture_output=True, check=True)
        ext = os.path.join(d, "int.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        inter = os.path.join(d, "int.pem")
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", root, "-CAkey", root_key,
                        "-CAcreateserial", "-days", "20", "-extfile", ext, "-out", inter],
                       capture_output=True, check=True)
        signed = os.path.join(d, "signed.pem")
        with open(signed, "w") as f:
            f.write(read(inter) + read(root))
        p = self.rotate("--signed", signed, "--timeout", "60s", check_rc=0)
        doc = self.doc()
        self.assertEqual(doc["phase"], "done")
        want = [fingerprint(read(inter)), fingerprint(read(root))]
        for n in ("e-1", "e-2"):
            a = self.agents[n]
            self.assertEqual([fingerprint(c) for c in pem_certs(a.pki("etcd/ca.crt"))], want, n)
            self.assertTrue(verifies(a.pki("etcd/ca.crt"), a.pki("etcd/server.crt")), n)
            # The offline root alone is enough, with the intermediate sent alongside.
            v = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", inter,
                                a.pki("etcd/server.crt")], capture_output=True, text=True)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Its successor is made the same way: a plain rotate-ca of an intermediate is refused.
        p = self.rotate("--no-wait")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is an intermediate: make its successor with --from-csr", p.stderr)
        p = self.rotate("--from-csr", "--signed", signed)
        self.assertIn("two steps", p.stderr)

    def test_cross_signed_new_ca_is_accepted_by_clients_of_the_old_one(self):
        """--cross-sign: the old CA certifies the new root's key; each new leaf is sent with that
        certificate, so a client that trusts only the old CA (one no agent manages) still accepts
        it, as one trusting only the new CA does. Checked with openssl, GnuTLS and a TLS handshake
        in Python."""
        s = self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1", "w-1:worker:127.0.0.2"])
        p = self.rotate("--cross-sign", "--from-csr")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("give one of them", p.stderr)
        old_ca = pem_certs(self.agents["e-1"].pki("etcd/ca.crt"))[0]
        d = self.tmp
        old_file, new_file = os.path.join(d, "old-ca.pem"), os.path.join(d, "new-ca.pem")
        with open(old_file, "w") as f:
            f.write(old_ca)
        p = self.rotate("--cross-sign", "--timeout", "60s", check_rc=0)
        doc = self.doc()
        self.assertEqual(doc["phase"], "done")
        with open(new_file, "w") as f:
            f.write(doc["new_pem"] + "\n")
        self.assertEqual(list(doc["crosses"]), ["r1/pki/etcd"])
        cross = doc["crosses"]["r1/pki/etcd"].strip() + "\n"
        self.assertIn("cross-signed by the old CA: " + doc["cross_issuer"], self.status())
        # The cross-signed certificate: the new root's subject and key, issued by the old CA, kept
        # in the mount as an issuer that signs nothing.
        info = self.issuer(doc["cross_issuer"])
        self.assertEqual((info["issuer_name"], info["usage"]), (doc["id"] + "-cross", "read-only"))
        self.assertEqual(info["key_id"], self.issuer(doc["new_issuer"])["key_id"])

        def x509(pem, *args):
            return subprocess.run(["openssl", "x509", "-noout", *args], input=pem.encode(),
                                  capture_output=True, check=True).stdout
        self.assertEqual(x509(cross, "-pubkey"), x509(doc["new_pem"], "-pubkey"))
        self.assertEqual(x509(cross, "-subject"), x509(doc["new_pem"], "-subject"))
        self.assertNotEqual(x509(cross, "-serial"), x509(doc["new_pem"], "-serial"))
        # It ends when the old CA does (the new root lives longer): no path outlives the old CA.
        self.assertEqual(x509(cross, "-enddate"), x509(old_ca, "-enddate"))
        cross_file = os.path.join(d, "cross.pem")
        with open(cross_file, "w") as f:
            f.write(cross)
        self.assertTrue(verifies(old_file, cross_file))
        self.assertFalse(verifies(new_file, cross_file))
        for n in ("e-1", "e-2"):
            a = self.agents[n]
            self.assert_on_ca(n, doc["new_pem"] + "\n")  # CA files: the new CA only
            chain = pem_certs(a.pki("etcd/server.crt"))
            self.assertEqual([fingerprint(c) for c in chain[1:]], [fingerprint(cross)], n)
            leaf = os.path.join(d, n + "-leaf.pem")
            with open(leaf, "w") as f:
                f.write(chain[0])
            # The leaf alone does not verify against the old CA; sent with the cross-signed
            # certificate it does, and against the new CA too.
            self.assertFalse(verifies(old_file, leaf), n)
            for ca in (old_file, new_file):
                v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", ca,
                                    "-untrusted", a.pki("etcd/server.crt"), leaf],
                                   capture_output=True, text=True)
                self.assertEqual(v.returncode, 0, (n, ca, v.stdout + v.stderr))
                g = subprocess.run(["certtool", "--verify", "--load-ca-certificate", ca,
                                    "--infile", a.pki("etcd/server.crt")],
                                   capture_output=True, text=True)
                self.assertEqual(g.returncode, 0, (n, ca, g.stdout + g.stderr))
                self.assertIn("Chain verification output: Verified.", g.stdout)
        # A real handshake: the server sends the file as its chain; clients trusting one CA each.
        import socket
        import ssl
        import threading
        a = self.agents["e-1"]
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.load_cert_chain(a.pki("etcd/server.crt"), a.pki("etcd/server.key"))
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)

        def serve():
            for _ in range(2):
                c, _ = lsock.accept()
                try:
                    with srv.wrap_socket(c, server_side=True) as t:
                        t.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    pass
        th = threading.Thread(target=serve, daemon=True)
        th.start()
        for ca in (old_file, new_file):
            cli = ssl.create_default_context(cafile=ca)
            with socket.create_connection(lsock.getsockname(), timeout=10) as c:
                with cli.wrap_socket(c, server_hostname="127.0.0.1") as t:
                    self.assertEqual(t.recv(2), b"ok", ca)
        th.join(10)
        lsock.close()
        # A certificate file without it (written by hand, or before the agent knew of it) gets it
        # back on the agent's next pass.
        a.stop()
        leaf_only = pem_certs(a.pki("etcd/server.crt"))[0]
        with open(a.pki("etcd/server.crt"), "w") as f:
            f.write(leaf_only)
        a.start()
        self.wait_for("the cross-signed certificate back in e-1's server.crt",
                      lambda: len(pem_certs(a.pki("etcd/server.crt"))) == 2)
        self.assertEqual(fingerprint(pem_certs(a.pki("etcd/server.crt"))[1]), fingerprint(cross))
        # Rotating another CA of the cluster keeps the etcd one's (per CA).
        p = self.s.cli("cluster", "rotate-ca", "r1", "--ca", "kubernetes", "--no-wait", token=self.s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.doc()["crosses"], {"r1/pki/etcd": doc["crosses"]["r1/pki/etcd"]})

    def test_failing_hook_pauses_then_resume(self):
        flag = os.path.join(self.tmp, "fixed")
        self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1"],
                     hooks={"e-2": f'[ -e {flag} ] || {{ echo "etcd-2 would not restart: disk full"; false; }}'})
        p = self.rotate("--timeout", "60s")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("node e-2 failed the trust phase", p.stderr)
        self.assertIn("exited with 1", p.stderr)
        self.assertIn("disk full", p.stderr)
        out = self.status()
        self.assertIn("PAUSED", out)
        self.assertIn("e-1: done", out)
        self.assertIn("e-2: FAILED", out)
        self.assertIn("| etcd-2 would not restart: disk full", out)
        # Nothing moves while paused.
        time.sleep(2.5)
        self.assertEqual(self.doc()["phase"], "trust")
        open(flag, "w").close()
        p = self.s.cli("cluster", "rotation", "resume", "r1", "--timeout", "60s", token=self.s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        doc = self.doc()
        self.assertEqual(doc["phase"], "done")
        for n in ("e-1", "e-2"):
            self.assert_on_ca(n, doc["new_pem"] + "\n")

    def test_node_down_is_pending_then_skipped(self):
        self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1"])
        self.agents["e-2"].stop()
        p = self.rotate("--timeout", "6s", "--max-unavailable", "2")
        self.assertEqual(p.returncode, 2 if "HTTP" in p.stderr else 1, p.stdout + p.stderr)
        self.assertIn("did not finish within 6s", p.stderr)
        out = self.status()
        self.assertIn("phase:      trust", out)
        self.assertIn("e-1: done", out)
        self.assertRegex(out, r"e-2: pending since \d+s")
        # Following it without driving it: still pending when the wait is over.
        p = self.s.cli("cluster", "rotation", "status", "r1", "--wait", "--timeout", "2s", token=self.s.root)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("did not finish within 2s", p.stderr)
        self.assertIn("phase trust", p.stderr)  # the progress line
        p = self.s.cli("cluster", "rotation", "skip-node", "r1", "e-2", token=self.s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("init-token r1 e-2", p.stdout)
        env = dict(os.environ, COFFER_ADDR=self.s.addr, COFFER_CACERT=self.s.ca, COFFER_TOKEN=self.s.root)
        driver = subprocess.Popen([COFFER_BIN, "cluster", "rotation", "resume", "r1", "--timeout", "60s"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        p = self.s.cli("cluster", "rotation", "status", "r1", "--wait", "--timeout", "60s", token=self.s.root)
        out, _ = driver.communicate(timeout=90)
        self.assertEqual(driver.returncode, 0, out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"rotation \S+ done")
        doc = self.doc()
        self.assertEqual((doc["phase"], doc["skipped"]), ("done", ["e-2"]))
        self.assert_on_ca("e-1", doc["new_pem"] + "\n")

    def test_abort_in_each_phase(self):
        gate = os.path.join(self.tmp, "gate")
        # e-2's hook fails in the phase named in the gate file.
        self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1"],
                     hooks={"e-2": f'[ "$COFFER_ROTATION_PHASE" != "$(cat {gate} 2>/dev/null)" ]'})
        old_ca = pem_certs(self.agents["e-1"].pki("etcd/ca.crt"))[0]
        old_default = self.default_issuer()
        for phase in ("trust", "reissue", "finalize"):
            with open(gate, "w") as f:
                f.write(phase)
            # Cross-signed once: an abort leaves no leaf sent with the cross-signed certificate.
            p = self.rotate("--timeout", "60s", *(["--cross-sign"] if phase == "reissue" else []))
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn(f"node e-2 failed the {phase} phase", p.stderr)
            doc = self.doc()
            if phase == "reissue":
                self.assertEqual(len(pem_certs(self.agents["e-1"].pki("etcd/server.crt"))), 2)
            if phase == "finalize":
                self.assertEqual(self.default_issuer(), doc["new_issuer"])
                self.assertEqual(len(pem_certs(self.agents["e-1"].pki("etcd/ca.crt"))), 1)
            p = self.s.cli("cluster", "rotation", "abort", "r1", "--timeout", "60s", token=self.s.root)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual((self.doc()["phase"], self.doc()["aborted_from"]), ("aborted", phase))
            # Backwards from where it stopped: the steps each node acknowledged last.
            st, body, _ = self.s.request("GET", "r1/nodes/data/e-1", token=self.s.root)
            self.assertEqual(body["data"]["data"]["rotation"]["phase"], "abort-finalize")
            steps = [l[1] for l in self.hook_lines() if l[0] == "e-1" and l[2] == "start"]
            want = {"trust": ["abort-finalize"], "reissue": ["abort-reissue", "abort-finalize"],
                    "finalize": ["abort-trust", "abort-reissue", "abort-finalize"]}[phase]
            self.assertEqual(steps[-len(want):], want, steps)
            for n in ("e-1", "e-2"):
                self.assert_on_ca(n, old_ca)
                self.assertEqual(len(pem_certs(self.agents[n].pki("etcd/server.crt"))), 1, n)
            if doc["cross_issuer"]:
                # The abandoned key's cross-signed certificate is revoked and sent no more.
                info = self.issuer(doc["cross_issuer"])
                self.assertEqual(info["usage"], "read-only")
                self.assertGreater(info["revocation_time"], 0)
                self.assertEqual(self.doc()["crosses"], {})
                self.assertIn("(revoked)", self.status())
            self.assertEqual(self.default_issuer(), old_default)
            self.assertEqual(self.issuer(doc["new_issuer"])["usage"], "read-only")
            self.assertIn("issuing-certificates", self.issuer(old_default)["usage"])
            p = self.s.cli("cluster", "rotation", "abort", "r1", token=self.s.root)
            self.assertIn("already aborted", p.stdout)

    def test_driver_outlives_a_sigkilled_server(self):
        gate = os.path.join(self.tmp, "open")
        s = self.cluster(["e-1:etcd:127.0.0.1", "e-2:etcd:127.0.0.1"],
                         hooks={"e-2": f'[ "$COFFER_ROTATION_PHASE" != reissue ] || '
                                       f'{{ for i in $(seq 600); do [ -e {gate} ] && exit 0; sleep 0.1; done; false; }}'})
        env = dict(os.environ, COFFER_ADDR=s.addr, COFFER_CACERT=s.ca, COFFER_TOKEN=s.root)
        driver = subprocess.Popen([COFFER_BIN, "cluster", "rotate-ca", "r1", "--ca", "etcd", "--timeout", "120s"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # e-2 is in its reissue hook (waiting for the gate): the rotation is mid-phase.
            self.wait_for("e-2 in its reissue hook",
                          lambda: ["e-2", "reissue", "start"] in [l[:3] for l in self.hook_lines()])
            s.kill9()
            time.sleep(1)
            s.start()
            s.unseal(1)
            open(gate, "w").close()
            out, _ = driver.communicate(timeout=120)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
        self.assertEqual(driver.returncode, 0, out)
        self.assertIn("waiting for the server", out)
        doc = self.doc()
        self.assertEqual(doc["phase"], "done")
        for n in ("e-1", "e-2"):
            self.assert_on_ca(n, doc["new_pem"] + "\n")


if __name__ == "__main__":
    unittest.main()
