"""HA on etcd with real processes: etcd with client-certificate authentication on 127.0.0.1, three
Coffer servers on one path with ha_enabled. One is active, the others are unsealed standbys that
answer sys/health with 429 and send every other request to the active server (307). Certificates
are issued with storage through the active server; it is SIGKILLed; a standby takes over within
the lock's TTL and every acknowledged certificate is readable there; the killed server rejoins
as a standby."""
import json
import os
import subprocess
import signal
import ssl
import time
import unittest
import urllib.error
import urllib.request

from harness import ServerTest
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


@unittest.skipUnless(base.ETCD and base.ETCDCTL, "etcd-server and etcd-client are installed by scripts/install-deps.sh")
class EtcdHa(ServerTest):
    # etcd with mTLS and the storage block, as the single-server etcd test starts them.
    start_etcd = base.EtcdStorage.start_etcd
    stop_etcd = base.EtcdStorage.stop_etcd
    etcdctl = base.EtcdStorage.etcdctl
    storage_block = base.EtcdStorage.storage_block

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

    def test_failover_keeps_every_acknowledged_certificate(self):
        self.start_etcd()
        block = self.storage_block().replace('ha_enabled = "false"', 'ha_enabled = "true"')
        # Without api_addr a server cannot say where clients should go: it does not start.
        s = self.server(storage=block)
        p = subprocess.run([base.COFFER_BIN, "server", f"-config={s.config}"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("ha_enabled needs api_addr", p.stderr)
        self.servers.remove(s)
        servers = []
        for _ in range(3):
            s = self.server(storage=block)
            with open(s.config, "a") as f:
                f.write(f'api_addr = "{s.addr}"\n')
            servers.append(s.start())
        # Not initialized: one of them holds the lock and takes the init.
        first = self.wait("a server to take the lock",
                          lambda: next((s for s in servers if (leader(s) or {}).get("is_self")), None))
        st, init, _ = first.request("PUT", "sys/init", body={"secret_shares": 3, "secret_threshold": 2})
        self.assertEqual(st, 200, init)
        keys = init["keys"]
        root = init["root_token"]
        for s in servers:
            for k in keys[:2]:
                st, b, _ = s.request("PUT", "sys/unseal", body={"key": k})
                self.assertEqual(st, 200, b)
            self.assertFalse(b["sealed"], b)
        active = self.wait("an active server", lambda: self.active_of(servers))
        standbys = [s for s in servers if s is not active]
        for s in standbys:
            self.wait("standby health 429", lambda: health(s) == 429)
            b = leader(s)
            self.assertEqual((b["ha_enabled"], b["is_self"]), (True, False), b)
            self.assertEqual(b["leader_address"], active.addr)
        # coffer status says which is which.
        p = standbys[0].cli("status")
        self.assertRegex(p.stdout, r"HA Mode\s+standby\n")
        self.assertRegex(p.stdout, rf"Active Node Address\s+{active.addr}\n")
        self.assertRegex(active.cli("status").stdout, r"HA Mode\s+active\nActive Node Address")
        # sys/seal on a standby is refused there (it would seal the active server), and the
        # standby keeps its key.
        st, b, _ = standbys[1].request("PUT", "sys/seal", token=root)
        self.assertEqual(st, 400, b)
        self.assertIn("HA standby", b["errors"][0])
        self.assertEqual(health(standbys[1]), 429)
        # A standby sends the client to the active server, method and path kept.
        req = urllib.request.Request(standbys[0].addr + "/v1/sys/mounts?x=1", method="GET",
                                     headers={"X-Vault-Token": root})

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(
            context=standbys[0].ssl_context()))
        with self.assertRaises(urllib.error.HTTPError) as e:
            opener.open(req, timeout=10)
        self.assertEqual(e.exception.code, 307)
        self.assertEqual(e.exception.headers["Location"], active.addr + "/v1/sys/mounts?x=1")

        self.assertEqual(active.request("POST", "sys/mounts/pki", token=root, body={"type": "pki"})[0], 204)
        st, _, _ = active.request("POST", "pki/root/generate/internal", token=root,
                                  body={"common_name": "ha root", "key_type": "ec"})
        self.assertEqual(st, 200)
        active.request("POST", "pki/roles/web", token=root,
                       body={"allow_any_name": True, "key_type": "ec", "ttl": "1h"})
        serials = []
        for i in range(20):
            st, b, _ = active.request("POST", "pki/issue/web", token=root,
                                      body={"common_name": f"n{i}.example"})
            self.assertEqual(st, 200, b)
            serials.append(b["data"]["serial_number"])

        # sys/step-down (sudo): the active server gives way, a standby takes over, nothing lost.
        st, b, _ = standbys[0].request("PUT", "sys/step-down", token=root)
        self.assertEqual(st, 307)  # a standby sends it to the active server
        p = active.cli("operator", "step-down", token=root)
        self.assertEqual(p.returncode, 0, p.stderr)
        active = self.wait("a standby to take over after step-down",
                           lambda: self.active_of(standbys))
        standbys = [s for s in servers if s is not active]
        self.wait("the stepped-down server to be a standby", lambda: health(standbys[0]) == 429 or
                  health(standbys[1]) == 429)
        st, b, _ = active.request("GET", f"pki/cert/{serials[0]}")
        self.assertEqual(st, 200)

        active.kill9()
        t0 = time.time()
        new = self.wait("a standby to take over", lambda: self.active_of(standbys), timeout=30)
        took = time.time() - t0
        print(f"\nfailover after SIGKILL: {took:.1f}s (lock_timeout 5s)")
        self.assertLess(took, 10)
        for serial in serials:
            st, b, _ = new.request("GET", f"pki/cert/{serial}")
            self.assertEqual(st, 200, serial)
        st, b, _ = new.request("LIST", "pki/certs", token=root)
        self.assertTrue({x.replace(":", "-") for x in serials} <= set(b["data"]["keys"]))
        other = next(s for s in standbys if s is not new)
        self.wait("the other standby to follow the new active server",
                  lambda: (leader(other) or {}).get("leader_address") == new.addr)

        # The killed server comes back as a sealed standby; unsealed, it is a standby again.
        active.start()
        st, b, _ = active.request("GET", "sys/leader")
        self.assertFalse(b["is_self"], b)
        self.assertEqual(health(active), 503)  # sealed
        for k in keys[:2]:
            active.request("PUT", "sys/unseal", body={"key": k})
        self.wait("the restarted server to be a standby", lambda: health(active) == 429)
        self.assertEqual(leader(active)["leader_address"], new.addr)


if __name__ == "__main__":
    unittest.main()
