"""The agent while the server is away: stopped, then back but sealed. The agent keeps the
current files byte for byte, retries with growing backoff (logged), and renews once the server
is unsealed; `agent once` meanwhile exits non-zero only when a certificate is no longer valid.
"""
import json
import os
import re
import subprocess
import time
import unittest

from agent_env import Agent, serial_of
from harness import ServerTest

FILES = ["kubelet.crt", "kubelet.key", "ca.crt"]


class AgentRidesOutAnOutage(ServerTest):
    def tearDown(self):
        for a in getattr(self, "agents", []):
            a.stop()
        super().tearDown()

    def snapshot(self, a):
        out = {}
        for f in FILES:
            with open(a.pki(f), "rb") as fh:
                out[f] = fh.read()
        return out

    def test_server_stopped_then_sealed(self):
        s = self.server().start()
        s.init_and_unseal(3, 2)
        tokdir = os.path.join(self.tmp, "tokens")
        p = s.cli("cluster", "setup", "o1", "--leaf-ttl", "1m", "--init-token-dir", tokdir,
                  "--node", "w-1:worker:127.0.0.1", token=s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        a = Agent(self, s, "o1", "w-1", tokdir, retry_max="8s")
        self.agents = [a]
        a.start()
        a.wait_for(FILES)
        time.sleep(1)
        before = self.snapshot(a)
        serial = serial_of(a.pki("kubelet.crt"))

        # Down for a while: past the renewal point (60-75% of 90 s after the 30 s backdate).
        s.stop()
        time.sleep(45)
        self.assertEqual(self.snapshot(a), before, "files changed while the server was down")
        log = a.read_log()
        self.assertIn("agent: will retry", log)
        self.assertIn("cannot connect", log)
        p = s.cli("agent", "once", "-config", a.cfg)
        self.assertEqual(p.returncode, 0, "a valid certificate is fine while the server is away: " + p.stderr)

        # Back, but sealed: still retrying (503), still the same files.
        s.start()
        time.sleep(8)
        self.assertEqual(self.snapshot(a), before, "files changed while the server was sealed")
        self.assertIn("Vault is sealed", a.read_log().split("cannot connect")[-1])
        retry_in = [int(x) for x in re.findall(r"retry_in=(\d+)ms", a.read_log())]
        self.assertGreaterEqual(len(retry_in), 4)
        self.assertGreater(max(retry_in), 2 * min(retry_in), "backoff did not grow: " + str(retry_in))
        self.assertLessEqual(max(retry_in), 8000)

        # Unsealed: renewed within a backoff period, the key kept.
        s.unseal(2)
        deadline = time.time() + 20
        while serial_of(a.pki("kubelet.crt")) == serial:
            self.assertLess(time.time(), deadline, "no renewal after unseal: " + a.read_log()[-2000:])
            time.sleep(0.5)
        after = self.snapshot(a)
        self.assertEqual(after["kubelet.key"], before["kubelet.key"])
        self.assertIn("agent: renewed certificate certificate=kubelet", a.read_log())
        p = s.cli("agent", "once", "-config", a.cfg)
        self.assertEqual(p.returncode, 0, p.stderr)


class AgentRepairsFiles(ServerTest):
    def tearDown(self):
        if getattr(self, "agent", None):
            self.agent.stop()
        super().tearDown()

    def test_a_deleted_certificate_is_put_back_at_the_next_heartbeat(self):
        """Renewal is days away, but a certificate and CA file deleted from under the daemon come
        back within a heartbeat, with the same key, and verify against the CA."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        tokdir = os.path.join(self.tmp, "tokens")
        p = s.cli("cluster", "setup", "r1", "--init-token-dir", tokdir,
                  "--node", "w-1:worker:127.0.0.1", token=s.root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        a = self.agent = Agent(self, s, "r1", "w-1", tokdir)
        with open(a.cfg) as f:
            c = json.load(f)
        c["heartbeat"] = "2s"
        with open(a.cfg, "w") as f:
            json.dump(c, f)
        a.start()
        a.wait_for(FILES)
        time.sleep(1)
        with open(a.pki("kubelet.key"), "rb") as fh:
            key = fh.read()
        os.remove(a.pki("kubelet.crt"))
        os.remove(a.pki("ca.crt"))
        a.wait_for(["kubelet.crt", "ca.crt"], timeout=20)
        time.sleep(0.5)
        with open(a.pki("kubelet.key"), "rb") as fh:
            self.assertEqual(fh.read(), key, "the key was replaced")
        v = subprocess.run(["openssl", "verify", "-CAfile", a.pki("ca.crt"), a.pki("kubelet.crt")],
                           capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertGreaterEqual(a.read_log().count("agent: renewed certificate certificate=kubelet "), 2)


if __name__ == "__main__":
    unittest.main()
