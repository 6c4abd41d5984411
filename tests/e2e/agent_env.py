"""Shared by the agent end-to-end tests: a set-up cluster, agents as real `coffer agent run`
processes, and helpers to read what they wrote."""
import json
import os
import signal
import subprocess
import time

from harness import COFFER_BIN


def serial_of(path):
    p = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial"], capture_output=True, text=True)
    return p.stdout.strip().split("=")[-1] if p.returncode == 0 else None


def enddate_of(path):
    p = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-enddate", "-dateopt", "iso_8601"],
                       capture_output=True, text=True, check=True)
    return p.stdout.strip().split("=")[-1]


class Agent:
    """`coffer agent run` for one node, configured by `coffer cluster agent-config`."""

    def __init__(self, test, server, cluster, node, tokdir, retry_max="4s"):
        self.node = node
        self.root = os.path.join(test.tmp, node, "kubernetes")
        self.state = os.path.join(test.tmp, node, "state")
        self.cfg = os.path.join(test.tmp, node + ".json")
        self.kubelet = os.path.join(test.tmp, node, "kubelet")
        server.cli("cluster", "agent-config", cluster, node, "--root", self.root, "--kubelet-dir",
                   self.kubelet, "--state-dir",
                   self.state, "--out", self.cfg, token=server.root, check=True)
        with open(self.cfg) as f:
            c = json.load(f)
        c["retry_min"] = "1s"
        c["retry_max"] = retry_max
        c["rotation_wait"] = "2s"  # the rotation watch's long poll: a stop waits for it
        with open(self.cfg, "w") as f:
            json.dump(c, f)
        os.makedirs(self.state, exist_ok=True)
        os.replace(os.path.join(tokdir, node + ".token"), os.path.join(self.state, "init-token"))
        self.log_path = os.path.join(test.tmp, node + "-agent.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([COFFER_BIN, "agent", "run", "-config", self.cfg],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def pki(self, rel):
        # kubeadm's layout: the kubelet's serving pair lives in the kubelet's folder.
        if rel.startswith("kubelet."):
            return os.path.join(self.kubelet, "pki", rel)
        return os.path.join(self.root, "pki", rel)

    def wait_for(self, rels, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(os.path.exists(self.pki(r)) for r in rels):
                return
            if self.proc.poll() is not None:
                raise AssertionError("agent exited: " + self.read_log())
            time.sleep(0.2)
        raise AssertionError(f"agent {self.node} wrote no {rels}: " + self.read_log())

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()
