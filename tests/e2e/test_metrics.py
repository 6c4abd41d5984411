"""sys/metrics as an operator scrapes it: seal and HA state, storage latencies, tokens by policy and,
for a PKI mount, the CA's expiry (equal to the certificate's notAfter) and the stored and revoked
certificates; the telemetry stanza (Prometheus off, Vault's sink keys accepted with a warning,
unknown keys refused); the Grafana dashboard and the documented alert query name only metrics and
labels the server exports."""
import calendar
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

from harness import ServerTest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "coffer-dashboard.json")
DOC = os.path.join(ROOT, "docs", "observability.md")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse_prometheus(text):
    """The text format as Prometheus reads it: {(name, ((label, value), ...)): value} and the
    declared TYPE of each family. Fails on a line it does not understand."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, "family declared twice: " + name
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: " + line
        name, labels, value = m.groups()
        pairs = []
        if labels:
            pos = 0
            while pos < len(labels):
                lm = LABEL.match(labels, pos)
                assert lm, "bad labels: " + line
                value_text = lm.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
                pairs.append((lm.group(1), value_text))
                pos = lm.end()
        samples[(name, tuple(pairs))] = float(value)
    return samples, types


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


def not_after_unix(pem, workdir):
    path = os.path.join(workdir, "issuer.pem")
    with open(path, "w") as f:
        f.write(pem)
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path], check=True,
                         capture_output=True, text=True).stdout.strip()
    # notAfter=Nov 30 17:30:33 2027 GMT
    return calendar.timegm(time.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))


class Metrics(ServerTest):
    def setup_pki(self, s):
        """A root CA with a known TTL, three issued certificates, one revoked; tokens of two
        policies. Returns the root generation's response data."""
        st, body, _ = s.request("POST", "sys/mounts/pki", s.root,
                                {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
        self.assertEqual(st, 204, body)
        st, body, _ = s.request("POST", "pki/root/generate/internal", s.root,
                                {"common_name": "Metrics Root", "ttl": "4380h", "key_type": "ec",
                                 "issuer_name": "metrics-root"})
        self.assertEqual(st, 200, body)
        root = body["data"]
        st, body, _ = s.request("POST", "pki/roles/web", s.root,
                                {"allowed_domains": "example.com", "allow_subdomains": True,
                                 "key_type": "ec", "ttl": "24h"})
        self.assertIn(st, (200, 204), body)
        serials = []
        for cn in ("a.example.com", "b.example.com", "c.example.com"):
            st, body, _ = s.request("POST", "pki/issue/web", s.root, {"common_name": cn})
            self.assertEqual(st, 200, body)
            serials.append(body["data"]["serial_number"])
        st, body, _ = s.request("POST", "pki/revoke", s.root, {"serial_number": serials[1]})
        self.assertEqual(st, 200, body)
        for policies in (["web"], ["web", "db"]):
            st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": policies})
            self.assertEqual(st, 200, body)
        return root

    def scrape(self, s, token=None):
        st, _, text = s.request("GET", "sys/metrics?format=prometheus", token or s.root)
        self.assertEqual(st, 200, text)
        return parse_prometheus(text)

    def test_pki_tokens_seal_and_storage(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        root = self.setup_pki(s)
        samples, types = self.scrape(s)

        # The CA's expiry is its certificate's notAfter, in unix seconds.
        not_after = not_after_unix(root["certificate"], s.dir)
        key = ("coffer_pki_issuer_not_after_seconds",
               (("mount", "pki/"), ("issuer_id", root["issuer_id"]), ("issuer_name", "metrics-root")))
        self.assertIn(key, samples, sorted(k for k in samples if "pki" in k[0]))
        self.assertEqual(samples[key], not_after)
        self.assertEqual(types["coffer_pki_issuer_not_after_seconds"], "gauge")
        days_left = (samples[key] - time.time()) / 86400
        self.assertAlmostEqual(days_left, 4380 / 24, delta=0.1)
        # Three leaves and the CA's own certificate are stored; one is revoked.
        self.assertEqual(samples[("coffer_pki_certificates_stored", (("mount", "pki/"),))], 4)
        self.assertEqual(samples[("coffer_pki_certificates_revoked", (("mount", "pki/"),))], 1)

        self.assertEqual(samples[("coffer_core_unsealed", ())], 1)
        self.assertEqual(samples[("coffer_core_ha_enabled", ())], 0)
        self.assertEqual(samples[("coffer_core_active", ())], 1)

        self.assertEqual(types["coffer_storage_operation_seconds"], "histogram")
        for op in ("get", "put", "delete", "write", "list", "delete_prefix"):
            self.assertIn(("coffer_storage_operation_seconds_count", (("op", op),)), samples, op)
        # Every issued certificate was a storage write (SQLite: with its fsync).
        writes = samples[("coffer_storage_operation_seconds_count", (("op", "put"),))] + \
            samples[("coffer_storage_operation_seconds_count", (("op", "write"),))]
        self.assertGreaterEqual(writes, 5)
        self.assertEqual(samples[("coffer_storage_operation_seconds_bucket", (("op", "get"), ("le", "+Inf")))],
                         samples[("coffer_storage_operation_seconds_count", (("op", "get"),))])
        self.assertGreater(samples[("coffer_storage_operation_seconds_sum", (("op", "write"),))], 0)

        by_policy = {dict(labels)["policy"]: v for (name, labels), v in samples.items()
                     if name == "coffer_token_count_by_policy"}
        self.assertEqual(by_policy, {"root": 1, "default": 2, "web": 2, "db": 1})

        self.assertEqual(samples[("coffer_requests_total",
                                  (("mount", "pki/"), ("operation", "update"), ("code", "200")))], 5)
        self.assertIn(("coffer_request_duration_seconds_count", (("mount", "pki/"), ("operation", "update"))),
                      samples)

        # The JSON form carries the same gauges in Vault's shape.
        st, body, _ = s.request("GET", "sys/metrics", s.root)
        self.assertEqual(st, 200)
        gauges = [g for g in body["Gauges"] if g["Name"] == "coffer.pki.issuer.not_after_seconds"]
        self.assertEqual(gauges, [{"Name": "coffer.pki.issuer.not_after_seconds", "Value": not_after,
                                   "Labels": {"mount": "pki/", "issuer_id": root["issuer_id"],
                                              "issuer_name": "metrics-root"}}])
        self.assertIn({"Name": "coffer.core.unsealed", "Value": 1, "Labels": {}}, body["Gauges"])
        self.assertTrue(any(x["Name"] == "coffer.storage.operation" and x["Labels"] == {"op": "get"}
                            for x in body["Samples"]))

        # A token that may read sys/metrics and nothing else scrapes; one without it gets 403.
        st, body, _ = s.request("PUT", "sys/policies/acl/prometheus", s.root,
                                {"policy": 'path "sys/metrics" { capabilities = ["read"] }'})
        self.assertEqual(st, 204, body)
        st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": ["prometheus"]})
        scraper = body["auth"]["client_token"]
        self.scrape(s, scraper)
        st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": ["web"]})
        self.assertEqual(s.request("GET", "sys/metrics?format=prometheus", body["auth"]["client_token"])[0], 403)
        # Prometheus' bearer token works as X-Vault-Token does.
        st, _, _ = s.request("GET", "sys/metrics?format=prometheus",
                             headers={"Authorization": "Bearer " + scraper})
        self.assertEqual(st, 200)

    def test_telemetry_stanza_turns_prometheus_off_and_warns_of_vault_sinks(self):
        s = self.server(extra_config='telemetry {\n  prometheus_retention_time = "0"\n'
                                     '  disable_hostname = true\n'
                                     '  statsd_address = "statsd.example:8125"\n'
                                     '  dogstatsd_addr = "localhost:8125"\n}\n').start()
        s.init_and_unseal(1, 1)
        with open(s.log_path) as f:
            log = f.read()
        warnings = [l for l in log.splitlines() if "telemetry:" in l]
        self.assertEqual(len(warnings), 1, log)
        self.assertIn("[warn]", warnings[0])
        self.assertIn("statsd_address, dogstatsd_addr are accepted for compatibility with Vault and ignored",
                      warnings[0])
        self.assertNotIn("disable_hostname", warnings[0])
        st, _, text = s.request("GET", "sys/metrics?format=prometheus", s.root)
        self.assertEqual((st, text), (400, "prometheus is not enabled"))
        st, body, _ = s.request("GET", "sys/metrics", s.root)
        self.assertEqual(st, 200)
        self.assertIn({"Name": "coffer.core.unsealed", "Value": 1, "Labels": {}}, body["Gauges"])

    def test_unknown_telemetry_key_stops_the_server_naming_it(self):
        s = self.server(extra_config='telemetry {\n  statsd_adress = "x"\n}\n')
        with self.assertRaises(RuntimeError) as ctx:
            s.start()
        msg = str(ctx.exception)
        self.assertIn('unknown key "statsd_adress" in telemetry (did you mean "statsd_address"?)', msg)
        with open(s.config) as f:
            line = f.read().splitlines().index('  statsd_adress = "x"') + 1
        self.assertIn(f"line {line}:", msg)

    def test_dashboard_and_alert_name_only_exported_metrics(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertGreaterEqual(dash["schemaVersion"], 36)
        self.assertTrue(dash["uid"] and dash["title"])
        panels = [p for p in dash["panels"] if p["type"] != "row"]
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        exprs = [t["expr"] for p in panels for t in p["targets"]]
        exprs += [v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                  for v in dash["templating"]["list"] if v["type"] == "query"]
        titles = " | ".join(p["title"] for p in panels).lower()
        for want in ("seal", "requests/s by mount", "p99 latency", "storage", "audit",
                     "tokens by policy", "expires", "certificates stored and revoked"):
            self.assertIn(want, titles)
        days_left = re.compile(r"\(coffer_pki_issuer_not_after_seconds(\{[^}]*\})? - time\(\)\) / 86400")
        self.assertTrue(any(days_left.search(e) for e in exprs))

        with open(DOC) as f:
            doc = f.read()
        alert = "coffer_pki_issuer_not_after_seconds - time() < 30 * 86400"
        self.assertIn("```promql\n" + alert + "\n```", doc)
        exprs.append(alert)

        s = self.server().start()
        s.init_and_unseal(1, 1)
        self.setup_pki(s)
        # An audit device, so its series exist too.
        st, body, _ = s.request("PUT", "sys/audit/file", s.root,
                                {"type": "file", "options": {"file_path": os.path.join(s.dir, "audit.log")}})
        self.assertEqual(st, 204, body)
        samples, types = self.scrape(s)
        labels_of = {}
        for name, labels in samples:
            labels_of.setdefault(family_of(name, types), set()).update(k for k, _ in labels)
            labels_of.setdefault(name, set()).update(k for k, _ in labels)

        for e in exprs:
            names = set(re.findall(r"\bcoffer_[a-z0-9_]+", e))
            self.assertTrue(names, e)
            for n in names:
                self.assertIn(n, labels_of, f"{n} (in {e!r}) is not exported")
            # Every label the query selects or groups by is one the metrics carry (or
            # Prometheus' own: le on buckets, instance/job from the scrape).
            used = set(re.findall(r"\b([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"", e))
            for group in re.findall(r"\bby\s*\(([^)]*)\)", e):
                used.update(x.strip() for x in group.split(",") if x.strip())
            have = set().union(*(labels_of[n] for n in names)) | {"instance", "job"}
            self.assertTrue(used <= have, f"{e!r} uses labels {used - have}")


if __name__ == "__main__":
    unittest.main()
