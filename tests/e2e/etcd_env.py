"""A three-member etcd cluster (Debian's etcd-server) on 127.0.0.1 whose TLS files are those a
`coffer agent` keeps for each member: client and peer certificate auth, kubeadm's file layout.
Shared by the agent end-to-end tests."""
import os
import shutil
import signal
import subprocess

from harness import free_port

ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")


class EtcdCluster:
    def __init__(self, tmp, agents):
        """agents: {member index: agent_env.Agent of the node running that member}."""
        self.tmp, self.agents = tmp, agents
        self.client_ports = {i: free_port() for i in agents}
        self.peer_ports = {i: free_port() for i in agents}
        self.cluster_arg = ",".join(f"etcd-{i}=https://127.0.0.1:{self.peer_ports[i]}" for i in agents)
        self.members = {}

    def endpoint(self, i):
        return f"https://127.0.0.1:{self.client_ports[i]}"

    def start(self, i):
        name, agent = f"etcd-{i}", self.agents[i]
        data = os.path.join(self.tmp, name + ".data")
        with open(os.path.join(self.tmp, name + ".log"), "ab") as log:  # the child keeps its own
            self.members[i] = subprocess.Popen([
                ETCD, "--name", name, "--data-dir", data,
                "--listen-client-urls", self.endpoint(i), "--advertise-client-urls", self.endpoint(i),
                "--listen-peer-urls", f"https://127.0.0.1:{self.peer_ports[i]}",
                "--initial-advertise-peer-urls", f"https://127.0.0.1:{self.peer_ports[i]}",
                "--initial-cluster", self.cluster_arg, "--initial-cluster-state", "new",
                "--initial-cluster-token", "coffer-e2e",
                "--client-cert-auth", "--trusted-ca-file", agent.pki("etcd/ca.crt"),
                "--cert-file", agent.pki("etcd/server.crt"), "--key-file", agent.pki("etcd/server.key"),
                "--peer-client-cert-auth", "--peer-trusted-ca-file", agent.pki("etcd/ca.crt"),
                "--peer-cert-file", agent.pki("etcd/peer.crt"), "--peer-key-file", agent.pki("etcd/peer.key"),
                "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            ], stdout=log, stderr=subprocess.STDOUT)
        return self.members[i]

    def stop(self, i):
        p = self.members.get(i)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for i in list(self.members):
            self.stop(i)

    def etcdctl(self, client, *args, cert="etcd/healthcheck-client"):
        """etcdctl against every member with `client`'s (an Agent's) certificate and CA files."""
        endpoints = ",".join(self.endpoint(i) for i in sorted(self.agents))
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.run([ETCDCTL, "--endpoints", endpoints, "--cacert", client.pki("etcd/ca.crt"),
                               "--cert", client.pki(cert + ".crt"), "--key", client.pki(cert + ".key"),
                               "--command-timeout", "8s", *args],
                              capture_output=True, text=True, env=env, timeout=30)
