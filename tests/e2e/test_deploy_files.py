"""The example agent configs in deploy/agent parse (`coffer agent check`), and the systemd units
carry the hardening they promise."""
import glob
import os
import subprocess
import unittest

from harness import COFFER_BIN

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


class DeployFiles(unittest.TestCase):
    def test_example_agent_configs_parse(self):
        configs = glob.glob(os.path.join(ROOT, "deploy", "agent", "*.hcl"))
        self.assertEqual(len(configs), 3)
        for c in configs:
            p = subprocess.run([COFFER_BIN, "agent", "check", "-config", c], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, c + ": " + p.stderr)
            self.assertIn("config OK", p.stdout)
        p = subprocess.run([COFFER_BIN, "agent", "check", "-config", os.path.join(ROOT, "deploy", "systemd",
                                                                                  "coffer-agent.timer")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)

    def test_rotation_hooks_are_shell_scripts_that_parse(self):
        """The hooks docs/rotation.md ships: executable, valid sh, and the node hook does nothing
        outside a rotation (a renewal must not restart etcd)."""
        hooks = sorted(glob.glob(os.path.join(ROOT, "deploy", "rotation", "*.sh")))
        self.assertEqual([os.path.basename(h) for h in hooks],
                         ["etcd-member-restart.sh", "finalize-calico.sh", "finalize-kube-root-ca.sh",
                          "finalize-microk8s.sh"])
        for h in hooks:
            self.assertTrue(os.access(h, os.X_OK), h)
            p = subprocess.run(["sh", "-n", h], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, h + ": " + p.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_ROTATION")}
        env["PATH"] = "/nonexistent"  # systemctl or etcdctl would not be found: it must not try
        p = subprocess.run(["/bin/sh", hooks[0]], capture_output=True, text=True, env=env)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))

    def test_kube_root_ca_hook_deletes_each_config_map_and_fails_when_kubectl_does(self):
        import tempfile
        hook = os.path.join(ROOT, "deploy", "rotation", "finalize-kube-root-ca.sh")
        with tempfile.TemporaryDirectory() as d:
            fake, log = os.path.join(d, "kubectl.sh"), os.path.join(d, "calls")
            with open(fake, "w") as f:
                f.write(f'printf "%s\\n" "$1 $2 $3 $4 $5 $6" >> {log}\n[ "$1" = get ] && printf "default\\nkube-system\\n"\nexit 0\n')
            p = subprocess.run(["/bin/sh", hook], capture_output=True, text=True,
                               env=dict(os.environ, KUBECTL=f"sh {fake}"))
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(log) as f:
                calls = f.read().splitlines()
            self.assertEqual(calls[1:], ["-n default delete configmap kube-root-ca.crt --wait=false",
                                         "-n kube-system delete configmap kube-root-ca.crt --wait=false"])
        p = subprocess.run(["/bin/sh", hook], capture_output=True, text=True, env=dict(os.environ, KUBECTL="false"))
        self.assertNotEqual(p.returncode, 0)

    def test_kubelet_pair_is_in_one_place_everywhere(self):
        """kubeadm's layout: the kubelet's serving pair in /var/lib/kubelet/pki, the same in the
        examples, in `cluster agent-config`'s default (profile_test.cc) and writable by the
        agent's units."""
        want = ("/var/lib/kubelet/pki/kubelet.crt", "/var/lib/kubelet/pki/kubelet.key")
        for name in ("control-plane.hcl", "worker.hcl"):
            with open(os.path.join(ROOT, "deploy", "agent", name)) as f:
                text = f.read()
            for path in want:
                self.assertIn(f'"{path}"', text, name)
            self.assertNotIn("/etc/kubernetes/pki/kubelet.", text, name)
        for unit in ("coffer-agent.service", "coffer-agent-once.service"):
            with open(os.path.join(ROOT, "deploy", "systemd", unit)) as f:
                rw = [l for l in f.read().splitlines() if l.startswith("ReadWritePaths=")]
            self.assertTrue(rw and "/var/lib/kubelet" in rw[0].split("=", 1)[1].split(), unit)

    def test_units_are_hardened(self):
        for unit in ("coffer-server.service", "coffer-agent.service", "coffer-agent-once.service"):
            with open(os.path.join(ROOT, "deploy", "systemd", unit)) as f:
                text = f.read()
            for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                              "PrivateTmp=yes", "RestrictAddressFamilies=", "UMask=0077"):
                self.assertIn(directive, text, unit)
        with open(os.path.join(ROOT, "deploy", "systemd", "coffer-agent.timer")) as f:
            self.assertIn("Unit=coffer-agent-once.service", f.read())


if __name__ == "__main__":
    unittest.main()
