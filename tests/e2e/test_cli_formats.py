"""The CLI's output formats and helpers (issue 17): -format=table|json|yaml|yml|pretty|raw and
COFFER_FORMAT/VAULT_FORMAT on the read-like commands, -field with each format, -output-curl-string
and `coffer print token`, `server -dev -dev-root-token-id` (and the root token stored in
~/.coffer-token), and `coffer completion bash|zsh`."""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from harness import COFFER_BIN, ServerTest, free_port

try:
    import yaml  # python3-yaml (scripts/install-deps.sh)
except ImportError:  # pragma: no cover
    yaml = None

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\nabc==\n-----END CERTIFICATE-----"
# Strings YAML would read as something else unless quoted, and strings that need quoting.
TRICKY = {
    "pem": PEM, "trailing_nl": "line one\nline two\n", "bool": "true", "yes": "yes", "num": "123",
    "float": "1.5", "octal": "0755", "null": "null", "tilde": "~", "empty": "", "lead": " lead",
    "colon": "a: b", "hash": "#x", "date": "2026-01-02", "stamp": "2026-01-02T03:04:05Z",
    "dash": "- x", "quote": "it's", "dquote": 'say "hi"', "brace": "{a}", "star": "*x",
    "tab": "a\tb", "unicode": "caf\u00e9", "sexagesimal": "1:20", "plain": "hello world",
}


def strip_volatile(v):
    """A response without the fields that differ between two requests."""
    if isinstance(v, dict):
        return {k: strip_volatile(x) for k, x in v.items() if k not in ("request_id", "server_time_utc")}
    if isinstance(v, list):
        return [strip_volatile(x) for x in v]
    return v


