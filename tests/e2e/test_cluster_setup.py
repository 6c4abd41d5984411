"""`coffer cluster setup` and the agent's one-shot commands against a real server over TLS:
idempotent setup (plan, changes, "no changes", re-tune and role repair), certificates that match
kubeadm's (a table per certificate, read back with the openssl CLI), what each token may and may
not do, init tokens that work once, file modes, kubeconfigs, intermediate CAs and external roots.
"""
import base64
import datetime
import json
import os
import re
import stat
import subprocess
import time
import unittest

from harness import COFFER_BIN, ServerTest

NODES = ["etcd-1:etcd:127.0.0.11", "cp-1:control-plane:10.0.0.2", "w-1:worker:10.0.0.3",
         "w-2:worker:10.0.0.4"]


def read(path):
    with open(path) as f:
        return f.read().strip()


def cert_fields(path):
    """CN, O, SANs, key usages and EKUs as openssl prints them."""
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253",
                          "-ext", "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints"],
                         capture_output=True, text=True, check=True).stdout
    subject = out.splitlines()[0][len("subject="):]
    cn = [p[3:] for p in subject.split(",") if p.startswith("CN=")]
    org = sorted(p[2:] for p in subject.split(",") if p.startswith("O="))
    lines = out.splitlines()

    def ext(name):
        for i, line in enumerate(lines):
            if line.startswith(name):
                return [x.strip() for x in lines[i + 1].split(",")]
        return []
    sans = ext("X509v3 Subject Alternative Name")
    return {
        "cn": cn[0] if cn else "",
        "o": org,
        "dns": sorted(s[4:] for s in sans if s.startswith("DNS:")),
        "ip": sorted(s[len("IP Address:"):] for s in sans if s.startswith("IP Address:")),
        "ku": sorted(ext("X509v3 Key Usage")),
        "eku": sorted(ext("X509v3 Extended Key Usage")),
        "ca": ext("X509v3 Basic Constraints"),
    }


SERVER = "TLS Web Server Authentication"
CLIENT = "TLS Web Client Authentication"
SERVICE_NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"]

# What kubeadm (v1.29+) makes, written out by hand: file, CN, O, EKUs, DNS SANs, IP SANs.
KUBEADM = {
    "cp-1": [
        ("pki/apiserver.crt", "kube-apiserver", [], [SERVER],
         sorted(["cp-1", "api.example.com"] + SERVICE_NAMES), sorted(["10.96.0.1", "10.0.0.2", "192.0.2.10"])),
        ("pki/apiserver-kubelet-client.crt", "kube-apiserver-kubelet-client",
         ["kubeadm:cluster-admins"], [CLIENT], [], []),
        ("pki/apiserver-etcd-client.crt", "kube-apiserver-etcd-client", [], [CLIENT], [], []),
        ("pki/front-proxy-client.crt", "front-proxy-client", [], [CLIENT], [], []),
        ("pki/etcd/healthcheck-client.crt", "kube-etcd-healthcheck-client", [], [CLIENT], [], []),
        ("../kubelet/pki/kubelet.crt", "system:node:cp-1", ["system:nodes"], [SERVER, CLIENT], ["cp-1"], ["10.0.0.2"]),
        ("admin.conf", "kubernetes-admin", ["kubeadm:cluster-admins"], [CLIENT], [], []),
        ("kubelet.conf", "system:node:cp-1", ["system:nodes"], [SERVER, CLIENT], ["cp-1"], ["10.0.0.2"]),
        ("controller-manager.conf", "system:kube-controller-manager", [], [CLIENT], [], []),
        ("scheduler.conf", "system:kube-scheduler", [], [CLIENT], [], []),
        ("kube-proxy.conf", "system:kube-proxy", [], [CLIENT], [], []),
    ],
    "etcd-1": [
        ("pki/etcd/server.crt", "etcd-1", [], [SERVER, CLIENT], ["etcd-1", "localhost"],
         sorted(["127.0.0.11", "127.0.0.1", "0:0:0:0:0:0:0:1"])),
        ("pki/etcd/peer.crt", "etcd-1", [], [SERVER, CLIENT], ["etcd-1", "localhost"],
         sorted(["127.0.0.11", "127.0.0.1", "0:0:0:0:0:0:0:1"])),
        ("pki/etcd/healthcheck-client.crt", "kube-etcd-healthcheck-client", [], [CLIENT], [], []),
    ],
    "w-1": [
        ("../kubelet/pki/kubelet.crt", "system:node:w-1", ["system:nodes"], [SERVER, CLIENT], ["w-1"], ["10.0.0.3"]),
        ("kubelet.conf", "system:node:w-1", ["system:nodes"], [SERVER, CLIENT], ["w-1"], ["10.0.0.3"]),
        ("kube-proxy.conf", "system:kube-proxy", [], [CLIENT], [], []),
    ],
}


