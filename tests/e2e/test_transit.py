"""Transit against a real TLS server: signatures checked by the openssl CLI with the exported
public keys, ciphertexts opened and made by an independent AEAD implementation (Python's
`cryptography`) from the exported key (Vault's layout, both ways), and `coffer transit`
encrypt/decrypt/rewrap on files and rewrap-all over a folder of Kubernetes Secret manifests."""
import base64
import json
import os
import stat
import subprocess
import unittest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from harness import ServerTest


def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


class Transit(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()
        self.s.init_and_unseal(shares=1, threshold=1)
        self.root = self.s.root
        self.api("POST", "sys/mounts/transit", {"type": "transit"}, 204)

    def api(self, method, path, body=None, want=200):
        status, resp, text = self.s.request(method, path, token=self.root, body=body)
        self.assertEqual(status, want, f"{method} {path}: {text}")
        return resp

    def transit(self, *args, stdin=None, code=0):
        p = self.s.cli("transit", *args, token=self.root, stdin=stdin)
        self.assertEqual(p.returncode, code, f"coffer transit {' '.join(args)}: {p.stdout} {p.stderr}")
        return p

    def write(self, name, data, mode=0o644):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(path, mode)
        return path

    def openssl_verify(self, args):
        return subprocess.run(["openssl", *args], capture_output=True, text=True)

    def test_signatures_verify_with_openssl_and_the_exported_public_key(self):
        msg = self.write("msg.txt", "a message worth signing\n")
        with open(msg, "rb") as f:
            data = f.read()
        for key_type, sign_body, verify_args in (
            ("ecdsa-p256", {}, ["dgst", "-sha256"]),
            ("ecdsa-p384", {"hash_algorithm": "sha2-384"}, ["dgst", "-sha384"]),
            ("rsa-2048", {"signature_algorithm": "pkcs1v15"}, ["dgst", "-sha256"]),
            ("rsa-3072", {"signature_algorithm": "pss"},
             ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-2"]),
            ("ed25519", {}, None),
        ):
            with self.subTest(key_type):
                name = "sig-" + key_type
                self.api("POST", f"transit/keys/{name}", {"type": key_type})
                sig = self.api("POST", f"transit/sign/{name}", dict(sign_body, input=b64(data)))["data"]["signature"]
                self.assertTrue(sig.startswith("vault:v1:"), sig)
                sig_file = self.write(name + ".sig", base64.b64decode(sig.split(":", 2)[2]))
                pub = self.api("GET", f"transit/export/public-key/{name}")["data"]["keys"]["1"]
                if key_type == "ed25519":
                    der = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(pub)
                    pub = "-----BEGIN PUBLIC KEY-----\n" + b64(der) + "\n-----END PUBLIC KEY-----\n"
                pub_file = self.write(name + ".pub", pub)
                if verify_args is None:
                    args = ["pkeyutl", "-verify", "-pubin", "-inkey", pub_file, "-rawin", "-in", msg,
                            "-sigfile", sig_file]
                else:
                    args = verify_args + ["-verify", pub_file, "-signature", sig_file, msg]
                p = self.openssl_verify(args)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn("Verified", p.stdout + p.stderr)
                # A changed message fails the same check.
                other = self.write(name + ".other", data + b"!")
                bad = [a if a != msg else other for a in args]
                self.assertNotEqual(self.openssl_verify(bad).returncode, 0)
                # And Coffer's own verify agrees.
                ok = self.api("POST", f"transit/verify/{name}", dict(sign_body, input=b64(data), signature=sig))
                self.assertTrue(ok["data"]["valid"])

    def test_ciphertext_layout_interoperates_both_ways(self):
        for key_type, aead, size in (("aes256-gcm96", AESGCM, 32), ("aes128-gcm96", AESGCM, 16),
                                     ("chacha20-poly1305", ChaCha20Poly1305, 32)):
            with self.subTest(key_type):
                name = "x-" + key_type
                self.api("POST", f"transit/keys/{name}", {"type": key_type, "exportable": True})
                key = base64.b64decode(
                    self.api("GET", f"transit/export/encryption-key/{name}/1")["data"]["keys"]["1"])
                self.assertEqual(len(key), size)
                # Coffer's ciphertext opened independently: nonce(12) || ciphertext || tag(16).
                c = self.api("POST", f"transit/encrypt/{name}", {"plaintext": b64("from coffer")})["data"]["ciphertext"]
                raw = base64.b64decode(c[len("vault:v1:"):])
                self.assertEqual(aead(key).decrypt(raw[:12], raw[12:], None), b"from coffer")
                # A ciphertext made elsewhere in Vault's layout is opened by Coffer.
                nonce = os.urandom(12)
                made = "vault:v1:" + b64(nonce + aead(key).encrypt(nonce, b"from outside", None))
                plain = self.api("POST", f"transit/decrypt/{name}", {"ciphertext": made})["data"]["plaintext"]
                self.assertEqual(base64.b64decode(plain), b"from outside")

    def test_bad_input_gets_a_400_naming_the_problem(self):
        self.api("POST", "transit/keys/k")
        for body, needle in (({"ciphertext": "nope"}, "no prefix"),
                             ({"ciphertext": "vault:v1:!!!"}, "base64"),
                             ({"ciphertext": "vault:v9:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "too new"),
                             ({"ciphertext": "vault:v1:" + b64(b"x" * 40)}, "message authentication failed"),
                             ({"ciphertext": 5}, "ciphertext")):
            status, resp, text = self.s.request("POST", "transit/decrypt/k", token=self.root, body=body)
            self.assertEqual(status, 400, text)
            self.assertIn(needle, " ".join(resp["errors"]))
        status, resp, text = self.s.request("POST", "transit/encrypt/k", token=self.root,
                                            body={"plaintext": "not base64!"})
        self.assertEqual(status, 400, text)
        self.assertIn("base64", text)
        status, resp, text = self.s.request("POST", "transit/keys/k2", token=self.root,
                                            body={"type": "des"})
        self.assertEqual(status, 400, text)
        self.assertIn("unknown key type", text)
        # The server still serves.
        self.api("POST", "transit/encrypt/k", {"plaintext": b64("ok")})

    def test_cli_encrypt_decrypt_rewrap_files_and_stdin(self):
        self.api("POST", "transit/keys/files")
        src = self.write("secret.txt", "db password: hunter2\n")
        c1 = self.transit("encrypt", "files", src).stdout.strip()
        self.assertTrue(c1.startswith("vault:v1:"), c1)
        ct = self.write("secret.enc", c1 + "\n")
        self.assertEqual(self.transit("decrypt", "files", ct).stdout, "db password: hunter2\n")
        # stdin in, file out with mode 0600.
        out = os.path.join(self.tmp, "plain.out")
        self.transit("decrypt", "-out", out, "files", "-", stdin=c1)
        with open(out) as f:
            self.assertEqual(f.read(), "db password: hunter2\n")
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        self.assertTrue(self.transit("encrypt", "files", stdin="piped").stdout.startswith("vault:v1:"))
        self.api("POST", "transit/keys/files/rotate")
        c2 = self.transit("rewrap", "files", ct).stdout.strip()
        self.assertTrue(c2.startswith("vault:v2:"), c2)
        self.assertEqual(self.transit("decrypt", "files", stdin=c2).stdout, "db password: hunter2\n")
        # A wrong key name is the server's 400, exit code 2, the reason shown.
        p = self.transit("decrypt", "nokey", ct, code=2)
        self.assertIn("encryption key not found", p.stderr)

    def test_rewrap_all_rewrites_secret_manifests_in_place_keeping_their_layout(self):
        self.api("POST", "transit/keys/app")

        def enc(s):
            return self.api("POST", "transit/encrypt/app", {"plaintext": b64(s)})["data"]["ciphertext"]

        yaml_text = (
            "# database credentials, encrypted with transit/app\n"
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n"
            "type: Opaque\ndata:\n"
            f"  password: {b64(enc('hunter2'))}\n"
            f"  plain: {b64('not encrypted')}\n"
            "stringData:\n"
            f"  token: \"{enc('tok-123')}\"\n"
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: second\n"
            f"stringData:\n  key: {enc('second doc')}\n"
        )
        json_obj = {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"},
             "data": {"key": b64(enc("api-key"))}}]}
        y = self.write("manifests/db.yaml", yaml_text, 0o640)
        j = self.write("manifests/nested/api.json", json.dumps(json_obj, indent=2) + "\n")
        untouched = self.write("manifests/README", "nothing to see\n")
        env = self.write("manifests/app.env", f"DB_USER=app\nDB_PASSWORD={enc('env-secret')}\n")

        self.api("POST", "transit/keys/app/rotate")
        dry = self.transit("rewrap-all", "-dry-run", "app", os.path.join(self.tmp, "manifests")).stdout
        self.assertIn("Would rewrap 5 ciphertext(s) in 3 file(s)", dry)
        with open(y) as f:
            self.assertEqual(f.read(), yaml_text)  # a dry run changes nothing

        p = self.transit("rewrap-all", "app", os.path.join(self.tmp, "manifests"))
        self.assertIn("Rewrapped 5 ciphertext(s) in 3 file(s) to version 2", p.stdout)
        with open(y) as f:
            new_yaml = f.read()
        self.assertEqual(stat.S_IMODE(os.stat(y).st_mode), 0o640)
        # The layout is kept: comment, order, the plain value, quoting.
        self.assertTrue(new_yaml.startswith("# database credentials, encrypted with transit/app\n"))
        self.assertIn(f"  plain: {b64('not encrypted')}\n", new_yaml)
        self.assertEqual(new_yaml.count("\n"), yaml_text.count("\n"))

        def dec(c):
            r = self.api("POST", "transit/decrypt/app", {"ciphertext": c})
            return base64.b64decode(r["data"]["plaintext"]).decode()

        lines = {l.split(":", 1)[0].strip(): l.split(":", 1)[1].strip().strip('"')
                 for l in new_yaml.splitlines() if l.startswith("  ") and ":" in l}
        pw = base64.b64decode(lines["password"]).decode()
        self.assertTrue(pw.startswith("vault:v2:"), pw)
        self.assertEqual(dec(pw), "hunter2")
        self.assertTrue(lines["token"].startswith("vault:v2:"))
        self.assertEqual(dec(lines["token"]), "tok-123")
        self.assertEqual(dec(lines["key"]), "second doc")
        with open(j) as f:
            jd = json.load(f)
        c = base64.b64decode(jd["items"][0]["data"]["key"]).decode()
        self.assertTrue(c.startswith("vault:v2:"))
        self.assertEqual(dec(c), "api-key")
        with open(untouched) as f:
            self.assertEqual(f.read(), "nothing to see\n")
        with open(env) as f:
            env_lines = f.read().splitlines()
        self.assertEqual(env_lines[0], "DB_USER=app")
        self.assertTrue(env_lines[1].startswith("DB_PASSWORD=vault:v2:"), env_lines[1])
        self.assertEqual(dec(env_lines[1].split("=", 1)[1]), "env-secret")
        # A second run finds everything current.
        again = self.transit("rewrap-all", "app", os.path.join(self.tmp, "manifests")).stdout
        self.assertIn("Rewrapped 0 ciphertext(s) in 0 file(s) to version 2; 5 already current", again)


if __name__ == "__main__":
    unittest.main()