class Formats(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()
        self.s.init_and_unseal()
        self.root = self.s.root
        self.cli("secrets", "enable", "-path=kv", "kv", check=True)
        self.cli("secrets", "enable", "-path=secret", "-version=2", "kv", check=True)
        self.cli("write", "kv/tricky", "-", stdin=json.dumps(TRICKY), check=True)
        self.cli("kv", "put", "secret/app", "user=alice", "pem=" + PEM, check=True)

    def cli(self, *args, **kw):
        kw.setdefault("token", self.root)
        return self.s.cli(*args, **kw)

    def formats(self, *args):
        """The command's output in json and yaml, both parsed."""
        pj = self.cli(*args, "-format=json", check=True)
        py = self.cli(*args, "-format=yaml", check=True)
        return pj.stdout, json.loads(pj.stdout), py.stdout

    def assert_yaml_equals_json(self, *args):
        text, parsed, ytext = self.formats(*args)
        if yaml is not None:
            self.assertEqual(strip_volatile(yaml.safe_load(ytext)), strip_volatile(parsed),
                             f"{args}:\n{ytext}")
        return text, parsed, ytext

    def test_json_is_indented_and_yaml_parses_to_the_same(self):
        text, parsed, ytext = self.assert_yaml_equals_json("read", "kv/tricky")
        self.assertTrue(text.startswith('{\n  "'), text)  # Go's MarshalIndent, two spaces
        self.assertIn('\n    "bool": "true"', text)
        self.assertEqual(parsed["data"], TRICKY)
        # vault's yaml: keys sorted, PEM as a literal block, strings quoted where YAML needs it.
        self.assertIn("  pem: |-\n    -----BEGIN CERTIFICATE-----\n    MIIBszCCAVmgAwIBAgIUQ\n", ytext)
        self.assertIn('  bool: "true"\n', ytext)
        self.assertIn('  empty: ""\n', ytext)
        self.assertIn("  plain: hello world\n", ytext)
        self.assertLess(ytext.index("  bool:"), ytext.index("  colon:"))
        self.assertFalse(ytext.endswith("\n\n"))
        # yml is yaml.
        self.assertEqual(self.cli("read", "-format=yml", "kv/tricky", check=True).stdout.count("\n"),
                         ytext.count("\n"))
        # The other read-like commands.
        for args in (("kv", "get", "secret/app"), ("kv", "metadata", "get", "secret/app"),
                     ("kv", "list", "secret/"), ("list", "kv/"), ("token", "lookup"),
                     ("status",), ("secrets", "list"), ("auth", "list"), ("policy", "read", "default"),
                     ("policy", "list"), ("token", "capabilities", "kv/tricky"), ("read", "sys/health")):
            text, parsed, _ = self.assert_yaml_equals_json(*args)
            self.assertIn("\n", text.strip(), args)
        _, keys, _ = self.formats("list", "kv/")
        self.assertEqual(keys, ["tricky"])

    def test_pretty(self):
        out = self.cli("kv", "get", "-format=pretty", "secret/app", check=True).stdout
        # An outline: nested objects indented three spaces, keys sorted, values aligned.
        self.assertIn("\ndata:\n   data:\n", "\n" + out)
        self.assertRegex(out, r"\n      user:\s+alice\n")
        self.assertRegex(out, r"\n      pem:\s+-----BEGIN CERTIFICATE-----\n\s+MIIBszCCAVmgAwIBAgIUQ\n")
        self.assertLess(out.index("data:"), out.index("lease_duration:"))
        out = self.cli("list", "-format=pretty", "kv/", check=True).stdout
        self.assertEqual(out, "tricky\n")

    def test_field_with_each_format(self):
        for fmt, want in (("table", "true"), ("raw", "true"), ("pretty", "true"), ("json", '"true"'),
                          ("yaml", '"true"\n')):
            p = self.cli("read", f"-format={fmt}", "-field=bool", "kv/tricky", check=True)
            self.assertEqual(p.stdout, want, fmt)
        p = self.cli("kv", "get", "-format=yaml", "-field=pem", "secret/app", check=True)
        self.assertTrue(p.stdout.startswith("|-\n  -----BEGIN"), p.stdout)
        if yaml is not None:
            self.assertEqual(yaml.safe_load(p.stdout), PEM)
        p = self.cli("read", "-field=request_id", "kv/tricky", check=True)  # the envelope's
        self.assertRegex(p.stdout, r"^[0-9a-f-]{36}$")
        p = self.cli("kv", "get", "-format=json", "-field=user", "secret/app", check=True)
        self.assertEqual(json.loads(p.stdout), "alice")
        p = self.cli("token", "lookup", "-format=json", "-field=policies", check=True)
        self.assertEqual(json.loads(p.stdout), ["root"])
        p = self.cli("token", "create", "-format=yaml", "-field=token_policies", "-policy=default",
                     check=True)
        self.assertEqual(p.stdout, "- default\n")

    def test_format_from_the_environment_and_invalid_formats(self):
        p = self.cli("read", "kv/tricky", env_extra={"VAULT_FORMAT": "json"}, check=True)
        self.assertEqual(json.loads(p.stdout)["data"]["num"], "123")
        p = self.cli("read", "kv/tricky", env_extra={"VAULT_FORMAT": "json", "COFFER_FORMAT": "yaml"},
                     check=True)
        self.assertIn("\n  num: \"123\"\n", p.stdout)
        p = self.cli("read", "-format=table", "kv/tricky", env_extra={"VAULT_FORMAT": "json"}, check=True)
        self.assertRegex(p.stdout, r"\nnum\s+123\n")  # the flag wins
        for args, env in ((("read", "-format=foo", "kv/tricky"), {}), (("status",), {"VAULT_FORMAT": "foo"}),
                          (("kv", "get", "-format=foo", "secret/app"), {})):
            p = self.cli(*args, env_extra=env)
            self.assertEqual(p.returncode, 1, args)
            self.assertEqual(p.stderr, "Invalid output format: foo\n", args)
            self.assertEqual(p.stdout, "", args)
        # raw: the response body as is, for `read` only (as vault's).
        p = self.cli("read", "-format=raw", "kv/tricky", check=True)
        self.assertEqual(json.loads(p.stdout)["data"], TRICKY)
        p = self.cli("list", "-format=raw", "kv/")
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not support the -format=raw option", p.stderr)

    def run_curl(self, line, home=None):
        """Runs a printed curl command with `coffer` on PATH and the token in the environment."""
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        link = os.path.join(bindir, "coffer")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(COFFER_BIN), link)
        env = {"PATH": bindir + ":" + os.environ["PATH"], "COFFER_TOKEN": self.root,
               "HOME": home or self.tmp}
        p = subprocess.run(["bash", "-c", line + " -s"], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_output_curl_string(self):
        p = self.cli("kv", "get", "-output-curl-string", "secret/app", check=True)
        line = p.stdout.strip()
        self.assertEqual(p.stdout.count("\n"), 1, p.stdout)
        self.assertEqual(line, f"curl --cacert '{self.s.ca}' -H \"X-Vault-Request: true\" "
                               f"-H \"X-Vault-Token: $(coffer print token)\" {self.s.addr}/v1/secret/data/app")
        got = json.loads(self.run_curl(line))
        want = json.loads(self.cli("kv", "get", "-format=json", "secret/app", check=True).stdout)
        self.assertEqual(got["data"], want["data"])

        # A write: -X PUT and the body; running it writes.
        p = self.cli("write", "-output-curl-string", "kv/new", "a=b'c", check=True)
        self.assertIn("-X PUT ", p.stdout)
        self.assertIn("""-d '{"a":"b'"'"'c"}' """, p.stdout)
        self.assertEqual(self.cli("read", "-field=a", "kv/new").returncode, 2)  # nothing sent
        self.run_curl(p.stdout.strip())
        self.assertEqual(self.cli("read", "-field=a", "kv/new", check=True).stdout, "b'c")

        # LIST is GET with ?list=true, as vault prints it.
        p = self.cli("list", "-output-curl-string", "kv/", check=True)
        self.assertIn("/v1/kv/?list=true'", p.stdout)
        self.assertEqual(json.loads(self.run_curl(p.stdout.strip()))["data"]["keys"], ["new", "tricky"])

        # Wrapping, -tls-skip-verify; and `status`, which is not a secret.
        p = self.cli("read", "-output-curl-string", "-wrap-ttl=60s", "-tls-skip-verify", "kv/new",
                     check=True)
        self.assertTrue(p.stdout.startswith("curl --insecure "), p.stdout)
        self.assertIn("-H 'X-Vault-Wrap-TTL: 60s' ", p.stdout)
        self.assertIn("wrap_info", self.run_curl(p.stdout.strip()))
        p = self.cli("status", "-output-curl-string")
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.strip().endswith("/v1/sys/seal-status"), p.stdout)

    def test_print_token(self):
        self.assertEqual(self.cli("print", "token", check=True).stdout, self.root + "\n")
        home = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(home, ".coffer-token"), "w") as f:
            f.write("hvs.fromfile\n")
        p = self.s.cli("print", "token", env_extra={"HOME": home}, check=True)
        self.assertEqual(p.stdout, "hvs.fromfile\n")


