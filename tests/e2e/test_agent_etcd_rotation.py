"""A live three-member etcd cluster moved from its first CA to a new one with
`coffer cluster rotate-ca`, with zero failed client operations.

Real processes: a Coffer server, `cluster setup`, four `coffer agent run` (etcd-1..3 and a
control-plane node cp-1), three etcd members with client and peer certificate auth on the
agents' files. etcd reads its CA files only at start, so each member's agent hook asks the test's
supervisor to restart that member and waits until it is healthy again (what
`systemctl restart etcd && etcdctl endpoint health` does on a real node); with max_unavailable 1
one member at most is down, so quorum holds.

The checker is a client like kube-apiserver: cp-1's agent-managed apiserver-etcd-client
certificate, the three members as its endpoints (each operation starts at the next one and fails
over, as etcd clients do), its TLS files re-read when its agent's hook says they changed. It
writes a key and reads it back every 0.4 s through all three phases: no operation may fail.
After finalize a client certificate of the old CA is refused by every member and the new one
works. The agent test's etcd starts the same way (etcd_env.py).
"""
import base64
import json
import os
import shutil
import ssl
import threading
import time
import unittest
import urllib.error
import urllib.request

from agent_env import Agent
from etcd_env import ETCD, ETCDCTL, EtcdCluster
from harness import ServerTest

MEMBERS = (1, 2, 3)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def tls_context(ca, cert, key):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(cert, key)
    return ctx


def etcd_call(endpoint, ctx, path, body, timeout=3):
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
        return json.loads(r.read())


