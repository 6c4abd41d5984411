"""Secrets typed at a terminal are not echoed, and the terminal comes back as it was, also after
Ctrl-C (through a real pseudo-terminal, Python's pty); `coffer status` exits 1, not 2 ("sealed"),
when the server cannot be reached.
"""
import os
import pty
import select
import signal
import subprocess
import termios
import time
import unittest

from harness import COFFER_BIN, ServerTest, free_port


def run_in_pty(args, env, typed, interrupt=False):
    """Runs args on a new pseudo-terminal; types `typed` after the prompt (or Ctrl-C). Returns
    (everything the terminal showed, exit status, whether ECHO is on afterwards)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(COFFER_BIN, [COFFER_BIN, *args], env)
    out = b""
    deadline = time.time() + 20
    while b"(will be hidden)" not in out and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            out += os.read(fd, 4096)
    time.sleep(0.2)  # the program has turned echo off once it waits on the line
    os.write(fd, b"\x03" if interrupt else typed.encode() + b"\n")
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    echo_on = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace"), status, echo_on


class Prompts(ServerTest):
    def env(self, s, token=None):
        e = {"PATH": os.environ.get("PATH", ""), "HOME": self.tmp, "COFFER_ADDR": s.addr,
             "COFFER_CACERT": s.ca}
        if token:
            e["COFFER_TOKEN"] = token
        return e

    def test_unseal_and_login_prompts_echo_nothing(self):
        s = self.server().start()
        status, body, _ = s.request("PUT", "sys/init", body={"secret_shares": 1, "secret_threshold": 1})
        key, root = body["keys"][0], body["root_token"]
        out, st, echo_on = run_in_pty(["operator", "unseal"], self.env(s), key)
        self.assertTrue(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, out)
        self.assertIn("Unseal Key (will be hidden):", out)
        self.assertNotIn(key, out)
        self.assertRegex(out, r"Sealed\s+false")
        self.assertTrue(echo_on, "the terminal was left without echo")

        out, st, echo_on = run_in_pty(["login", "-no-store"], self.env(s), root)
        self.assertTrue(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, out)
        self.assertIn("Token (will be hidden):", out)
        # The token is printed in the result table as vault does, but never echoed as typed.
        self.assertNotIn("hidden): " + root, out)
        self.assertTrue(echo_on)

    def test_ctrl_c_at_the_prompt_restores_the_terminal(self):
        s = self.server().start()
        s.request("PUT", "sys/init", body={"secret_shares": 1, "secret_threshold": 1})
        out, st, echo_on = run_in_pty(["operator", "unseal"], self.env(s), "", interrupt=True)
        self.assertTrue(os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGINT, (out, st))
        self.assertTrue(echo_on, "Ctrl-C left the terminal without echo")

    def test_status_of_an_unreachable_server_is_an_error_not_sealed(self):
        env = {"PATH": os.environ.get("PATH", ""), "HOME": self.tmp,
               "COFFER_ADDR": f"https://127.0.0.1:{free_port()}"}
        p = subprocess.run([COFFER_BIN, "status"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        # A plain HTTP server spoken to in TLS: an error too.
        s = self.server(tls=False).start()
        env["COFFER_ADDR"] = s.addr.replace("http://", "https://")
        p = subprocess.run([COFFER_BIN, "status"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
