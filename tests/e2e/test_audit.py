"""Audit log: one request and one response line per request in Vault's layout; string values
HMAC'd with the device's salt (sys/audit-hash gives the same hash); no secret or token in the
audit file or the server log; fail closed when the file cannot be written; reopen on SIGHUP."""
import json
import os
import shutil
import signal
import stat
import time
import unittest

from harness import ServerTest


class Audit(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(tls=False, log_level="trace").start()
        self.s.init_and_unseal(1, 1)
        self.assertEqual(self.s.request("POST", "sys/mounts/secret", self.s.root, {"type": "kv"})[0], 204)

    def enable(self, name, path):
        st, body, _ = self.s.request("PUT", f"sys/audit/{name}", self.s.root,
                                     {"type": "file", "options": {"file_path": path}})
        self.assertEqual(st, 204, body)

    def lines(self, path):
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]

    def test_entries_are_hmacd_and_match_audit_hash(self):
        s = self.s
        log = os.path.join(self.tmp, "audit.log")
        self.enable("file", log)
        self.assertEqual(stat.S_IMODE(os.stat(log).st_mode), 0o600)
        secret = "audit-canary-93ab7f"
        self.assertEqual(s.request("PUT", "secret/db", s.root, {"password": secret, "n": 5})[0], 204)
        st, body, _ = s.request("GET", "secret/db", s.root)
        self.assertEqual(body["data"]["password"], secret)
        st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": ["default"]})
        child = body["auth"]["client_token"]
        s.request("GET", "secret/db", "hvs.notavalidtoken000000000")
        s.stop()

        raw = open(log).read()
        for needle in (secret, s.root, child, "hvs.notavalidtoken000000000"):
            self.assertNotIn(needle, raw)
        self.assertNotIn(secret, open(s.log_path).read())
        self.assertNotIn(s.root, open(s.log_path).read())
        entries = [e for e in self.lines(log) if e["request"]["path"] != "sys/audit/test"]
        write_req = next(e for e in entries if e["type"] == "request" and e["request"]["path"] == "secret/db"
                         and e["request"]["operation"] == "create")
        for key in ("time", "type", "auth", "request", "error"):
            self.assertIn(key, write_req)
        for key in ("id", "operation", "mount_type", "client_token", "path", "data", "remote_address"):
            self.assertIn(key, write_req["request"])
        self.assertEqual(write_req["request"]["mount_type"], "kv")
        self.assertEqual(write_req["request"]["remote_address"], "127.0.0.1")
        self.assertEqual(write_req["request"]["data"]["n"], 5, "numbers are not hashed")
        self.assertTrue(write_req["request"]["data"]["password"].startswith("hmac-sha256:"))
        self.assertEqual(write_req["auth"]["policies"], ["root"])
        # Every request has a response line with the same id.
        ids = {e["request"]["id"] for e in entries if e["type"] == "request"}
        rids = {e["request"]["id"] for e in entries if e["type"] == "response"}
        self.assertTrue(ids - rids <= {e["request"]["id"] for e in entries if e["type"] == "request" and e["error"]})
        read_resp = next(e for e in entries if e["type"] == "response" and e["request"]["operation"] == "read"
                         and e["request"]["path"] == "secret/db" and e["error"] == "")
        hashed = read_resp["response"]["data"]["password"]
        token_resp = next(e for e in entries if e["type"] == "response" and e["request"]["path"] == "auth/token/create")
        self.assertTrue(token_resp["response"]["auth"]["client_token"].startswith("hmac-sha256:"))
        denied = next(e for e in entries if e["type"] == "request" and e["error"] == "permission denied")
        self.assertTrue(denied["request"]["client_token"].startswith("hmac-sha256:"))

        s.start()
        s.unseal(1)
        st, body, _ = s.request("PUT", "sys/audit-hash/file", s.root, {"input": secret})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["data"]["hash"], hashed)
        st, body, _ = s.request("PUT", "sys/audit-hash/file", s.root, {"input": s.root})
        self.assertEqual(body["data"]["hash"], write_req["request"]["client_token"])

    def test_fail_closed_and_reopen_on_sighup(self):
        s = self.s
        d = os.path.join(self.tmp, "auditdir")
        os.mkdir(d)
        log = os.path.join(d, "audit.log")
        self.enable("file", log)
        self.assertEqual(s.request("PUT", "secret/x", s.root, {"v": "before"})[0], 204)
        # Log rotation gone wrong: the folder disappears and a reopen cannot create the file.
        shutil.rmtree(d)
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        st, body, _ = s.request("PUT", "secret/x", s.root, {"v": "after"})
        self.assertEqual(st, 500, body)
        self.assertIn("no audit device could record the request", body["errors"][0])
        self.assertEqual(s.request("GET", "secret/x", s.root)[0], 500)
        # The folder is back: SIGHUP reopens, requests flow again, and the refused write had no effect.
        os.mkdir(d)
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        st, body, _ = s.request("GET", "secret/x", s.root)
        self.assertEqual((st, body["data"]["v"]), (200, "before"))
        self.assertTrue(any(e["request"]["path"] == "secret/x" for e in self.lines(log)))

    def test_one_working_device_is_enough_and_a_broken_one_is_not_enabled(self):
        s = self.s
        st, body, _ = s.request("PUT", "sys/audit/full", s.root, {"type": "file", "options": {"file_path": "/dev/full"}})
        self.assertEqual(st, 400)
        self.assertIn("failed its test write", body["errors"][0])
        self.assertEqual(s.request("GET", "sys/audit", s.root)[1]["data"], {})
        good = os.path.join(self.tmp, "good.log")
        bad_dir = os.path.join(self.tmp, "bad")
        os.mkdir(bad_dir)
        self.enable("good", good)
        self.enable("bad", os.path.join(bad_dir, "b.log"))
        shutil.rmtree(bad_dir)
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertEqual(s.request("PUT", "secret/y", s.root, {"v": "1"})[0], 204)
        self.assertTrue(any(e["request"].get("path") == "secret/y" for e in self.lines(good)))

    def test_log_raw_and_elide_list_responses(self):
        s = self.s
        raw_log = os.path.join(self.tmp, "raw.log")
        elide_log = os.path.join(self.tmp, "elide.log")
        st, body, _ = s.request("PUT", "sys/audit/raw", s.root,
                                {"type": "file", "options": {"file_path": raw_log, "log_raw": "true", "hmac_accessor": "false"}})
        self.assertEqual(st, 204, body)
        self.enable("elide", elide_log)
        st, body, _ = s.request("PUT", "sys/audit/elided", s.root,
                                {"type": "file", "options": {"file_path": elide_log + "2", "elide_list_responses": True}})
        self.assertEqual(st, 204, body)
        s.request("PUT", "secret/a", s.root, {"v": "plain-value"})
        s.request("PUT", "secret/b", s.root, {"v": "x"})
        st, body, _ = s.request("LIST", "secret", s.root)
        self.assertEqual(body["data"]["keys"], ["a", "b"])
        raw = open(raw_log).read()
        self.assertIn("plain-value", raw, "log_raw writes values as they are")
        self.assertIn(s.root, raw)
        self.assertNotIn("plain-value", open(elide_log).read())
        listed = [e for e in self.lines(elide_log + "2") if e["type"] == "response" and e["request"]["operation"] == "list"]
        self.assertEqual(listed[-1]["response"]["data"]["keys"], 2, "list responses are elided to their count")

    def test_device_management(self):
        s = self.s
        self.assertEqual(s.request("GET", "sys/audit", s.root)[1]["data"], {})
        log = os.path.join(self.tmp, "x.log")
        st, body, _ = s.request("PUT", "sys/audit/file", s.root,
                                {"type": "file", "options": {"file_path": log, "mode": "0640", "prefix": "AUDIT:"}})
        self.assertEqual(st, 204, body)
        self.assertEqual(stat.S_IMODE(os.stat(log).st_mode), 0o640)
        self.assertEqual(s.request("PUT", "sys/audit/bad", s.root, {"type": "syslog", "options": {}})[0], 400)
        self.assertEqual(s.request("PUT", "sys/audit/bad", s.root, {"type": "file", "options": {}})[0], 400)
        self.assertEqual(s.request("PUT", "sys/audit/bad", s.root, {"type": "file", "options": {"file_path": log, "mode": "999"}})[0], 400)
        st, body, _ = s.request("GET", "sys/audit", s.root)
        self.assertEqual(body["data"]["file/"]["type"], "file")
        # Listing and changing devices needs sudo.
        st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": ["default"]})
        self.assertEqual(s.request("GET", "sys/audit", body["auth"]["client_token"])[0], 403)
        self.assertEqual(s.request("DELETE", "sys/audit/file", s.root)[0], 204)
        self.assertTrue(open(log).read().startswith("AUDIT:{"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