def kubeconfig_parts(path):
    text = open(path).read()

    def field(name):
        m = re.search(r"^\s*" + name + r": (\S+)$", text, re.M)
        return m.group(1) if m else None
    return text, field


class ClusterSetup(ServerTest):
    def setup_cluster(self, s, *extra):
        tokdir = os.path.join(self.tmp, "tokens")
        args = ["cluster", "setup", "c1", "--init-token-dir", tokdir,
                "--apiserver-san", "api.example.com", "--apiserver-san", "192.0.2.10", *extra]
        for n in NODES:
            args += ["--node", n]
        p = s.cli(*args, token=s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p, tokdir

    def boot_node(self, s, node, tokdir):
        """agent-config + the node's init token + `agent once`; returns (root, config path)."""
        root = os.path.join(self.tmp, node, "kubernetes")
        state = os.path.join(self.tmp, node, "state")
        cfg = os.path.join(self.tmp, node + ".json")
        s.cli("cluster", "agent-config", "c1", node, "--root", root, "--kubelet-dir",
              os.path.join(self.tmp, node, "kubelet"), "--state-dir", state,
              "--api-server", "https://10.0.0.2:6443", "--out", cfg, token=s.root, check=True)
        os.makedirs(state, exist_ok=True)
        os.replace(os.path.join(tokdir, node + ".token"), os.path.join(state, "init-token"))
        p = s.cli("agent", "once", "-config", cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "init-token")), "init token not wiped")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(state, "token")).st_mode), 0o600)
        return root, cfg, state

    def test_idempotent_plan_changes_and_repairs(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        # Dry run on a fresh server: the plan, and nothing made.
        args = ["cluster", "setup", "c1", "--dry-run"] + sum((["--node", n] for n in NODES), [])
        p = s.cli(*args, token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("create: mount c1/pki/etcd (pki)", p.stdout)
        self.assertIn("create: role c1/pki/kubernetes/roles/kubelet-w-2", p.stdout)
        self.assertNotIn("done", p.stdout)
        status, body, _ = s.request("GET", "sys/mounts", token=s.root)
        self.assertNotIn("c1/pki/etcd/", body["data"])

        p, tokdir = self.setup_cluster(s)
        self.assertIn("Plan for cluster c1", p.stdout)
        self.assertIn("done create: CA of c1/pki/kubernetes (CN kubernetes)", p.stdout)
        self.assertIn("done create: token role c1-node-w-1", p.stdout)
        for n in ("etcd-1", "cp-1", "w-1", "w-2"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(tokdir, n + ".token")).st_mode), 0o600)
        # Second run: nothing to do, nothing printed but that.
        p, _ = self.setup_cluster(s)
        self.assertEqual(p.stdout.strip(), "cluster c1: no changes")
        # A role edited by hand and a mount tuned wrong are put back, and only they.
        status, _, _ = s.request("POST", "c1/pki/kubernetes/roles/admin", token=s.root,
                                 body={"organization": "system:masters", "allow_any_name": True})
        self.assertIn(status, (200, 204))
        status, _, _ = s.request("POST", "sys/mounts/c1/pki/etcd/tune", token=s.root,
                                 body={"max_lease_ttl": "9000h"})
        self.assertEqual(status, 204)
        p, _ = self.setup_cluster(s)
        changes = [line for line in p.stdout.splitlines() if line.startswith("  done")]
        self.assertEqual(sorted(changes), sorted([
            "  done update: role c1/pki/kubernetes/roles/admin",
            "  done re-tune TTLs: mount c1/pki/etcd (pki)"]), p.stdout)
        status, body, _ = s.request("GET", "c1/pki/kubernetes/roles/admin", token=s.root)
        self.assertEqual(body["data"]["organization"], ["kubeadm:cluster-admins"])
        self.assertFalse(body["data"]["allow_any_name"])
        p, _ = self.setup_cluster(s)
        self.assertEqual(p.stdout.strip(), "cluster c1: no changes")
        # Bad input: a clear message and exit 1.
        p = s.cli("cluster", "setup", "c1", "--node", "x:database", token=s.root)
        self.assertEqual(p.returncode, 1)
        self.assertIn('unknown role "database"', p.stderr)
        p = s.cli("cluster", "setup", "c1", "--key-type", "dsa-1024", token=s.root)
        self.assertEqual(p.returncode, 1)
        self.assertIn("use ec-p256", p.stderr)

    def test_certificates_match_kubeadm(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        _, tokdir = self.setup_cluster(s)
        for node, table in KUBEADM.items():
            root, _, _ = self.boot_node(s, node, tokdir)
            for rel, cn, org, eku, dns, ips in table:
                path = os.path.join(root, rel)
                with self.subTest(node=node, file=rel):
                    if rel.endswith(".conf"):
                        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
                        text, field = kubeconfig_parts(path)
                        self.assertEqual(field("server"), "https://10.0.0.2:6443")
                        pem = base64.b64decode(field("client-certificate-data"))
                        cert_path = path + ".crt.tmp"
                        with open(cert_path, "wb") as f:
                            f.write(pem)
                        ca = base64.b64decode(field("certificate-authority-data"))
                        with open(os.path.join(root, "pki", "ca.crt"), "rb") as f:
                            self.assertEqual(ca, f.read())
                        key = base64.b64decode(field("client-key-data"))
                        self.assertIn(b"PRIVATE KEY", key)
                        path = cert_path
                    else:
                        key = path[:-4] + ".key"
                        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
                        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
                    f = cert_fields(path)
                    self.assertEqual(f["cn"], cn)
                    self.assertEqual(f["o"], sorted(org))
                    self.assertEqual(f["eku"], sorted(eku))
                    self.assertEqual(f["ku"], ["Digital Signature"])  # EC keys: no keyEncipherment
                    self.assertEqual(f["dns"], sorted(dns))
                    self.assertEqual(f["ip"], sorted(ips))
                    self.assertEqual(f["ca"], ["CA:FALSE"])
                    ca = "etcd/ca.crt" if ("etcd" in rel and "apiserver" not in rel) or "apiserver-etcd" in rel \
                        else ("front-proxy-ca.crt" if "front-proxy" in rel else "ca.crt")
                    v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile",
                                        os.path.join(root, "pki", ca), path], capture_output=True, text=True)
                    self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Control-plane secrets: the service-account key pair and the encryption config.
        root = os.path.join(self.tmp, "cp-1", "kubernetes")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, "pki", "sa.key")).st_mode), 0o600)
        p = subprocess.run(["openssl", "pkey", "-in", os.path.join(root, "pki", "sa.key"), "-pubout"],
                           capture_output=True, text=True, check=True)
        self.assertEqual(p.stdout, open(os.path.join(root, "pki", "sa.pub")).read())
        # A key's mode loosened by hand is put back by the next pass, contents unchanged.
        os.chmod(os.path.join(root, "pki", "sa.key"), 0o644)
        p = s.cli("agent", "once", "-config", os.path.join(self.tmp, "cp-1.json"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, "pki", "sa.key")).st_mode), 0o600)
        enc = open(os.path.join(root, "encryption-config.yaml")).read()
        self.assertIn("kind: EncryptionConfiguration", enc)
        secret = re.search(r"secret: (\S+)", enc).group(1)
        self.assertEqual(len(base64.b64decode(secret)), 32)
        # Status lists the CAs, booted nodes and the soonest certificates.
        p = s.cli("cluster", "status", "c1", "--soonest", "40", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"c1/pki/etcd: CN=etcd-ca \(root\), expires "
                                   r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 36\d\dd \d+h\)")
        self.assertRegex(p.stdout, r"cp-1 \[control-plane\] holds a token, ttl \d+h")
        self.assertIn("cp-1 [control-plane] holds a token", p.stdout)
        self.assertIn("w-2 [worker] no token", p.stdout)
        self.assertIn("CN=system:node:w-1", p.stdout)

        # kubeadm's check-expiration table, from the server and from the node's files: the
        # EXPIRES column is each file's notAfter as kubeadm prints it.
        def kubeadm_date(path):
            out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path],
                                 capture_output=True, text=True, check=True).stdout
            t = datetime.datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
            return t.strftime("%b %d, %Y %H:%M UTC")

        def table(text):
            rows = {}
            for line in text.splitlines():
                cols = re.split(r" {3,}", line.strip())
                if len(cols) >= 4 and cols[0] not in ("CERTIFICATE", "CERTIFICATE AUTHORITY"):
                    rows[cols[0]] = cols
            return rows

        cp_root = os.path.join(self.tmp, "cp-1", "kubernetes")
        p = s.cli("cluster", "certs", "check-expiration", "c1", "--node", "cp-1", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("CERTIFICATE   ", p.stdout)
        self.assertIn("RESIDUAL TIME", p.stdout)
        self.assertIn("EXTERNALLY MANAGED", p.stdout)
        srv = table(p.stdout)
        self.assertEqual(srv["apiserver"][1], kubeadm_date(os.path.join(cp_root, "pki", "apiserver.crt")))
        self.assertEqual(srv["apiserver"][3], "ca")
        self.assertRegex(srv["apiserver"][2], r"^36[45]d$")
        self.assertEqual(srv["apiserver-etcd-client"][3], "etcd-ca")
        self.assertEqual(srv["front-proxy-client"][3], "front-proxy-ca")
        self.assertIn("admin.conf", srv)
        self.assertEqual(srv["etcd-ca"][1], kubeadm_date(os.path.join(cp_root, "pki", "etcd", "ca.crt")))
        self.assertRegex(srv["ca"][2], r"^9y$")
        self.assertNotIn("Node w-1", p.stdout)
        p = s.cli("cluster", "certs", "check-expiration", "c1", token=s.root)
        self.assertIn("Node w-2:", p.stdout)
        self.assertRegex(p.stdout, r"kubelet\.conf +not issued")  # w-2 never booted
        p = s.cli("cluster", "certs", "check-expiration", "--local", cp_root, "--kubelet-dir",
                  os.path.join(self.tmp, "cp-1", "kubelet"))
        self.assertEqual(p.returncode, 0, p.stderr)
        loc = table(p.stdout)
        self.assertEqual(loc["apiserver"][1], kubeadm_date(os.path.join(cp_root, "pki", "apiserver.crt")))
        self.assertEqual(loc["kubelet"][1], kubeadm_date(
            os.path.join(self.tmp, "cp-1", "kubelet", "pki", "kubelet.crt")))
        self.assertIn("admin.conf", loc)
        self.assertEqual(loc["front-proxy-ca"][1],
                         kubeadm_date(os.path.join(cp_root, "pki", "front-proxy-ca.crt")))
        p = s.cli("cluster", "certs", "check-expiration", "--local", os.path.join(self.tmp, "nowhere"),
                  "--kubelet-dir", os.path.join(self.tmp, "nowhere"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no certificate found", p.stderr)
        # Keys stay on the node: a forced renewal keeps the key, a changed key size replaces it.
        w1 = os.path.join(self.tmp, "w-1", "kubelet", "pki")
        key_before = read(os.path.join(w1, "kubelet.key"))
        cfg_path = os.path.join(self.tmp, "w-1.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        marker = os.path.join(self.tmp, "hook-ran")
        cfg["certificates"][0]["exec"] = f"echo renewed >> {marker}"  # the reload hook
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        p = s.cli("agent", "once", "-config", cfg_path)  # nothing due: no renewal, no hook
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(marker))
        p = s.cli("agent", "once", "--force", "-config", cfg_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(read(os.path.join(w1, "kubelet.key")), key_before)
        self.assertIn("new_key=false", p.stderr)
        self.assertEqual(read(marker), "renewed")
        self.assertIn("agent: ran renewal hook certificate=kubelet", p.stderr)
        self.assertNotIn(key_before.splitlines()[1], p.stderr)  # the key is never logged

    def test_progress_for_many_nodes(self):
        """Plain progress lines on a non-terminal stderr, a bar redrawn in place on a terminal."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        nodes = []
        for i in range(70):
            nodes += ["--node", f"w-{i}:worker:10.1.{i // 250}.{i % 250 + 1}"]
        p = s.cli("cluster", "setup", "big", *nodes, token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"checking: \d+/\d+ \(10%\) ETA \d+s")
        self.assertRegex(p.stderr, r"applying: (\d+)/\1 \(100%\) in [\d.]+s")
        self.assertNotIn("\r", p.stderr)
        self.assertNotIn("applying", p.stdout)  # the plan and its changes stay on stdout
        # On a terminal (script(1) gives the command one): a bar with \r redraws.
        env = dict(os.environ, COFFER_ADDR=s.addr, COFFER_CACERT=s.ca, COFFER_TOKEN=s.root)
        cmd = " ".join([COFFER_BIN, "cluster", "setup", "big2", *nodes, ">/dev/null"])
        t = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=env,
                           timeout=120)
        out = t.stdout.decode(errors="replace")
        self.assertEqual(t.returncode, 0, out)
        self.assertIn("\rchecking [", out)
        self.assertRegex(out, r"\rapplying \[#{30}\] (\d+)/\1 100% in [\d.]+s")

        # cluster status of a large store: the token walk and the certificate pages show progress,
        # the certificates' total from tidy-status (Vault's cert_store_current_entry_count).
        st, _, _ = s.request("POST", "big/pki/kubernetes/roles/bulk", token=s.root,
                             body={"allow_any_name": True, "key_type": "ec", "key_bits": 256,
                                   "ttl": "2h", "no_store": False})
        self.assertIn(st, (200, 204))
        for i in range(210):
            st, body, _ = s.request("POST", "big/pki/kubernetes/issue/bulk", token=s.root,
                                    body={"common_name": f"bulk-{i}"})
            self.assertEqual(st, 200, body)
        for i in range(210):
            st, _, _ = s.request("POST", "auth/token/create", token=s.root, body={"ttl": "1h"})
            self.assertEqual(st, 200)
        st, body, _ = s.request("GET", "big/pki/kubernetes/tidy-status", token=s.root)
        self.assertEqual(st, 200)
        stored = body["data"]["cert_store_current_entry_count"]
        self.assertGreaterEqual(stored, 210)  # the bulk ones, and the CA's own
        self.assertEqual(body["data"]["revoked_cert_current_entry_count"], 0)
        p = s.cli("cluster", "status", "big", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"tokens: \d+/\d+ \(10%\) ETA \d+s")
        self.assertRegex(p.stderr, r"tokens: (\d+)/\1 \(100%\) in [\d.]+s")
        total = re.search(r"certificates: (\d+)/\1 \(100%\) in [\d.]+s", p.stderr)
        self.assertIsNotNone(total, p.stderr)
        self.assertGreaterEqual(int(total.group(1)), stored)  # the other mounts' too
        self.assertIn("bulk-0", p.stdout)  # the soonest ones, on stdout as before
        self.assertNotIn("certificates:", p.stdout)
        cmd = " ".join([COFFER_BIN, "cluster", "status", "big", ">/dev/null"])
        t = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=env,
                           timeout=120)
        out = t.stdout.decode(errors="replace")
        self.assertEqual(t.returncode, 0, out)
        self.assertRegex(out, r"\rtokens \[#{30}\] (\d+)/\1 100% in [\d.]+s")
        self.assertRegex(out, r"\rcertificates \[#{30}\] (\d+)/\1 100% in [\d.]+s")

    def test_node_registry(self):
        """Each agent reports its node; `cluster nodes` shows when the server last heard from it,
        its certificates' expiry and its CA files' fingerprints; a node may write only its own
        entry."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        _, tokdir = self.setup_cluster(s)
        root, cfg, state = self.boot_node(s, "w-1", tokdir)
        p = s.cli("cluster", "nodes", "c1", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        if os.environ.get("SHOW"):
            print(p.stdout)
        lines = {l.split()[0]: l for l in p.stdout.splitlines() if l and not l.startswith(" ")}
        self.assertIn("LAST SEEN", lines["NODE"])
        self.assertRegex(lines["w-1"], r"w-1\s+worker\s+\d{4}-\d\d-\d\dT[\d:]+Z \(\d+s ago\)\s+0\.1\.0\s+"
                                       r"(kubelet|kube-proxy|kubelet-serving) in \d+d")
        self.assertRegex(lines["w-2"], r"w-2\s+worker\s+never seen")
        self.assertIn("cp-1", lines)
        # The CA file's fingerprint is that of the CA the node wrote (openssl's own digest).
        ca_file = os.path.join(root, "pki", "ca.crt")
        fp = subprocess.run(["openssl", "x509", "-in", ca_file, "-noout", "-fingerprint", "-sha256"],
                            capture_output=True, text=True, check=True).stdout
        fp = fp.strip().split("=")[1].replace(":", "").lower()
        self.assertIn(f"CA file {ca_file}: sha256:{fp}", p.stdout)
        self.assertRegex(p.stdout, r"certificate kubelet: serial [0-9a-f:]+, expires \d{4}-.*\(in \d+d")
        # The node's token may write its own entry, not another node's, and read no other.
        token = read(os.path.join(state, "token"))
        st, body, _ = s.request("POST", "c1/nodes/data/w-2", token=token, body={"data": {"x": 1}})
        self.assertEqual(st, 403, body)
        st, body, _ = s.request("GET", "c1/nodes/data/cp-1", token=token)
        self.assertEqual(st, 403, body)
        for method, path in (("DELETE", "c1/nodes/metadata/w-1"), ("POST", "c1/nodes/metadata/w-1"),
                             ("POST", "c1/nodes/delete/w-1"), ("POST", "c1/nodes/destroy/w-1"),
                             ("LIST", "c1/nodes/metadata"), ("DELETE", "c1/nodes/data/w-2")):
            st, body, _ = s.request(method, path, token=token, body={"versions": [1]})
            self.assertEqual(st, 403, (method, path, body))
        # What a (compromised) node writes cannot drive the operator's terminal.
        st, body, _ = s.request("POST", "c1/nodes/data/w-1", token=token, body={"data": {
            "node": "w-1", "agent_version": "\x1b]52;c;aGk=\x07" + "x" * 5000,
            "certificates": {"kubelet\r\nw-9": {"serial": "01", "not_after": 1}}}})
        self.assertEqual(st, 200, body)
        p = s.cli("cluster", "nodes", "c1", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("\x1b", p.stdout)
        self.assertNotIn("\r", p.stdout)
        self.assertNotIn("x" * 100, p.stdout)
        self.assertIn("kubelet??w-9", p.stdout)
        # Setup stays idempotent with the registry mount in place.
        p = s.cli("cluster", "setup", "c1", token=s.root)
        self.assertEqual(p.stdout.strip(), "cluster c1: no changes", p.stderr)

    def test_what_each_token_may_not_do(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        _, tokdir = self.setup_cluster(s)
        w2_init = read(os.path.join(tokdir, "w-2.token"))
        _, _, state = self.boot_node(s, "w-1", tokdir)
        w1 = read(os.path.join(state, "token"))
        _, _, cp_state = self.boot_node(s, "cp-1", tokdir)
        cp = read(os.path.join(cp_state, "token"))
        dest = os.path.join(self.tmp, "x")

        def cert(token, role, cn, *flags):
            return s.cli("agent", "cert", role, cn, dest, *flags, token=token)
        # A worker cannot get an API server certificate, nor the admin one.
        p = cert(w1, "c1/pki/kubernetes/sign/apiserver-cp-1", "kube-apiserver", "--san", "kubernetes")
        self.assertEqual(p.returncode, 2)
        self.assertIn("HTTP 403", p.stderr)
        p = cert(w1, "c1/pki/kubernetes/sign/admin", "kubernetes-admin")
        self.assertIn("HTTP 403", p.stderr)
        # Kubelet on w-1 cannot get w-2's name: not through w-2's role, not through its own.
        p = cert(w1, "c1/pki/kubernetes/sign/kubelet-w-2", "system:node:w-2", "--san", "w-2")
        self.assertIn("HTTP 403", p.stderr)
        p = cert(w1, "c1/pki/kubernetes/sign/kubelet-w-1", "system:node:w-2", "--san", "w-1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("HTTP 400", p.stderr)
        self.assertIn("system:node:w-2", p.stderr)
        p = cert(w1, "c1/pki/kubernetes/sign/kubelet-w-1", "system:node:w-1", "--san", "w-2")
        self.assertIn("HTTP 400", p.stderr)
        p = cert(w1, "c1/pki/kubernetes/sign/kubelet-w-1", "system:node:w-1", "--ip-san", "10.0.0.4")
        self.assertIn("HTTP 400", p.stderr)
        # ... while its own name works.
        p = cert(w1, "c1/pki/kubernetes/sign/kubelet-w-1", "system:node:w-1", "--san", "w-1",
                 "--ip-san", "10.0.0.3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(cert_fields(dest + ".pem")["o"], ["system:nodes"])
        self.assertEqual(stat.S_IMODE(os.stat(dest + "-key.pem").st_mode), 0o600)
        # A worker cannot read the control plane's secrets; the control plane can.
        p = s.cli("agent", "read", "c1/secrets/service-accounts", "--field", "key", "--dest",
                  dest + ".sa", token=w1)
        self.assertIn("HTTP 403", p.stderr)
        self.assertFalse(os.path.exists(dest + ".sa"))
        p = s.cli("agent", "read", "c1/secrets/service-accounts", "--field", "key", "--dest",
                  dest + ".sa", token=cp)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(dest + ".sa").st_mode), 0o600)
        # A weak key is refused by the role.
        p = cert(cp, "c1/pki/kubernetes/sign/admin", "kubernetes-admin", "--key-type", "rsa",
                 "--key-bits", "2048")
        self.assertIn("HTTP 400", p.stderr)
        # An init token only makes its own node's token, and only once.
        status, body, _ = s.request("POST", "c1/pki/kubernetes/sign/kubelet-w-2", token=w2_init,
                                    body={"csr": "x"})
        self.assertEqual(status, 403)
        status, body, _ = s.request("POST", "auth/token/create/c1-node-w-1", token=w2_init, body={})
        self.assertEqual(status, 403)
        # Refused requests do not use it up; its one use is its own node's token.
        status, body, _ = s.request("POST", "auth/token/create/c1-node-w-2", token=w2_init, body={})
        self.assertEqual(status, 200, body)
        status, body, _ = s.request("POST", "auth/token/create/c1-node-w-2", token=w2_init, body={})
        self.assertEqual(status, 403, body)

    def test_init_token_works_once(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        _, tokdir = self.setup_cluster(s)
        init = read(os.path.join(tokdir, "w-2.token"))
        status, body, _ = s.request("POST", "auth/token/create/c1-node-w-2", token=init, body={})
        self.assertEqual(status, 200, body)
        node_token = body["auth"]["client_token"]
        self.assertEqual(sorted(body["auth"]["policies"]), ["c1-node-w-2", "c1-worker", "default"])
        status, body, _ = s.request("POST", "auth/token/create/c1-node-w-2", token=init, body={})
        self.assertEqual(status, 403)
        # The node token outlives the used-up init token (an orphan) and renews.
        status, body, _ = s.request("POST", "auth/token/renew-self", token=node_token, body={})
        self.assertEqual(status, 200, body)
        # An agent given the used init token says what to do.
        state = os.path.join(self.tmp, "w2state")
        os.makedirs(state)
        with open(os.path.join(state, "init-token"), "w") as f:
            f.write(init + "\n")
        cfg = os.path.join(self.tmp, "w-2.json")
        s.cli("cluster", "agent-config", "c1", "w-2", "--root", os.path.join(self.tmp, "w2"),
              "--kubelet-dir", os.path.join(self.tmp, "w2kubelet"), "--state-dir", state, "--out", cfg, token=s.root, check=True)
        p = s.cli("agent", "once", "-config", cfg)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("was refused (used, expired or revoked)", p.stderr)
        self.assertIn("coffer cluster init-token", p.stderr)
        # A fresh one from the operator works; setup does not make another for a booted node.
        p = s.cli("cluster", "init-token", "c1", "w-2", "--out", os.path.join(state, "init-token"),
                  token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = s.cli("agent", "once", "-config", cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        os.remove(os.path.join(tokdir, "w-2.token"))
        p, _ = self.setup_cluster(s)
        self.assertNotIn("init token for node w-2", p.stdout)

    def test_init_token_kept_when_the_token_cannot_be_saved(self):
        """The init token works once: an agent that could not save the node token it gets for it
        must not spend it. A token path where nothing can be written fails before."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        _, tokdir = self.setup_cluster(s)
        state = os.path.join(self.tmp, "w1state")
        os.makedirs(state)
        init = read(os.path.join(tokdir, "w-1.token"))
        with open(os.path.join(state, "init-token"), "w") as f:
            f.write(init + "\n")
        cfg = os.path.join(self.tmp, "w-1.json")
        s.cli("cluster", "agent-config", "c1", "w-1", "--root", os.path.join(self.tmp, "w1"),
              "--kubelet-dir", os.path.join(self.tmp, "w1kubelet"), "--state-dir", state,
              "--out", cfg, token=s.root, check=True)
        with open(cfg) as f:
            config = json.load(f)
        # No token there to read, and no folder can be made there (even by root).
        config["token_path"] = "/proc/coffer-no-such-folder/token"
        with open(cfg, "w") as f:
            json.dump(config, f)
        p = s.cli("agent", "once", "-config", cfg)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("the init token was not used", p.stderr)
        self.assertTrue(os.path.exists(os.path.join(state, "init-token")))
        # Still good: once the path is fixed the same init token boots the node.
        config["token_path"] = os.path.join(state, "token")
        with open(cfg, "w") as f:
            json.dump(config, f)
        p = s.cli("agent", "once", "-config", cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "init-token")), "init token not wiped")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(state, "token")).st_mode), 0o600)

    def test_renewals_of_one_node_take_turns(self):
        """Two agents of one node (a daemon and `agent renew` by hand) renew one at a time: a
        renewal waits while another holds <token_path>.lock, then writes a matching pair."""
        import fcntl
        s = self.server().start()
        s.init_and_unseal(1, 1)
        _, tokdir = self.setup_cluster(s)
        root, cfg, state = self.boot_node(s, "w-1", tokdir)
        crt = os.path.join(self.tmp, "w-1", "kubelet", "pki", "kubelet.crt")
        key = os.path.join(self.tmp, "w-1", "kubelet", "pki", "kubelet.key")
        before = read(crt)
        with open(os.path.join(state, "token.lock"), "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            env = dict(os.environ, COFFER_ADDR=s.addr, COFFER_CACERT=s.ca or "")
            p = subprocess.Popen([COFFER_BIN, "agent", "renew", "all", "--rotate-key", "-config", cfg],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            time.sleep(2)
            self.assertIsNone(p.poll(), "the renewal did not wait for the lock")
            self.assertEqual(read(crt), before)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertNotEqual(read(crt), before)
        pub = [subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
               for cmd in (["openssl", "x509", "-in", crt, "-noout", "-pubkey"],
                           ["openssl", "pkey", "-in", key, "-pubout"])]
        self.assertEqual(pub[0], pub[1], "the certificate is not for the key on disk")

    def test_intermediate_of_and_external_root(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        t = s.root
        s.cli("secrets", "enable", "-path=org-root", "pki", token=t, check=True)
        s.cli("secrets", "tune", "-max-lease-ttl=175200h", "org-root", token=t)
        s.cli("write", "org-root/root/generate/internal", "common_name=Org Root", "key_type=ec",
              "ttl=175200h", token=t, check=True)
        p = s.cli("cluster", "setup", "c2", "--intermediate-of", "org-root", "--node",
                  "etcd-1:etcd:127.0.0.1", token=t)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = s.cli("cluster", "status", "c2", token=t)
        self.assertIn("c2/pki/etcd: CN=etcd-ca (intermediate)", p.stdout)
        p = s.cli("cluster", "setup", "c2", "--intermediate-of", "org-root", token=t)
        self.assertEqual(p.stdout.strip(), "cluster c2: no changes")
        # A leaf verifies up to the organisation's root.
        dest = os.path.join(self.tmp, "hc")
        p = s.cli("agent", "cert", "c2/pki/etcd/sign/etcd-healthcheck-client",
                  "kube-etcd-healthcheck-client", dest, token=t)
        self.assertEqual(p.returncode, 0, p.stderr)
        status, body, _ = s.request("GET", "org-root/cert/ca")
        root = os.path.join(self.tmp, "root.pem")
        with open(root, "w") as f:
            f.write(body["data"]["certificate"])
        v = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", root,
                            "-untrusted", dest + "-ca.pem", dest + ".pem"], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

        # External root: CSRs out, certificates signed by openssl in, imported.
        csr_dir = os.path.join(self.tmp, "csr")
        p = s.cli("cluster", "setup", "c3", "--csr", "--csr-dir", csr_dir, "--node", "w-1:worker", token=t)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ext_key, ext_ca = os.path.join(self.tmp, "ext.key"), os.path.join(self.tmp, "ext.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", ext_key, "-out", ext_ca, "-days", "3650", "-subj", "/CN=External Root",
                        "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)
        extfile = os.path.join(self.tmp, "ca.ext")
        with open(extfile, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        for ca in ("etcd", "kubernetes", "front-proxy"):
            out = os.path.join(self.tmp, ca + ".pem")
            subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(csr_dir, ca + ".csr"), "-CA", ext_ca,
                            "-CAkey", ext_key, "-CAcreateserial", "-days", "3000", "-extfile", extfile,
                            "-out", out], check=True, capture_output=True)
            p = s.cli("cluster", "import-ca", "c3", ca, out, token=t)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = s.cli("cluster", "status", "c3", token=t)
        self.assertIn("c3/pki/kubernetes: CN=kubernetes (intermediate)", p.stdout)
        p = s.cli("agent", "cert", "c3/pki/kubernetes/sign/kube-proxy", "system:kube-proxy", dest, token=t)
        self.assertEqual(p.returncode, 0, p.stderr)
        v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", ext_ca, "-untrusted",
                            dest + "-ca.pem", dest + ".pem"], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


if __name__ == "__main__":
    unittest.main()
