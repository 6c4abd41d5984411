"""HA on etcd with only real processes: a three-member etcd cluster with client and peer
certificate authentication on 127.0.0.1, three Coffer servers on one path with ha_enabled. One is
active; the others are unsealed standbys that answer sys/health with 429 and forward every other
request to the active server (or answer 307 with disable_forwarding). A client issues
certificates with storage continuously through every server; the active server is SIGKILLed and
a standby takes over within the lock's TTL with every acknowledged certificate readable; an etcd
member is stopped and service goes on; the killed server rejoins as a standby. A frozen active
server (SIGSTOP past its lease) is fenced: nothing it writes after the takeover reaches etcd, and
it steps down when resumed."""
import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import ServerTest, free_port, make_test_ca
import test_etcd_storage as base


def leader(s):
    try:
        st, body, _ = s.request("GET", "sys/leader")
        return body if st == 200 else None
    except OSError:
        return None


def health(s):
    try:
        return s.request("GET", "sys/health")[0]
    except OSError:
        return None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def raw_status(s, method, path, token, body=None):
    """The status and Location of one request, redirects not followed."""
    req = urllib.request.Request(s.addr + "/v1/" + path, method=method, headers={"X-Vault-Token": token},
                                 data=None if body is None else json.dumps(body).encode())
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=s.ssl_context()))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, None
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")