class DevServer(ServerTest):
    def start_dev(self, *flags, env_extra=None):
        port = free_port()
        home = tempfile.mkdtemp(dir=self.tmp)
        env = {"PATH": os.environ["PATH"], "HOME": home, **(env_extra or {})}
        proc = subprocess.Popen([COFFER_BIN, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
                                 *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.addCleanup(self.stop, proc)
        out = ""
        deadline = time.time() + 20
        while "Coffer server started" not in out and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        self.assertIn("Coffer server started", out)
        return f"http://127.0.0.1:{port}", home, out

    @staticmethod
    def stop(proc):
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()

    def coffer(self, addr, home, *args, token=None):
        env = {"PATH": os.environ["PATH"], "HOME": home, "COFFER_ADDR": addr}
        if token:
            env["COFFER_TOKEN"] = token
        return subprocess.run([COFFER_BIN, *args], capture_output=True, text=True, env=env, timeout=60)

    def test_dev_root_token_id(self):
        addr, home, out = self.start_dev("-dev-root-token-id=myroot")
        self.assertIn("Root Token: myroot\n", out)
        p = self.coffer(addr, home, "token", "lookup", "-format=json", token="myroot")
        self.assertEqual(p.returncode, 0, p.stderr)
        data = json.loads(p.stdout)["data"]
        self.assertEqual(data["id"], "myroot")
        self.assertEqual(data["policies"], ["root"])
        # Stored for the CLI, as vault's dev server does (0600).
        path = os.path.join(home, ".coffer-token")
        with open(path) as f:
            self.assertEqual(f.read(), "myroot\n")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        p = self.coffer(addr, home, "kv", "put", "secret/x", "a=1")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.coffer(addr, home, "token", "lookup", "-format=json", token="not-it")
        self.assertEqual(p.returncode, 2)

    def test_dev_root_token_id_from_the_environment(self):
        addr, home, out = self.start_dev(env_extra={"VAULT_DEV_ROOT_TOKEN_ID": "envroot"})
        self.assertIn("Root Token: envroot\n", out)
        p = self.coffer(addr, home, "token", "lookup", token="envroot")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_root_token_id(self):
        p = subprocess.run([COFFER_BIN, "server", "-dev", f"-dev-listen-address=127.0.0.1:{free_port()}",
                            "-dev-root-token-id=has space"], capture_output=True, text=True, timeout=30,
                           env={"PATH": os.environ["PATH"], "HOME": self.tmp})
        self.assertEqual(p.returncode, 1)
        self.assertIn("printable ASCII", p.stderr)


class Completion(unittest.TestCase):
    def complete(self, *words):
        """COMPREPLY for the words typed, the last one being completed."""
        words_sh = " ".join(f"'{w}'" for w in words)
        script = (f'source <("{COFFER_BIN}" completion bash) || exit 9\n'
                  f"COMP_WORDS=({words_sh}); COMP_CWORD={len(words) - 1}\n"
                  f'_coffer coffer "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"\n'
                  'echo "${COMPREPLY[@]}"\n')
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def test_bash(self):
        self.assertEqual(self.complete("coffer", "op"), ["operator"])
        self.assertEqual(self.complete("coffer", "operator", "un"), ["unseal"])
        self.assertEqual(self.complete("coffer", "kv", "metadata", "g"), ["get"])
        self.assertIn("generate-root", self.complete("coffer", "operator", ""))
        self.assertEqual(self.complete("coffer", "read", "-form"), ["-format"])
        self.assertIn("-output-curl-string", self.complete("coffer", "-format=json", "kv", "get", "-o"))
        self.assertEqual(self.complete("coffer", "read", "-format=y"), ["-format=yaml"])
        self.assertEqual(self.complete("coffer", "server", "-dev-r"), ["-dev-root-token-id"])
        self.assertIn("completion", self.complete("coffer", "c"))
        # Called by hand without arguments, as some tests of completion scripts do.
        script = (f'source <("{COFFER_BIN}" completion bash); COMP_WORDS=(coffer op); COMP_CWORD=1; '
                  '_coffer; echo "${COMPREPLY[@]}"; complete -p coffer')
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.splitlines()[0], "operator")
        self.assertIn("-F _coffer coffer", p.stdout)

    def test_zsh(self):
        p = subprocess.run([COFFER_BIN, "completion", "zsh"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("#compdef coffer\n"))
        if not shutil.which("zsh"):
            self.skipTest("zsh is not installed")
        with tempfile.NamedTemporaryFile("w", suffix=".zsh") as f:
            f.write(p.stdout)
            f.flush()
            z = subprocess.run(["zsh", "-n", f.name], capture_output=True, text=True, timeout=30)
            self.assertEqual(z.returncode, 0, z.stderr)

    def test_unknown_shell(self):
        p = subprocess.run([COFFER_BIN, "completion", "fish"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
