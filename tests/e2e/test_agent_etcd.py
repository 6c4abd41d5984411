"""The node agent keeping a real three-member etcd cluster's certificates valid: a Coffer server,
`cluster setup`, three `coffer agent run` processes with init tokens, three etcd members
(Debian's etcd-server) on 127.0.0.1 with --client-cert-auth and --peer-client-cert-auth using the
agents' files. With a 2-minute leaf TTL the agents renew before expiry; every few seconds etcdctl
(with the healthcheck-client certificate an agent wrote) reports every endpoint healthy and a
strict TLS handshake sees the member's current certificate, with no failure, until well past the
first certificates' expiry; a member restarted afterwards rejoins with its renewed peer
certificate.
"""
import json
import os
import socket
import ssl
import subprocess
import time
import unittest

from agent_env import Agent, serial_of
from etcd_env import ETCD, ETCDCTL, EtcdCluster
from harness import ServerTest
FILES = ["etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key", "etcd/ca.crt",
         "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"]


@unittest.skipUnless(ETCD and ETCDCTL, "etcd-server and etcd-client are installed by scripts/install-deps.sh")
class AgentKeepsEtcdValid(ServerTest):
    def tearDown(self):
        if getattr(self, "etcd", None):
            self.etcd.stop_all()
        for a in getattr(self, "agents", []):
            a.stop()
        super().tearDown()

    def served_serial(self, i, hc):
        """A strict TLS handshake with member i using the healthcheck client certificate."""
        ctx = ssl.create_default_context(cafile=hc.pki("etcd/ca.crt"))
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.load_cert_chain(hc.pki("etcd/healthcheck-client.crt"), hc.pki("etcd/healthcheck-client.key"))
        with socket.create_connection(("127.0.0.1", self.etcd.client_ports[i]), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                der = tls.getpeercert(binary_form=True)
        p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                           capture_output=True, check=True)
        return p.stdout.decode().strip().split("=")[-1]

    def test_three_member_etcd_with_renewing_agents(self):
        self.etcd, self.agents = None, []
        s = self.server().start()
        s.init_and_unseal(1, 1)
        tokdir = os.path.join(self.tmp, "tokens")
        p = s.cli("cluster", "setup", "e2e", "--leaf-ttl", "2m", "--init-token-dir", tokdir,
                  "--node", "etcd-1:etcd:127.0.0.1", "--node", "etcd-2:etcd:127.0.0.1",
                  "--node", "etcd-3:etcd:127.0.0.1", token=s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        agents = {i: Agent(self, s, "e2e", f"etcd-{i}", tokdir) for i in (1, 2, 3)}
        self.agents = list(agents.values())
        for a in self.agents:
            a.start()
        for a in self.agents:
            a.wait_for(FILES)
            self.assertFalse(os.path.exists(os.path.join(a.state, "init-token")))
        first = {(i, f): serial_of(a.pki(f)) for i, a in agents.items()
                 for f in ("etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt")}
        issued_at = time.time()

        self.etcd = EtcdCluster(self.tmp, agents)
        for i in agents:
            self.etcd.start(i)
        hc = agents[1]
        deadline = time.time() + 60
        while True:
            r = self.etcd.etcdctl(hc, "endpoint", "health", "-w", "json")
            if r.returncode == 0:
                break
            self.assertLess(time.time(), deadline, "etcd never became healthy: " + r.stdout + r.stderr)
            time.sleep(1)
        r = self.etcd.etcdctl(hc, "put", "coffer", "renewed")
        self.assertEqual(r.returncode, 0, r.stderr)

        # Every few seconds, until well past the first certificates' expiry (2 minutes after
        # issue): all endpoints healthy over new connections, with the files on disk right now.
        served = {i: set() for i in (1, 2, 3)}
        checks = 0
        while time.time() < issued_at + 135:
            r = self.etcd.etcdctl(hc, "endpoint", "health", "-w", "json")
            self.assertEqual(r.returncode, 0, f"check {checks}: {r.stdout} {r.stderr}")
            health = json.loads(r.stdout)
            self.assertEqual(len(health), 3)
            self.assertTrue(all(h["health"] for h in health), r.stdout)
            for i in (1, 2, 3):
                served[i].add(self.served_serial(i, hc))
            checks += 1
            time.sleep(3)
        self.assertGreater(checks, 25)
        for (i, f), serial in first.items():
            now = serial_of(agents[i].pki(f))
            self.assertNotEqual(now, serial, f"etcd-{i} {f} was not renewed")
        for i in (1, 2, 3):
            self.assertGreaterEqual(len(served[i]), 2, f"etcd-{i} never served a renewed certificate")
            # The file on disk is what etcd serves, or will within seconds: a renewal may have
            # landed just now, and etcd picks a new file up at its next handshakes.
            on_disk, deadline = serial_of(agents[i].pki("etcd/server.crt")), time.time() + 15
            while on_disk not in served[i] and time.time() < deadline:
                served[i].add(self.served_serial(i, hc))
                on_disk = serial_of(agents[i].pki("etcd/server.crt"))
                time.sleep(0.5)
            self.assertIn(on_disk, served[i])
            log = agents[i].read_log()
            self.assertIn("reason=\"past its renewal point\"", log)
            self.assertIn("new_key=false", log)  # the key is kept across renewals
        r = self.etcd.etcdctl(hc, "get", "coffer", "--print-value-only")
        self.assertEqual(r.stdout.strip(), "renewed")

        # A member restarted now dials its peers with its renewed peer certificate.
        self.etcd.stop(2)
        self.etcd.start(2)
        deadline = time.time() + 60
        while True:
            r = self.etcd.etcdctl(hc, "endpoint", "health", "-w", "json")
            if r.returncode == 0 and all(h["health"] for h in json.loads(r.stdout)):
                break
            self.assertLess(time.time(), deadline, "etcd-2 did not rejoin: " + r.stdout + r.stderr)
            time.sleep(1)
        r = self.etcd.etcdctl(hc, "member", "list", "-w", "json")
        self.assertEqual(len(json.loads(r.stdout)["members"]), 3)


if __name__ == "__main__":
    unittest.main()