@unittest.skipUnless(base.ETCD and base.ETCDCTL, "etcd-server and etcd-client are installed by scripts/install-deps.sh")
class EtcdHa(ServerTest):
    def start_etcd(self, n=3):
        """n etcd members, TLS with client and peer certificate authentication."""
        d = os.path.join(self.tmp, "etcd-pki")
        os.makedirs(d, exist_ok=True)
        self.etcd_ca, _, _ = make_test_ca(d, "unused")
        # Members dial each other (and etcd's gateway dials etcd) with these: clientAuth too.
        crt, key = base.leaf_cert(d, "etcd-member", "serverAuth,clientAuth", "IP:127.0.0.1")
        self.client_crt, self.client_key = base.leaf_cert(d, "coffer-client", "clientAuth", "DNS:coffer")
        client = {i: free_port() for i in range(n)}
        peer = {i: free_port() for i in range(n)}
        self.etcd_urls = [f"https://127.0.0.1:{client[i]}" for i in range(n)]
        cluster = ",".join(f"m{i}=https://127.0.0.1:{peer[i]}" for i in range(n))
        self.etcd = {}
        for i in range(n):
            with open(os.path.join(self.tmp, f"etcd-{i}.log"), "ab") as log:
                self.etcd[i] = subprocess.Popen([
                    base.ETCD, "--name", f"m{i}", "--data-dir", os.path.join(self.tmp, f"etcd-{i}"),
                    "--listen-client-urls", self.etcd_urls[i], "--advertise-client-urls", self.etcd_urls[i],
                    "--listen-peer-urls", f"https://127.0.0.1:{peer[i]}",
                    "--initial-advertise-peer-urls", f"https://127.0.0.1:{peer[i]}",
                    "--initial-cluster", cluster, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "coffer-ha-e2e",
                    "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
                    "--client-cert-auth", "--trusted-ca-file", self.etcd_ca, "--cert-file", crt, "--key-file", key,
                    "--peer-client-cert-auth", "--peer-trusted-ca-file", self.etcd_ca,
                    "--peer-cert-file", crt, "--peer-key-file", key], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_etcd)
        self.wait("etcd to be healthy", lambda: self.etcdctl("endpoint", "health").returncode == 0, timeout=60)

    def stop_etcd(self):
        for p in self.etcd.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def etcdctl(self, *args, endpoints=None):
        return subprocess.run([base.ETCDCTL, "--endpoints", ",".join(endpoints or self.etcd_urls),
                               "--cacert", self.etcd_ca, "--cert", self.client_crt, "--key", self.client_key,
                               "--command-timeout", "5s", *args], capture_output=True, text=True, timeout=30)

    def etcd_leader(self):
        """The index of etcd's leader member."""
        p = self.etcdctl("endpoint", "status", "--write-out=json")
        self.assertEqual(p.returncode, 0, p.stderr)
        for i, st in enumerate(json.loads(p.stdout)):
            if st["Status"]["header"]["member_id"] == st["Status"]["leader"]:
                return self.etcd_urls.index(st["Endpoint"])
        self.fail("etcd has no leader: " + p.stdout)

    def storage_block(self):
        return (f'storage "etcd" {{\n  address = "{",".join(self.etcd_urls)}"\n  etcd_api = "v3"\n'
                f'  path = "/coffer-ha/"\n  ha_enabled = "true"\n'
                f'  tls_ca_file = "{self.etcd_ca}"\n  tls_cert_file = "{self.client_crt}"\n'
                f'  tls_key_file = "{self.client_key}"\n  request_timeout = "2s"\n'
                f'  lock_timeout = "5s"\n}}\n')

    def wait(self, what, fn, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        self.fail(f"timed out waiting for {what}")

    def active_of(self, servers):
        for s in servers:
            if s.proc.poll() is None:
                b = leader(s)
                if b and b.get("is_self") and health(s) == 200:
                    return s
        return None

    def start_servers(self, configs):
        """One Coffer server per entry of configs (extra config text), on the etcd cluster;
        initialized on the lock holder and unsealed everywhere. Returns (servers, active)."""
        servers = []
        for extra in configs:
            s = self.server(storage=self.storage_block())
            with open(s.config, "a") as f:
                f.write(f'api_addr = "{s.addr}"\n{extra}')
            servers.append(s.start())
            if len(servers) == 1:  # the first one started holds the lock: the roles are known
                self.wait("the first server to take the lock", lambda: (leader(s) or {}).get("is_self"))
        first = servers[0]
        st, init, _ = first.request("PUT", "sys/init", body={"secret_shares": 3, "secret_threshold": 2})
        self.assertEqual(st, 200, init)
        self.keys, self.root = init["keys"], init["root_token"]
        for s in servers:
            s.keys, s.root = self.keys, self.root
            s.unseal(2)
            if s is first:  # active before the others can compete for the lock
                self.wait("the first server to be active", lambda: self.active_of([first]))
        return servers, self.wait("an active server", lambda: self.active_of(servers))

    def test_failover_through_any_node_loses_nothing(self):
        self.start_etcd()
        # The third server answers 307 instead of forwarding.
        servers, active = self.start_servers(["", "", "disable_forwarding = true\n"])
        self.assertIs(active, servers[0])
        root = self.root
        standbys = [s for s in servers if s is not active]
        for s in standbys:
            self.wait("standby health 429", lambda: health(s) == 429)
            b = leader(s)
            self.assertEqual((b["ha_enabled"], b["is_self"], b["leader_address"]), (True, False, active.addr))
        p = standbys[0].cli("status")
        self.assertRegex(p.stdout, r"HA Mode\s+standby\n")
        self.assertRegex(p.stdout, rf"Active Node Address\s+{active.addr}\n")
        self.assertRegex(active.cli("status").stdout, r"HA Mode\s+active\nActive Node Address")
        # sys/seal on a standby is refused there (it would seal the active server).
        st, b, _ = standbys[0].request("PUT", "sys/seal", token=root)
        self.assertEqual(st, 400, b)
        self.assertIn("HA standby", b["errors"][0])
        self.assertEqual(health(standbys[0]), 429)

        # Set up through standbys: a forwarding one answers itself (the active server did the
        # work), a disable_forwarding one sends the client on with 307, method and path kept.
        redirecting = servers[2]
        fwd = next(s for s in standbys if s is not redirecting)
        self.assertEqual(fwd.request("POST", "sys/mounts/pki", token=root, body={"type": "pki"})[0], 204)
        st, b, _ = fwd.request("POST", "pki/root/generate/internal", token=root,
                               body={"common_name": "ha root", "key_type": "ec"})
        self.assertEqual(st, 200, b)
        st, b, _ = fwd.request("POST", "pki/roles/web", token=root,
                               body={"allow_any_name": True, "key_type": "ec", "ttl": "1h"})
        self.assertIn(st, (200, 204), b)
        st, b, _ = active.request("GET", "sys/mounts/pki/tune", token=root)
        self.assertEqual(st, 200, b)
        if True:  # servers[2] (disable_forwarding) is a standby
            self.assertEqual(raw_status(redirecting, "GET", "sys/mounts?x=1", root),
                             (307, active.addr + "/v1/sys/mounts?x=1"))
            # Coffer's CLI follows it, with the token, to a server its CA file vouches for.
            bundle = os.path.join(self.tmp, "cas.pem")
            with open(bundle, "w") as f:
                for s in servers:
                    with open(s.ca) as c:
                        f.write(c.read())
            p = redirecting.cli("write", "sys/mounts/kv2", "type=kv", token=root,
                                env_extra={"COFFER_CACERT": bundle})
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(active.request("GET", "sys/mounts/kv2/tune", token=root)[0], 200)
        # A request forwarded with a bad token is refused by the active server as it would be.
        st, b, _ = fwd.request("GET", "sys/mounts", token="hvs.not-a-token")
        self.assertEqual(st, 403, b)

        # A client issuing certificates with storage, continuously, through every server in turn
        # (each address a client could have been given), following a 307 as Vault's clients do.
        acked, failures, stop = [], [], threading.Event()

        def issue_loop():
            i = 0
            while not stop.is_set():
                s = servers[i % len(servers)]
                i += 1
                if s.proc.poll() is not None:
                    continue
                try:
                    st, b, _ = s.request("POST", "pki/issue/web", token=root,
                                         body={"common_name": f"c{i}.example"})
                    if st == 307 and redirecting is not s:
                        failures.append((time.time(), s.addr, "307 from a forwarding standby"))
                    if st == 307 or (st != 200 and redirecting is s):
                        st, b, _ = self.current.request("POST", "pki/issue/web", token=root,
                                                        body={"common_name": f"c{i}.example"})
                    if st == 200:
                        acked.append(b["data"]["serial_number"])
                    else:
                        failures.append((time.time(), s.addr, st, (b or {}).get("errors")))
                except OSError as e:
                    failures.append((time.time(), s.addr, str(e)))
                time.sleep(0.02)

        self.current = active
        t = threading.Thread(target=issue_loop, daemon=True)
        t.start()
        try:
            self.wait("certificates issued through every server", lambda: len(acked) >= 30)
            active.kill9()
            t0 = time.time()
            new = self.wait("a standby to take over", lambda: self.active_of(standbys), timeout=30)
            took = time.time() - t0
            self.current = new
            print(f"\nfailover after SIGKILL: {took:.1f}s (lock_timeout 5s)")
            self.assertLess(took, 10)
            n = len(acked)
            self.wait("issuance to resume", lambda: len(acked) >= n + 20)
            # One etcd member stops: the other two keep a quorum and Coffer moves on.
            self.assertEqual([x for x in failures if x[0] > t0 + 10], [],
                             "requests failed after the failover was over")
            # etcd's leader stops (the hardest member to lose): the others elect a new one.
            member = self.etcd_leader()
            t_etcd = time.time()
            self.etcd[member].send_signal(signal.SIGTERM)
            self.etcd[member].wait(timeout=15)
            n = len(acked)
            self.wait("issuance with an etcd member down", lambda: len(acked) >= n + 60, timeout=60)
        finally:
            stop.set()
            t.join(30)
        # A write in flight when etcd's leader changes may or may not have been applied: etcd
        # cannot say, and Coffer answers 503 saying so. Nothing else fails, and nothing after the
        # election.
        during = [x for x in failures if x[0] > t_etcd]
        print(f"failed requests when etcd's leader stopped: {len(during)} {during[:2]}")
        self.assertEqual([x for x in during if x[0] > t_etcd + 3], [], "failures after the election")
        for x in during:
            self.assertEqual(x[2], 503, x)
            self.assertIn("may or may not have been applied", str(x[3]), x)
        # Every certificate whose issuance was acknowledged is there, through any live server.
        other = next(s for s in standbys if s is not new)
        self.wait("the other standby to follow the new active server",
                  lambda: (leader(other) or {}).get("leader_address") == new.addr)
        for serial in acked:
            st, b, _ = new.request("GET", f"pki/cert/{serial}")
            self.assertEqual(st, 200, serial)
        if other is fwd:
            st, b, _ = other.request("GET", f"pki/cert/{acked[0]}")
            self.assertEqual((st, b["data"]["certificate"][:27]), (200, "-----BEGIN CERTIFICATE-----"))
        st, b, _ = new.request("LIST", "pki/certs", token=root)
        self.assertTrue({x.replace(":", "-") for x in acked} <= set(b["data"]["keys"]))
        print(f"{len(acked)} certificates acknowledged, all readable; {len(failures)} requests failed "
              f"during the failover")

        # The killed server comes back sealed; unsealed, it joins as a standby.
        active.start()
        self.assertFalse(leader(active)["is_self"])
        self.assertEqual(health(active), 503)
        active.unseal(2)
        self.wait("the restarted server to be a standby", lambda: health(active) == 429)
        self.assertEqual(leader(active)["leader_address"], new.addr)

    def test_deploy_example_runs(self):
        """deploy/ha's three node configurations, with only their addresses and file paths
        replaced: three servers, one active, the others forwarding to it."""
        self.start_etcd(1)
        root_dir = os.environ.get("COFFER_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        servers = []
        for i in (1, 2, 3):
            with open(os.path.join(root_dir, "deploy", "ha", f"node-{i}.hcl")) as f:
                text = f.read()
            s = self.server()
            for old, new in (("https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379",
                              ",".join(self.etcd_urls)),
                             ("/etc/coffer/etcd/ca.crt", self.etcd_ca),
                             ("/etc/coffer/etcd/client.crt", self.client_crt),
                             ("/etc/coffer/etcd/client.key", self.client_key),
                             ("0.0.0.0:8200", f"127.0.0.1:{s.port}"),
                             ("/etc/coffer/tls/server.pem", s.cert), ("/etc/coffer/tls/server.key", s.key),
                             (f"https://10.0.0.{i}:8200", s.addr)):
                self.assertIn(old, text)
                text = text.replace(old, new)
            with open(s.config, "w") as f:
                f.write(text)
            servers.append(s.start())
        first = self.wait("a server to take the lock",
                          lambda: next((s for s in servers if (leader(s) or {}).get("is_self")), None))
        init = first.init_and_unseal(3, 2)
        for s in servers:
            if s is not first:
                s.keys, s.root = init["keys"], init["root_token"]
                s.unseal(2)
        active = self.wait("an active server", lambda: self.active_of(servers))
        for s in servers:
            if s is not active:
                self.wait("a standby", lambda: health(s) == 429)
                st, b, _ = s.request("POST", "sys/mounts/kv-" + s.addr[-5:], token=first.root,
                                     body={"type": "kv"})
                self.assertEqual(st, 204, b)
        st, b, _ = active.request("GET", "sys/mounts", token=first.root)
        self.assertEqual(len([m for m in b["data"] if m.startswith("kv-")]), 2, b["data"].keys())

    def test_policy_and_keyring_changes_hold_through_standbys(self):
        """What the active server changes holds at once for requests made on a standby: a policy
        narrowed, a token revoked, the keyring rotated. A sealed standby forwards nothing."""
        self.start_etcd(1)
        servers, active = self.start_servers(["", "", "disable_performance_standby = true\n"])
        standby = servers[1] if servers[1] is not active else servers[0]
        plain = servers[2]  # a standby that forwards everything (Vault's open-source standby)
        root = self.root
        self.assertEqual(standby.request("POST", "sys/mounts/kv", token=root,
                                         body={"type": "kv", "options": {"version": "1"}})[0], 204)
        self.assertEqual(standby.request("POST", "kv/app", token=root, body={"v": "1"})[0], 204)
        # A body over 64 KiB is not read by a standby (it cannot check the token): 307 to the
        # active server, which can.
        big = "x" * 200_000
        req = urllib.request.Request(standby.addr + "/v1/kv/big", method="POST",
                                     data=('{"v": "%s"}' % big).encode(), headers={"X-Vault-Token": root})
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(
            context=standby.ssl_context()))
        with self.assertRaises(urllib.error.HTTPError) as e:
            opener.open(req, timeout=10)
        self.assertEqual((e.exception.code, e.exception.headers.get("Location")),
                         (307, active.addr + "/v1/kv/big"))
        self.assertEqual(active.request("POST", "kv/big", token=root, body={"v": big})[0], 204)
        st, _, _ = standby.request("PUT", "sys/policies/acl/reader", token=root,
                                   body={"policy": 'path "kv/*" { capabilities = ["read"] }'})
        self.assertEqual(st, 204)
        st, b, _ = standby.request("POST", "auth/token/create", token=root, body={"policies": ["reader"]})
        tok = b["auth"]["client_token"]
        self.assertEqual(standby.request("GET", "kv/app", token=tok)[0], 200)
        if plain is not active:
            # Its reads run on the active server: counted there.
            def kv_requests():
                b = active.request("GET", "sys/metrics", token=root)[1]
                return sum(c["Count"] for c in b["Counters"]
                           if c["Name"] == "coffer.requests" and c["Labels"].get("mount") == "kv/")
            before = kv_requests()
            self.assertEqual(plain.request("GET", "kv/app", token=tok)[0], 200)
            self.assertEqual(kv_requests(), before + 1)
        self.wait_serving(standby)
        local0 = self.standby_counts(standby)[0]
        st, _, _ = active.request("PUT", "sys/policies/acl/reader", token=root,
                                  body={"policy": 'path "other/*" { capabilities = ["read"] }'})
        self.assertEqual(st, 204)
        t0 = time.time()
        self.wait("the narrowed policy on the standby",
                  lambda: standby.request("GET", "kv/app", token=tok)[0] == 403, timeout=1)
        self.assertLess(time.time() - t0, 1)
        self.assertEqual(active.request("POST", "auth/token/revoke", token=root, body={"token": tok})[0], 204)
        t0 = time.time()
        self.wait("the revoked token refused on the standby",
                  lambda: standby.request("GET", "kv/app", token=tok)[0] == 403, timeout=1)
        self.assertLess(time.time() - t0, 1)
        # Those reads ran on the standby itself (its cache dropped by the watch).
        self.assertGreater(self.standby_counts(standby)[0], local0 + 2)
        # Keyring rotation on the active server: values written after it read back on a standby.
        st, b, _ = active.request("PUT", "sys/rotate", token=root)
        self.assertIn(st, (200, 204), b)
        self.assertEqual(standby.request("POST", "kv/after", token=root, body={"v": "2"})[0], 204)
        st, b, _ = standby.request("GET", "kv/after", token=root)
        self.assertEqual((st, b["data"]), (200, {"v": "2"}))
        st, b, _ = standby.request("GET", "sys/key-status", token=root)
        self.assertEqual((st, b["term"]), (200, 2))
        # A restarted standby is sealed: it cannot open forwarded answers, so it sends clients on.
        standby.stop()
        standby.start()
        self.assertEqual(health(standby), 503)
        self.assertEqual(raw_status(standby, "GET", "kv/app", root), (307, active.addr + "/v1/kv/app"))

    def standby_counts(self, s):
        """What a standby did with the requests it took: (served here, sent to the active)."""
        st, b, _ = s.request("GET", "sys/metrics", token=self.root)
        self.assertEqual(st, 200, b)
        got = {g["Labels"]["outcome"]: g["Value"] for g in b["Gauges"]
               if g["Name"] == "coffer.ha.standby_requests"}
        return got.get("local", 0), got.get("forwarded", 0)

    def wait_serving(self, s):
        """Until the standby serves a read itself (it loads its state after being unsealed)."""
        def serving():
            before = self.standby_counts(s)[0]
            st, _, _ = s.request("GET", "auth/token/lookup-self", token=self.root)
            # The metrics read and the lookup both ran here.
            return st == 200 and self.standby_counts(s)[0] >= before + 2
        self.wait("the standby to serve", serving)

    def test_standbys_serve_what_needs_no_write(self):
        """Signing and issuing on a no_store role, KV reads (v1 and v2), Transit encrypt and
        decrypt and token lookups run on the standby itself: its own counters say so, the active
        server's request counts do not move, and they keep working while the active server is
        frozen. What writes (a stored certificate, a KV write) goes to the active server. A
        change made on the active server (a role narrowed, a mount added, a token revoked) is
        honoured by the standbys within a second."""
        self.start_etcd(1)
        servers, active = self.start_servers(["", "", "disable_forwarding = true\n"])
        standbys = [s for s in servers if s is not active]
        root = self.root

        def ok(st_b, want=(200, 204)):
            st, b, _ = st_b
            self.assertIn(st, want, b)
            return b
        for path, body in [("sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
                           ("sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}}),
                           ("sys/mounts/kv2", {"type": "kv", "options": {"version": "2"}}),
                           ("sys/mounts/transit", {"type": "transit"})]:
            ok(active.request("POST", path, token=root, body=body))
        ca_pem = ok(active.request("POST", "pki/root/generate/internal", token=root,
                                   body={"common_name": "HA Test CA", "ttl": "8760h",
                                         "key_type": "ec", "key_bits": 256}))["data"]["certificate"]
        ca_file = os.path.join(self.tmp, "ha-ca.pem")
        with open(ca_file, "w") as f:
            f.write(ca_pem)
        ok(active.request("POST", "pki/roles/edge", token=root, body={
            "allowed_domains": "edge.test", "allow_subdomains": True, "no_store": True,
            "key_type": "ec", "key_bits": 256, "max_ttl": "72h"}))
        ok(active.request("POST", "pki/roles/kept", token=root, body={
            "allowed_domains": "kept.test", "allow_subdomains": True, "key_type": "ec", "key_bits": 256}))
        ok(active.request("POST", "kv1/app", token=root, body={"v": "one"}))
        ok(active.request("POST", "kv2/data/app", token=root, body={"data": {"v": "two"}}))
        ok(active.request("POST", "transit/keys/app", token=root))
        ok(active.request("PUT", "sys/policies/acl/edge", token=root, body={"policy": (
            'path "pki/sign/edge" { capabilities = ["update"] }\n'
            'path "pki/issue/*" { capabilities = ["update"] }\n'
            'path "kv1/*" { capabilities = ["read", "create", "update"] }\n'
            'path "kv2/data/*" { capabilities = ["read"] }\n'
            'path "transit/encrypt/app" { capabilities = ["update"] }\n'
            'path "transit/decrypt/app" { capabilities = ["update"] }\n')}))
        tok = ok(active.request("POST", "auth/token/create", token=root,
                                body={"policies": ["edge"]}))["auth"]["client_token"]
        key_pem = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                                 capture_output=True, text=True, check=True).stdout
        key_file = os.path.join(self.tmp, "edge.key")
        with open(key_file, "w") as f:
            f.write(key_pem)
        csr = subprocess.run(["openssl", "req", "-new", "-key", key_file, "-subj", "/CN=a.edge.test"],
                             capture_output=True, text=True, check=True).stdout

        def active_pki_requests():
            st, b, _ = active.request("GET", "sys/metrics", token=root)
            self.assertEqual(st, 200, b)
            return sum(c["Count"] for c in b["Counters"]
                       if c["Name"] == "coffer.requests" and c["Labels"].get("mount") == "pki/")

        def reads(s, n_sign=5):
            """The requests a standby serves itself; returns how many were made."""
            made = 0
            for i in range(n_sign):
                b = ok(s.request("POST", "pki/sign/edge", token=tok, body={"csr": csr, "common_name": "a.edge.test"}))
                crt = os.path.join(self.tmp, "edge.crt")
                with open(crt, "w") as f:
                    f.write(b["data"]["certificate"])
                v = subprocess.run(["openssl", "verify", "-CAfile", ca_file, crt], capture_output=True, text=True)
                self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
                made += 1
            b = ok(s.request("POST", "pki/issue/edge", token=tok, body={"common_name": "b.edge.test"}))
            self.assertIn("BEGIN", b["data"]["private_key"])
            self.assertEqual(ok(s.request("GET", "kv1/app", token=tok))["data"], {"v": "one"})
            self.assertEqual(ok(s.request("GET", "kv2/data/app", token=tok))["data"]["data"], {"v": "two"})
            ct = ok(s.request("POST", "transit/encrypt/app", token=tok,
                              body={"plaintext": "aGVsbG8="}))["data"]["ciphertext"]
            self.assertEqual(ok(s.request("POST", "transit/decrypt/app", token=tok,
                                          body={"ciphertext": ct}))["data"]["plaintext"], "aGVsbG8=")
            self.assertEqual(ok(s.request("GET", "auth/token/lookup-self", token=tok))["data"]["policies"],
                             ["default", "edge"])
            return made + 6

        for s in standbys:
            self.wait_serving(s)
            pki_before = active_pki_requests()
            local0, fwd0 = self.standby_counts(s)
            n = reads(s)
            local1, fwd1 = self.standby_counts(s)
            # Every request ran here (and the metrics read before the second count).
            self.assertEqual((local1 - local0, fwd1 - fwd0), (n + 1, 0))
            self.assertEqual(active_pki_requests(), pki_before)
            # What writes goes to the active server: forwarded, or 307 from the one that does
            # not forward; a stored certificate is readable there.
            if s is servers[2]:  # disable_forwarding: the client is sent there
                self.assertEqual(raw_status(s, "POST", "pki/issue/kept", root, {"common_name": "x.kept.test"}),
                                 (307, active.addr + "/v1/pki/issue/kept"))
                self.assertEqual(raw_status(s, "POST", "kv1/written", tok, {"by": s.addr}),
                                 (307, active.addr + "/v1/kv1/written"))
            else:
                st, b, _ = s.request("POST", "pki/issue/kept", token=root, body={"common_name": "x.kept.test"})
                self.assertEqual(st, 200, b)
                serial = b["data"]["serial_number"]
                self.assertEqual(ok(active.request("GET", f"pki/cert/{serial}"))["data"]["certificate"],
                                 b["data"]["certificate"])
                self.assertEqual(s.request("POST", "kv1/written", token=tok, body={"by": s.addr})[0], 204)
                # KV reads are not cached: etcd's linearizable read sees the write at once.
                self.assertEqual(ok(s.request("GET", "kv1/written", token=tok))["data"], {"by": s.addr})
            self.assertGreaterEqual(self.standby_counts(s)[1], fwd1 + 2)

        # The active server frozen (within its lease): the standbys go on serving all of it.
        counts = {s.addr: self.standby_counts(s) for s in standbys}
        active.proc.send_signal(signal.SIGSTOP)
        # Resumed after 4 s whatever happens (within its 5 s lease): a request sent on to it
        # meanwhile would wait for that, and the counters below would show it.
        resume = threading.Timer(4, lambda: active.proc.send_signal(signal.SIGCONT))
        resume.start()
        try:
            t0 = time.time()
            made = {s.addr: reads(s, n_sign=2) for s in standbys}
            self.assertLess(time.time() - t0, 4)
        finally:
            resume.cancel()
            active.proc.send_signal(signal.SIGCONT)
        for s in standbys:
            local, forwarded = self.standby_counts(s)
            self.assertEqual((local - counts[s.addr][0], forwarded - counts[s.addr][1]),
                             (made[s.addr] + 1, 0))  # and the first metrics read
        self.assertIs(self.active_of(servers), active)

        # Changes on the active server reach the standbys within a second.
        ok(active.request("POST", "pki/roles/edge", token=root, body={
            "allowed_domains": "other.test", "allow_subdomains": True, "no_store": True,
            "key_type": "ec", "key_bits": 256}))
        t0 = time.time()
        for s in standbys:
            self.wait("the narrowed role on the standby", lambda: s.request(
                "POST", "pki/sign/edge", token=tok, body={"csr": csr, "common_name": "a.edge.test"})[0] == 400,
                timeout=1)
        ok(active.request("POST", "sys/mounts/kv3", token=root, body={"type": "kv", "options": {"version": "1"}}))
        ok(active.request("POST", "kv3/new", token=root, body={"v": "3"}))
        # A changed mount table reloads a standby (it forwards, or with disable_forwarding answers
        # 307, until its watch has caught up again): redirects are not followed here.
        for s in standbys:
            self.wait("the new mount on the standby",
                      lambda: raw_status(s, "GET", "kv3/new", root)[0] == 200, timeout=1)
        ok(active.request("POST", "auth/token/revoke", token=root, body={"token": tok}))
        for s in standbys:
            self.wait("the revoked token refused on the standby",
                      lambda: raw_status(s, "GET", "kv1/app", tok)[0] == 403, timeout=1)
        self.assertLess(time.time() - t0, 5)
        for s in standbys:
            self.wait_serving(s)
            local, _ = self.standby_counts(s)
            self.assertEqual(s.request("GET", "kv3/new", token=root)[0], 200)
            self.assertGreaterEqual(self.standby_counts(s)[0], local + 2)

    def test_frozen_active_server_is_fenced(self):
        """SIGSTOP the active server past its lease: a standby takes over; resumed, the old one's
        writes fail (every write transaction compares the lock key it created) and it steps
        down. It answers 307 rather than forwarding (disable_forwarding), so any success would
        be its own write."""
        self.start_etcd(1)
        servers, active = self.start_servers(["disable_forwarding = true\n"] * 3)
        root = self.root
        self.assertEqual(active.request("POST", "sys/mounts/kv", token=root,
                                        body={"type": "kv", "options": {"version": "1"}})[0], 204)
        self.assertEqual(active.request("POST", "kv/before", token=root, body={"v": "1"})[0], 204)
        standbys = [s for s in servers if s is not active]
        active.proc.send_signal(signal.SIGSTOP)
        try:
            new = self.wait("a standby to take over from the frozen server",
                            lambda: self.active_of(standbys), timeout=30)
            # Requests reach the frozen server's socket now; it reads them when resumed.
            answers = {}

            def write(i):
                try:
                    answers[i] = active.request("POST", f"kv/fenced-{i}", token=root, body={"v": i})[0]
                except OSError as e:
                    answers[i] = str(e)
            threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
            for th in threads:
                th.start()
            time.sleep(1)
        finally:
            active.proc.send_signal(signal.SIGCONT)
        for th in threads:
            th.join(40)
        self.assertEqual(len(answers), 8)
        for i, st in answers.items():
            self.assertFalse(isinstance(st, int) and 200 <= st < 300, f"write {i} answered {st}")
        for i in range(8):
            st, _, _ = new.request("GET", f"kv/fenced-{i}", token=root)
            self.assertEqual(st, 404, f"kv/fenced-{i} reached etcd")
        self.assertEqual(new.request("GET", "kv/before", token=root)[0], 200)
        self.wait("the resumed server to step down", lambda: health(active) == 429, timeout=30)
        self.assertEqual(leader(active)["leader_address"], new.addr)


if __name__ == "__main__":
    unittest.main()
