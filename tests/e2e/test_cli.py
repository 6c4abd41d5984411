"""The coffer CLI against a real TLS server: operator init/unseal/seal/rotate, status, read/write/
list/delete with k=v, k=@file, k=- and -, secrets enable/tune/list/disable, -format=json,
COFFER_* and VAULT_* environment, and vault's exit codes (0 ok, 1 local error, 2 remote error)."""
import json
import os
import re
import subprocess
import time
import unittest

from harness import COFFER_BIN, ServerTest, free_port


class Cli(ServerTest):
    def test_operator_and_kv_workflow(self):
        s = self.server().start()
        p = s.cli("status")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)  # sealed (not initialized)
        self.assertRegex(p.stdout, r"Initialized\s+false")

        p = s.cli("operator", "init", "-key-shares=5", "-key-threshold=3", check=True)
        keys = re.findall(r"Unseal Key \d: (\S+)", p.stdout)
        root = re.search(r"Initial Root Token: (\S+)", p.stdout).group(1)
        self.assertEqual(len(keys), 5)
        p = s.cli("operator", "unseal", keys[0], check=True)
        self.assertRegex(p.stdout, r"Unseal Progress\s+1/3")
        s.cli("operator", "unseal", "-format=json", keys[1], check=True)
        # Without "-" and without a terminal, nothing is read from stdin by surprise.
        p = s.cli("operator", "unseal", stdin=keys[2] + "\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a terminal", p.stderr)
        p = s.cli("operator", "unseal", "-", stdin=keys[2] + "\n", check=True)  # key from stdin
        self.assertRegex(p.stdout, r"Sealed\s+false")
        self.assertEqual(s.cli("status").returncode, 0)
        # Another share for an unsealed server: Vault answers with the status (200), and so
        # does Coffer.
        p = s.cli("operator", "unseal", keys[3])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"Sealed\s+false")

        # Secrets engines.
        p = s.cli("secrets", "enable", "-path=app", "-description=app secrets", "-default-lease-ttl=1h", "kv", token=root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Enabled the kv secrets engine at: app/", p.stdout)
        p = s.cli("secrets", "list", "-format=json", token=root, check=True)
        mounts = json.loads(p.stdout)
        self.assertEqual(mounts["app/"]["type"], "kv")
        self.assertEqual(mounts["app/"]["config"]["default_lease_ttl"], 3600)
        s.cli("secrets", "tune", "-max-lease-ttl=2h", "app", token=root, check=True)
        p = s.cli("read", "-format=json", "sys/mounts/app/tune", token=root, check=True)
        self.assertEqual(json.loads(p.stdout)["data"]["max_lease_ttl"], 7200)
        p = s.cli("secrets", "enable", "-path=app", "kv", token=root)
        self.assertEqual(p.returncode, 2)
        self.assertIn("already in use", p.stderr)

        # write with k=v, k=@file, k=- ; read table, json and -field.
        cert = os.path.join(self.tmp, "blob.txt")
        with open(cert, "w") as f:
            f.write("line1\nline2\n")
        p = s.cli("write", "app/db", "user=bob", f"blob=@{cert}", "password=-", stdin="s3cret", token=root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Success! Data written to: app/db", p.stdout)
        p = s.cli("read", "app/db", token=root, check=True)
        self.assertRegex(p.stdout, r"refresh_interval\s+1h")
        self.assertRegex(p.stdout, r"user\s+bob")
        p = s.cli("read", "-field=password", "app/db", token=root, check=True)
        self.assertEqual(p.stdout, "s3cret")
        p = s.cli("read", "-format=json", "app/db", token=root, check=True)
        self.assertEqual(json.loads(p.stdout)["data"]["blob"], "line1\nline2\n")
        # Whole JSON body from stdin.
        s.cli("write", "app/json", "-", stdin='{"a": "1", "n": 2}', token=root, check=True)
        self.assertEqual(json.loads(s.cli("read", "-format=json", "app/json", token=root).stdout)["data"],
                         {"a": "1", "n": 2})
        p = s.cli("list", "app/", token=root, check=True)
        self.assertEqual(p.stdout.split(), ["Keys", "----", "db", "json"])
        s.cli("delete", "app/json", token=root, check=True)
        p = s.cli("read", "app/json", token=root)
        self.assertEqual(p.returncode, 2)
        self.assertIn("No value found at app/json", p.stderr)

        # Exit codes: local errors 1, remote errors 2.
        self.assertEqual(s.cli("write", "app/x", "novalue", token=root).returncode, 1)
        self.assertEqual(s.cli("write", "app/x", "k=@/nonexistent", token=root).returncode, 1)
        self.assertEqual(s.cli("read", token=root).returncode, 1)  # missing path argument
        self.assertEqual(s.cli("read", "-bogus-flag", "app/db", token=root).returncode, 1)
        p = s.cli("read", "app/db", token="hvs.wrong")
        self.assertEqual(p.returncode, 2)
        self.assertIn("permission denied", p.stderr)
        self.assertIn("Code: 403", p.stderr)
        p = s.cli("read", "app/db", token=root, env_extra={"COFFER_ADDR": f"https://127.0.0.1:{free_port()}"})
        self.assertEqual(p.returncode, 2)

        # VAULT_* fallbacks when COFFER_* are absent.
        env = {"VAULT_ADDR": s.addr, "VAULT_CACERT": s.ca, "VAULT_TOKEN": root}
        p = subprocess.run([COFFER_BIN, "read", "-field=user", "app/db"], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], **env})
        self.assertEqual((p.returncode, p.stdout), (0, "bob"), p.stderr)
        # Without the CA the server certificate is not trusted.
        p = subprocess.run([COFFER_BIN, "read", "app/db"], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "VAULT_ADDR": s.addr, "VAULT_TOKEN": root})
        self.assertEqual(p.returncode, 2)
        self.assertIn("TLS handshake", p.stderr)

        s.cli("operator", "rotate", token=root, check=True)
        p = s.cli("read", "-format=json", "sys/key-status", token=root, check=True)
        self.assertEqual(json.loads(p.stdout)["data"]["term"], 2)
        s.cli("secrets", "disable", "app", token=root, check=True)
        self.assertEqual(s.cli("read", "app/db", token=root).returncode, 2)
        s.cli("operator", "seal", token=root, check=True)
        self.assertEqual(s.cli("status").returncode, 2)

    def test_unknown_commands_and_flags_suggest_the_closest_and_exit_1(self):
        def run(*args):
            return subprocess.run([COFFER_BIN, *args], capture_output=True, text=True, timeout=30)
        for args, want in ((["wirte", "secret/x"], 'unknown command "wirte"; did you mean "write"?'),
                           (["operator", "unsael"], 'unknown command "unsael"; did you mean "unseal"?'),
                           (["kv", "gte", "secret/x"], 'unknown command "gte"; did you mean "get"?'),
                           (["read", "-fromat=json", "x"], "unknown flag -fromat; did you mean -format?"),
                           (["zzzzzz"], 'unknown command "zzzzzz"\n')):
            p = run(*args)
            self.assertEqual(p.returncode, 1, (args, p.stderr))
            self.assertIn(want, p.stderr)
        # The version, however it is asked for.
        for flag in ("version", "-version", "--version"):
            p = run(flag)
            self.assertEqual((p.returncode, p.stdout.startswith("Coffer v")), (0, True), (flag, p))

    def test_write_force_init_status_and_detailed_secrets_list(self):
        s = self.server().start()
        # operator init -status: 2 before init, 0 after, 1 when the server cannot be reached.
        p = s.cli("operator", "init", "-status")
        self.assertEqual((p.returncode, p.stdout.strip()), (2, "Coffer is not initialized"), p.stderr)
        s.init_and_unseal()
        p = s.cli("operator", "init", "-status")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "Coffer is initialized"), p.stderr)
        p = s.cli("operator", "init", "-status", env_extra={"COFFER_ADDR": "https://127.0.0.1:1"})
        self.assertEqual(p.returncode, 1, p.stderr)
        # write without data is refused unless forced, as vault.
        p = s.cli("write", "sys/rotate", token=s.root)
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "Error: Must supply data or use -force"))
        p = s.cli("write", "-f", "sys/rotate", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        st, body, _ = s.request("GET", "sys/key-status", s.root)
        self.assertEqual(body["data"]["term"], 2)
        # secrets list -detailed: Vault's extra columns.
        s.cli("secrets", "enable", "-path=kv2", "-version=2", "kv", token=s.root, check=True)
        p = s.cli("secrets", "list", "-detailed", token=s.root, check=True)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["Path", "Plugin", "Accessor", "Default", "TTL", "Max",
                                            "TTL", "Local", "Seal", "Wrap", "Options", "Description",
                                            "UUID"])
        kv2 = next(line for line in lines if line.startswith("kv2/"))
        self.assertIn("map[version:2]", kv2)
        self.assertRegex(kv2, r"[0-9a-f]{8}-[0-9a-f]{4}-")

    def test_the_vault_token_file_is_read_when_coffer_has_none(self):
        s = self.server().start()
        s.init_and_unseal()
        home = os.path.join(self.tmp, "home")
        os.makedirs(home)
        with open(os.path.join(home, ".vault-token"), "w") as f:
            f.write(s.root + "\n")
        p = s.cli("token", "lookup", "-format=json", env_extra={"HOME": home})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"]["policies"], ["root"])
        # ~/.coffer-token, when present, comes first.
        with open(os.path.join(home, ".coffer-token"), "w") as f:
            f.write("hvs.notarealtoken000000000\n")
        p = s.cli("token", "lookup", env_extra={"HOME": home})
        self.assertEqual(p.returncode, 2, p.stdout)

    def test_connection_errors_say_what_to_do(self):
        tls = self.server().start()
        plain = self.server(tls=False).start()

        def status(addr, ca=None):
            env = {"PATH": os.environ["PATH"], "COFFER_ADDR": addr}
            if ca:
                env["COFFER_CACERT"] = ca
            p = subprocess.run([COFFER_BIN, "status"], capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(p.returncode, 1, p)
            return p.stderr
        self.assertIn("give the CA certificate that signed the server's certificate with -ca-cert or "
                      "COFFER_CACERT", status(tls.addr))
        self.assertIn(f"{tls.cert} is not the CA that signed the server's certificate",
                      status(tls.addr, ca=tls.cert))
        self.assertIn("uses TLS, give an https:// address", status(tls.addr.replace("https:", "http:")))
        self.assertIn("answers plain HTTP; give an http:// address",
                      status(plain.addr.replace("http:", "https:")))

    def test_dev_server(self):
        port = free_port()
        proc = subprocess.Popen([COFFER_BIN, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out = ""
            deadline = time.time() + 20
            while "Coffer server started" not in out and time.time() < deadline:
                out += proc.stdout.readline()
            root = re.search(r"Root Token: (\S+)", out).group(1)
            self.assertIn(f"http://127.0.0.1:{port}", out)
            env = {"PATH": os.environ["PATH"], "COFFER_ADDR": f"http://127.0.0.1:{port}", "COFFER_TOKEN": root}
            # secret/ is kv version 2, as in Vault's dev server: a plain write is refused with
            # Vault's hint, `kv put` works.
            p = subprocess.run([COFFER_BIN, "write", "secret/hello", "who=world"], capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 2)
            self.assertIn("versioned K/V", p.stderr)
            p = subprocess.run([COFFER_BIN, "kv", "put", "secret/hello", "who=world"], capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = subprocess.run([COFFER_BIN, "kv", "get", "-field=who", "secret/hello"], capture_output=True, text=True, env=env)
            self.assertEqual(p.stdout, "world", p.stderr)
            p = subprocess.run([COFFER_BIN, "read", "-field=data", "secret/data/hello"], capture_output=True, text=True, env=env)
            self.assertEqual(json.loads(p.stdout), {"who": "world"}, p.stderr)
            p = subprocess.run([COFFER_BIN, "status"], capture_output=True, text=True, env=env)
            self.assertEqual(p.returncode, 0)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        self.assertEqual(proc.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
