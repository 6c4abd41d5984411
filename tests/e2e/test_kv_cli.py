"""`coffer kv` against a real TLS server: put/get/patch/list/delete/undelete/destroy/rollback and
metadata get/put/delete on a kv version 2 mount (with -mount=, -version=, -versions=, -cas=,
-method=, -field=, -format=json, key=@file and key=-), the same verbs on a version 1 mount, the
version 2 only verbs refused there, and enable-versioning turning version 1 data into version 1
of each secret."""
import json
import os
import unittest

from harness import ServerTest


class KvCli(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()
        self.s.init_and_unseal(shares=1, threshold=1)
        self.root = self.s.root
        for path, body in (("secret", {"type": "kv", "options": {"version": "2"}}), ("kv1", {"type": "kv"})):
            status, resp, _ = self.s.request("POST", "sys/mounts/" + path, token=self.root, body=body)
            self.assertEqual(status, 204, resp)

    def kv(self, *args, stdin=None, code=0):
        p = self.s.cli("kv", *args, token=self.root, stdin=stdin)
        self.assertEqual(p.returncode, code, f"coffer kv {' '.join(args)}: {p.stdout} {p.stderr}")
        return p

    def get_json(self, *args):
        return json.loads(self.kv("get", "-format=json", *args).stdout)

    def test_version2_workflow(self):
        blob = os.path.join(self.tmp, "blob.txt")
        with open(blob, "w") as f:
            f.write("line1\nline2\n")

        # put: -mount= and the mount in the path; @file and - (stdin); the new version's metadata.
        p = self.kv("put", "-mount=secret", "app/db", "user=bob", "pass=-", stdin="s3cret")
        self.assertIn("=== Secret Path ===\nsecret/data/app/db\n", p.stdout)
        self.assertRegex(p.stdout, r"=+ Metadata =+\nKey\s+Value\n---\s+-----\n")
        self.assertRegex(p.stdout, r"\nversion\s+1\n")
        self.assertRegex(p.stdout, r"\ndeletion_time\s+n/a\n")
        self.assertRegex(p.stdout, r"\ncustom_metadata\s+<nil>\n")
        p = self.kv("put", "secret/app/db", "user=alice", f"blob=@{blob}")
        self.assertRegex(p.stdout, r"\nversion\s+2\n")
        self.assertEqual(self.kv("put", "-field=version", "secret/app/other", "a=1").stdout, "1")

        # get: table, -version, -field, -format=json.
        p = self.kv("get", "secret/app/db")
        self.assertIn("secret/data/app/db", p.stdout)
        self.assertRegex(p.stdout, r"=+ Metadata =+")
        self.assertRegex(p.stdout, r"=+ Data =+\nKey\s+Value\n---\s+-----\nblob\s+line1\nline2\n\nuser\s+alice\n")
        self.assertEqual(self.kv("get", "-version=1", "-field=user", "secret/app/db").stdout, "bob")
        self.assertEqual(self.kv("get", "-mount=secret", "-version=1", "-field=pass", "app/db").stdout, "s3cret")
        d = self.get_json("secret/app/db")["data"]
        self.assertEqual(d["data"], {"user": "alice", "blob": "line1\nline2\n"})
        self.assertEqual(d["metadata"]["version"], 2)
        p = self.kv("get", "secret/app/nope", code=2)
        self.assertIn("No value found at secret/data/app/nope", p.stderr)
        p = self.kv("get", "-version=9", "secret/app/db", code=2)
        self.assertIn("No value found at secret/data/app/db for version 9", p.stderr)

        # check-and-set.
        p = self.kv("put", "-cas=1", "secret/app/db", "user=x", code=2)
        self.assertIn("check-and-set parameter did not match the current version", p.stderr)
        self.assertIn("Code: 400", p.stderr)
        p = self.kv("put", "-cas=0", "secret/app/new", "user=x")
        self.assertRegex(p.stdout, r"\nversion\s+1\n")

        # patch: an HTTP PATCH (merge), then read-modify-write.
        p = self.kv("patch", "secret/app/db", "extra=1")
        self.assertRegex(p.stdout, r"\nversion\s+3\n")
        self.kv("patch", "-method=rw", "-cas=3", "secret/app/db", "more=2")
        self.assertEqual(self.get_json("secret/app/db")["data"]["data"],
                         {"user": "alice", "blob": "line1\nline2\n", "extra": "1", "more": "2"})
        p = self.kv("patch", "secret/app/nope", "a=1", code=2)
        self.assertIn("No value found at secret/data/app/nope", p.stderr)
        p = self.kv("patch", "-cas=1", "secret/app/db", "a=1", code=2)
        self.assertIn("check-and-set parameter did not match the current version", p.stderr)

        # list.
        self.assertEqual(self.kv("list", "secret/").stdout.split(), ["Keys", "----", "app/"])
        self.assertEqual(self.kv("list", "-mount=secret", "app").stdout.split(),
                         ["Keys", "----", "db", "new", "other"])
        self.assertEqual(json.loads(self.kv("list", "-format=json", "secret/app/").stdout), ["db", "new", "other"])
        p = self.kv("list", "secret/empty", code=2)
        self.assertIn("No value found at secret/metadata/empty", p.stderr)

        # delete (the latest, or -versions), undelete, destroy.
        p = self.kv("delete", "secret/app/db")
        self.assertIn("Success! Data deleted (if it existed) at: secret/data/app/db", p.stdout)
        p = self.kv("get", "secret/app/db")  # a deleted version: its metadata, no data
        self.assertNotRegex(p.stdout, r"\ndeletion_time\s+n/a\n")
        self.assertNotIn("Data ==", p.stdout)
        self.assertRegex(self.kv("get", "-field=user", "secret/app/db", code=2).stderr, "No data found at secret/data/app/db")
        p = self.kv("undelete", "-versions=4", "secret/app/db")
        self.assertIn("Success! Data written to: secret/undelete/app/db", p.stdout)
        self.assertEqual(self.kv("get", "-field=more", "secret/app/db").stdout, "2")
        self.kv("delete", "-versions=2,3", "secret/app/db")
        self.assertTrue(self.get_json("-version=3", "secret/app/db")["data"]["metadata"]["deletion_time"])
        p = self.kv("destroy", "-versions=1", "secret/app/db")
        self.assertIn("Success! Data written to: secret/destroy/app/db", p.stdout)
        self.assertTrue(self.get_json("-version=1", "secret/app/db")["data"]["metadata"]["destroyed"])
        p = self.kv("undelete", "secret/app/db", code=1)
        self.assertIn('No versions provided, use the "-versions" flag to specify the version to undelete.', p.stderr)
        self.kv("destroy", "-versions=x", "secret/app/db", code=1)

        # rollback: an older version's data becomes the new version; deleted or destroyed ones cannot.
        self.kv("undelete", "-versions=2", "secret/app/db")
        p = self.kv("rollback", "-version=2", "secret/app/db")
        self.assertRegex(p.stdout, r"\nversion\s+5\n")
        self.assertEqual(self.get_json("secret/app/db")["data"]["data"], {"user": "alice", "blob": "line1\nline2\n"})
        p = self.kv("rollback", "-version=1", "secret/app/db", code=2)
        self.assertIn("Cannot roll back to a version that has been destroyed", p.stderr)
        p = self.kv("rollback", "-version=3", "secret/app/db", code=2)
        self.assertIn("Cannot roll back to a version that has been deleted", p.stderr)
        p = self.kv("rollback", "-version=42", "secret/app/db", code=2)
        self.assertIn("Cannot roll back to an invalid version", p.stderr)

        # metadata put / get / delete.
        p = self.kv("metadata", "put", "-max-versions=3", "-delete-version-after=1h",
                    "-custom-metadata=owner=ops", "-custom-metadata=team=blue", "secret/app/db")
        self.assertIn("Success! Data written to: secret/metadata/app/db", p.stdout)
        p = self.kv("metadata", "get", "secret/app/db")
        self.assertIn("= Metadata Path =", p.stdout)
        self.assertIn("secret/metadata/app/db", p.stdout)
        self.assertRegex(p.stdout, r"\nmax_versions\s+3\n")
        self.assertRegex(p.stdout, r"\ndelete_version_after\s+1h0m0s\n")
        self.assertRegex(p.stdout, r"\ncustom_metadata\s+map\[owner:ops team:blue\]\n")
        self.assertRegex(p.stdout, r"\ncurrent_version\s+5\n")
        self.assertRegex(p.stdout, r"=+ Version 1 =+\nKey\s+Value\n---\s+-----\ncreated_time\s+\S+\ndeletion_time\s+n/a\ndestroyed\s+true\n")
        self.assertIn("= Version 5 =", p.stdout)
        self.assertLess(p.stdout.index("Version 2 "), p.stdout.index("Version 5 "))
        md = json.loads(self.kv("metadata", "get", "-format=json", "-mount=secret", "app/db").stdout)["data"]
        self.assertEqual(md["custom_metadata"], {"owner": "ops", "team": "blue"})
        self.assertEqual(sorted(md["versions"]), ["1", "2", "3", "4", "5"])
        self.assertEqual(self.kv("metadata", "get", "-field=max_versions", "secret/app/db").stdout, "3")
        p = self.kv("metadata", "put", "-custom-metadata=novalue", "secret/app/db", code=1)
        p = self.kv("metadata", "put", "-cas-required=true", "secret/app/db")
        p = self.kv("put", "secret/app/db", "a=1", code=2)
        self.assertIn("check-and-set parameter required for this call", p.stderr)
        p = self.kv("metadata", "delete", "secret/app/db")
        self.assertIn("Success! Data deleted (if it existed) at: secret/metadata/app/db", p.stdout)
        self.kv("get", "secret/app/db", code=2)
        p = self.kv("metadata", "get", "secret/app/db", code=2)
        self.assertIn("No value found at secret/metadata/app/db", p.stderr)

        # Local mistakes are exit code 1.
        self.assertIn("Must supply data", self.kv("put", "secret/app/x", code=1).stderr)
        self.kv("put", "secret/app/x", "novalue", code=1)
        self.kv("rollback", "secret/app/x", code=1)

    def test_version1_mount_and_enable_versioning(self):
        p = self.kv("put", "kv1/app/a", "k=v")
        self.assertIn("Success! Data written to: kv1/app/a", p.stdout)
        self.kv("put", "kv1/app/b", "-", stdin='{"n": 2}')
        self.kv("put", "kv1/metadata/x", "odd=name")
        p = self.kv("get", "kv1/app/a")
        self.assertNotIn("Secret Path", p.stdout)
        self.assertRegex(p.stdout, r"=+ Data =+\nKey\s+Value\n---\s+-----\nk\s+v\n")
        self.assertEqual(self.kv("get", "-field=k", "-mount=kv1", "app/a").stdout, "v")
        self.assertEqual(self.kv("list", "kv1/app").stdout.split(), ["Keys", "----", "a", "b"])
        p = self.kv("patch", "kv1/app/a", "k=w", code=2)
        self.assertIn("K/V engine mount must be version 2 for patch support", p.stderr)
        self.assertIn("Metadata not supported on KV Version 1", self.kv("metadata", "get", "kv1/app/a", code=2).stderr)
        self.assertIn("Undelete not supported on KV Version 1",
                      self.kv("undelete", "-versions=1", "kv1/app/a", code=2).stderr)
        self.assertIn("Rollback not supported on KV Version 1",
                      self.kv("rollback", "-version=1", "kv1/app/a", code=2).stderr)
        self.kv("delete", "-versions=1", "kv1/app/a", code=1)
        p = self.kv("delete", "kv1/app/b")
        self.assertIn("Success! Data deleted (if it existed) at: kv1/app/b", p.stdout)

        # enable-versioning: options.version=2, and every secret is version 1 of its path.
        p = self.s.cli("kv", "enable-versioning", "kv1", token=self.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Success! Tuned the secrets engine at: kv1/", p.stdout)
        status, mounts, _ = self.s.request("GET", "sys/mounts", token=self.root)
        self.assertEqual(mounts["data"]["kv1/"]["options"], {"version": "2"})
        d = self.get_json("kv1/app/a")["data"]
        self.assertEqual((d["data"], d["metadata"]["version"]), ({"k": "v"}, 1))
        d = self.get_json("kv1/metadata/x")["data"]
        self.assertEqual((d["data"], d["metadata"]["version"]), ({"odd": "name"}, 1))
        self.assertEqual(self.kv("list", "kv1/").stdout.split(), ["Keys", "----", "app/", "metadata/"])
        p = self.kv("put", "kv1/app/a", "k=w")
        self.assertRegex(p.stdout, r"\nversion\s+2\n")
        self.assertEqual(self.kv("get", "-version=1", "-field=k", "kv1/app/a").stdout, "v")
        self.assertEqual(self.kv("get", "kv1/app/b", code=2).returncode, 2)  # deleted before the upgrade


if __name__ == "__main__":
    unittest.main()
