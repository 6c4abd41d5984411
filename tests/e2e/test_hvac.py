"""Compatibility: hvac (Debian's python3-hvac), a real Vault client, drives Coffer unchanged:
init, unseal, seal status, health, mounts, tune, KV v1 and rotation, over TLS with the test CA."""
import unittest

from harness import ServerTest

try:
    import hvac
    import hvac.exceptions
except ImportError:  # pragma: no cover - install-deps.sh installs python3-hvac
    hvac = None


@unittest.skipIf(hvac is None, "python3-hvac is not installed (scripts/install-deps.sh installs it)")
class Hvac(ServerTest):
    def test_hvac_workflow(self):
        s = self.server().start()
        client = hvac.Client(url=s.addr, verify=s.ca)
        self.assertFalse(client.sys.is_initialized())
        result = client.sys.initialize(secret_shares=5, secret_threshold=3)
        self.assertEqual(len(result["keys"]), 5)
        self.assertTrue(client.sys.is_initialized())
        self.assertTrue(client.sys.is_sealed())
        status = client.sys.submit_unseal_keys(result["keys_base64"][1:4])
        self.assertFalse(status["sealed"])
        self.assertFalse(client.sys.is_sealed())

        client.token = result["root_token"]
        self.assertTrue(client.is_authenticated() if hasattr(client, "is_authenticated") else True)
        client.sys.enable_secrets_engine("kv", path="team", description="team secrets",
                                         config={"default_lease_ttl": "1h"}, options={"version": "1"})
        mounts = client.sys.list_mounted_secrets_engines()
        data = mounts.get("data", mounts)
        self.assertEqual(data["team/"]["type"], "kv")
        self.assertEqual(data["team/"]["description"], "team secrets")
        client.sys.tune_mount_configuration("team", max_lease_ttl="2h")
        tune = client.sys.read_mount_configuration("team")
        self.assertEqual(tune["data"]["max_lease_ttl"], 7200)

        client.secrets.kv.v1.create_or_update_secret(path="db", secret={"user": "app", "pw": "x1"},
                                                     mount_point="team")
        secret = client.secrets.kv.v1.read_secret(path="db", mount_point="team")
        self.assertEqual(secret["data"], {"user": "app", "pw": "x1"})
        self.assertEqual(secret["lease_duration"], 3600)
        listed = client.secrets.kv.v1.list_secrets(path="", mount_point="team")
        self.assertEqual(listed["data"]["keys"], ["db"])
        client.secrets.kv.v1.delete_secret(path="db", mount_point="team")
        with self.assertRaises(hvac.exceptions.InvalidPath):
            client.secrets.kv.v1.read_secret(path="db", mount_point="team")

        # Generic read/write as `vault read/write` do.
        client.write("team/other", value="v")
        self.assertEqual(client.read("team/other")["data"]["value"], "v")

        health = client.sys.read_health_status(method="GET")
        self.assertFalse(health["sealed"])
        client.sys.rotate_encryption_key()
        self.assertEqual(client.sys.get_encryption_key_status()["data"]["term"], 2)

        bad = hvac.Client(url=s.addr, verify=s.ca, token="hvs.not-a-token")
        with self.assertRaises(hvac.exceptions.Forbidden):
            bad.read("team/other")

        client.sys.disable_secrets_engine("team")
        self.assertNotIn("team/", client.sys.list_mounted_secrets_engines()["data"])
        client.sys.seal()
        self.assertTrue(client.sys.is_sealed())
        with self.assertRaises(hvac.exceptions.VaultDown):
            client.read("team/other")


if __name__ == "__main__":
    unittest.main(verbosity=2)