@unittest.skipUnless(ETCD and ETCDCTL, "etcd-server and etcd-client are installed by scripts/install-deps.sh")
class EtcdCaRotation(ServerTest):
    def setUp(self):
        super().setUp()
        self.etcd, self.agents, self.threads = None, {}, []
        self.stopping = threading.Event()
        self.restarts, self.failures, self.ok_times, self.reloads = [], [], [], 0
        self.served = {i: 0 for i in MEMBERS}
        self.reload_mark = os.path.join(self.tmp, "checker-reload")

    def tearDown(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=20)
        if self.etcd:
            self.etcd.stop_all()
        for a in self.agents.values():
            a.stop()
        super().tearDown()

    def supervise(self):
        """Restarts member i when its agent's hook asks (file restart-i), then answers restarted-i
        once the member reports healthy with that node's current healthcheck certificate."""
        while not self.stopping.is_set():
            for i in MEMBERS:
                req = os.path.join(self.tmp, f"restart-{i}")
                if not os.path.exists(req):
                    continue
                os.unlink(req)
                self.etcd.stop(i)
                self.etcd.start(i)
                self.restarts.append(i)
                a = self.agents[f"etcd-{i}"]
                deadline = time.time() + 60
                while time.time() < deadline and not self.stopping.is_set():
                    try:
                        ctx = tls_context(a.pki("etcd/ca.crt"), a.pki("etcd/healthcheck-client.crt"),
                                          a.pki("etcd/healthcheck-client.key"))
                        with urllib.request.urlopen(self.etcd.endpoint(i) + "/health", context=ctx,
                                                    timeout=3) as r:
                            if json.loads(r.read()).get("health") == "true":
                                break
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.2)
                open(os.path.join(self.tmp, f"restarted-{i}"), "w").close()
            time.sleep(0.1)

    def check(self):
        """The checker: a put and a read-back every 0.4 s, failing over between members."""
        cp = self.agents["cp-1"]
        files = (cp.pki("etcd/ca.crt"), cp.pki("apiserver-etcd-client.crt"), cp.pki("apiserver-etcd-client.key"))
        ctx, seen = tls_context(*files), None
        n, start = 0, 0
        while not self.stopping.is_set():
            if os.path.exists(self.reload_mark):
                mark = os.stat(self.reload_mark).st_mtime_ns
                if mark != seen:  # its agent's hook ran: the files are whole and new
                    ctx, seen = tls_context(*files), mark
                    self.reloads += 1
            n += 1
            value, errors = str(n), []
            for k in range(len(MEMBERS)):
                i = MEMBERS[(start + k) % len(MEMBERS)]
                ep = self.etcd.endpoint(i)
                try:
                    etcd_call(ep, ctx, "/v3/kv/put", {"key": b64("coffer-rotation"), "value": b64(value)})
                    got = etcd_call(ep, ctx, "/v3/kv/range", {"key": b64("coffer-rotation")})
                    if base64.b64decode(got["kvs"][0]["value"]).decode() != value:
                        raise ValueError(f"read back {got} for {value}")
                    self.served[i] += 1
                    break
                except (OSError, ValueError, KeyError, ssl.SSLError) as e:
                    errors.append(f"etcd-{i}: {e}")
            else:
                self.failures.append((time.time(), errors))
            if not errors or len(errors) < len(MEMBERS):
                self.ok_times.append(time.time())
            start += 1
            time.sleep(0.4)

    def bring_up(self):
        """Server, cluster, agents, etcd, supervisor and checker; returns the server."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        tokdir = os.path.join(self.tmp, "tokens")
        s.cli("cluster", "setup", "rot", "--leaf-ttl", "2h", "--init-token-dir", tokdir,
              "--node", "etcd-1:etcd:127.0.0.1", "--node", "etcd-2:etcd:127.0.0.1",
              "--node", "etcd-3:etcd:127.0.0.1", "--node", "cp-1:control-plane:127.0.0.1",
              token=s.root, check=True)
        for name in ("etcd-1", "etcd-2", "etcd-3", "cp-1"):
            a = Agent(self, s, "rot", name, tokdir)
            with open(a.cfg) as f:
                c = json.load(f)
            c["rotation_wait"] = "5s"  # the long poll wakes the agent; no periodic read needed
            for cert in c["certificates"]:
                if name == "cp-1" and cert["name"] == "apiserver-etcd-client":
                    cert["exec"] = f"touch {self.reload_mark}"
                elif name != "cp-1" and "/pki/etcd/" in cert["role"]:
                    i = name[-1]
                    # Restart this member and wait until it is healthy (the supervisor does it).
                    # A phase named in the file `gate` fails on etcd-2 (the abort test).
                    cert["exec"] = (f"[ -z \"$COFFER_ROTATION_PHASE\" ] && exit 0; "
                                    f"[ {i} = 2 ] && [ \"$COFFER_ROTATION_PHASE\" = \"$(cat {self.tmp}/gate 2>/dev/null)\" ]"
                                    f" && {{ echo gated; exit 1; }}; "
                                    f"rm -f {self.tmp}/restarted-{i}; touch {self.tmp}/restart-{i}; "
                                    f"for n in $(seq 900); do [ -e {self.tmp}/restarted-{i} ] && exit 0; "
                                    f"sleep 0.1; done; echo etcd-{i} did not come back; exit 1")
            with open(a.cfg, "w") as f:
                json.dump(c, f)
            self.agents[name] = a.start()
        for name, a in self.agents.items():
            a.wait_for(["etcd/ca.crt", "apiserver-etcd-client.crt"] if name == "cp-1" else
                       ["etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt", "etcd/ca.crt"])
        cp = self.agents["cp-1"]
        old_client = {}
        for ext in ("crt", "key"):
            old_client[ext] = os.path.join(self.tmp, f"old-client.{ext}")
            shutil.copy(cp.pki(f"apiserver-etcd-client.{ext}"), old_client[ext])
        old_ca = os.path.join(self.tmp, "old-ca.crt")
        shutil.copy(cp.pki("etcd/ca.crt"), old_ca)

        self.etcd = EtcdCluster(self.tmp, {i: self.agents[f"etcd-{i}"] for i in MEMBERS})
        for i in MEMBERS:
            self.etcd.start(i)
        deadline = time.time() + 60
        while self.etcd.etcdctl(self.agents["etcd-1"], "endpoint", "health").returncode != 0:
            self.assertLess(time.time(), deadline, "etcd never became healthy")
            time.sleep(1)
        for fn in (self.supervise, self.check):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self.threads.append(t)
        time.sleep(3)
        self.assertGreater(len(self.ok_times), 3, self.failures)
        self.old_client, self.old_ca = old_client, old_ca
        return s

    def stop_checking(self):
        time.sleep(3)  # the checker keeps going on the final CA
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=20)
        self.assertEqual(self.failures, [], "failed operations during the rotation")
        gaps = [b - a for a, b in zip(self.ok_times, self.ok_times[1:])]
        self.assertLess(max(gaps), 5, "an operation took too long (quorum lost?)")
        for i in MEMBERS:
            self.assertGreater(self.served[i], 0, f"no operation went through etcd-{i}")
        r = self.etcd.etcdctl(self.agents["etcd-2"], "endpoint", "health")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rotate_etcd_ca_without_a_failed_operation(self):
        s = self.bring_up()
        cp = self.agents["cp-1"]
        old_client, old_ca = self.old_client, self.old_ca

        p = s.cli("cluster", "rotate-ca", "rot", "--ca", "etcd", "--timeout", "300s", token=s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.stop_checking()
        self.assertGreater(len(self.ok_times), 30)
        for i in MEMBERS:
            # Every member was restarted once per phase: trust, reissue, finalize.
            self.assertEqual(self.restarts.count(i), 3, self.restarts)
        self.assertGreaterEqual(self.reloads, 3)

        st, body, _ = s.request("GET", "rot/nodes/data/_rotation", token=s.root)
        doc = body["data"]["data"]
        self.assertEqual(doc["phase"], "done")
        new_client = tls_context(cp.pki("etcd/ca.crt"), cp.pki("apiserver-etcd-client.crt"),
                                 cp.pki("apiserver-etcd-client.key"))
        # The old CA's client certificate is refused by every member; the new one works.
        refused = tls_context(cp.pki("etcd/ca.crt"), old_client["crt"], old_client["key"])
        for i in MEMBERS:
            ep = self.etcd.endpoint(i)
            got = etcd_call(ep, new_client, "/v3/kv/range", {"key": b64("coffer-rotation")})
            self.assertEqual(len(got["kvs"]), 1)
            with self.assertRaises((OSError, ssl.SSLError, urllib.error.URLError)):
                etcd_call(ep, refused, "/v3/kv/range", {"key": b64("coffer-rotation")})
        # And a member no longer presents a certificate the old CA signed.
        with self.assertRaises((OSError, ssl.SSLError, urllib.error.URLError)):
            etcd_call(self.etcd.endpoint(1), tls_context(old_ca, cp.pki("apiserver-etcd-client.crt"),
                                                         cp.pki("apiserver-etcd-client.key")),
                      "/v3/kv/range", {"key": b64("coffer-rotation")})

    def test_abort_during_reissue_brings_every_node_back(self):
        """etcd-2's hook fails in reissue: the rotation pauses with etcd-1 on a new-CA certificate;
        abort takes every node back to the old CA, without a failed operation."""
        with open(os.path.join(self.tmp, "gate"), "w") as f:
            f.write("reissue")
        s = self.bring_up()
        cp = self.agents["cp-1"]
        with open(self.old_ca) as f:
            old_pem = f.read()
        p = s.cli("cluster", "rotate-ca", "rot", "--ca", "etcd", "--timeout", "300s", token=s.root)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("node etcd-2 failed the reissue phase", p.stderr)
        self.assertIn("gated", p.stderr)
        p = s.cli("cluster", "rotation", "abort", "rot", "--timeout", "50s", token=s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.stop_checking()
        for name, a in self.agents.items():
            with open(a.pki("etcd/ca.crt")) as f:
                self.assertEqual(f.read(), old_pem, name)
        # The checker's current certificate is the old CA's again and works everywhere.
        ctx = tls_context(self.old_ca, cp.pki("apiserver-etcd-client.crt"), cp.pki("apiserver-etcd-client.key"))
        for i in MEMBERS:
            got = etcd_call(self.etcd.endpoint(i), ctx, "/v3/kv/range", {"key": b64("coffer-rotation")})
            self.assertEqual(len(got["kvs"]), 1)


if __name__ == "__main__":
    unittest.main()
