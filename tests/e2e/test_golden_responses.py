"""Golden HTTP responses: a fixed, deterministic sequence of requests over every engine and endpoint
group (sys, kv v1, token auth, AppRole, PKI, plus error cases), each response's status, content type
and body compared byte for byte with tests/e2e/golden/responses.json after volatile values (ids,
tokens, accessors, serials, PEM/DER, times, hashes) are replaced by typed placeholders.

It guards refactors that must not change the API: record the golden file with a build from BEFORE
any intentional change (see tests/e2e/golden/README.md):

    COFFER_BIN=/path/to/old/coffer COFFER_GOLDEN_RECORD=1 python3 tests/e2e/test_golden_responses.py

Without COFFER_GOLDEN_RECORD the test compares; a mismatch shows the request, expected and got.
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Server

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "responses.json")
RECORD = os.environ.get("COFFER_GOLDEN_RECORD", "") not in ("", "0")

# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------


class RawNum(str):
    """A JSON number kept as its literal text, so it re-serializes byte for byte."""


class Obj(list):
    """A JSON object as its ordered list of (key, value) pairs (order and duplicates kept)."""


def parse_ordered(text):
    return json.loads(text, object_pairs_hook=Obj, parse_int=RawNum, parse_float=RawNum)


def dumps(v):
    """Compact serialization matching boost::json::serialize for what the server emits."""
    if isinstance(v, Obj):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(x) for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    if isinstance(v, RawNum):
        return str.__str__(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    raise TypeError(type(v))


# Keys whose values are volatile whatever they look like: the value becomes "<key>" (a string) or
# "<key:number>" (a number); null, "", 0, booleans, arrays and objects are kept (and recursed into).
VOLATILE_KEYS = {
    # ids and secrets
    "request_id", "lease_id", "client_token", "accessor", "secret_id", "secret_id_accessor",
    "root_token", "cluster_id", "cluster_name", "nonce", "serial_number", "hash",
    # times (RFC 3339 strings and Unix seconds)
    "creation_time", "expire_time", "issue_time", "expiration", "expiration_time",
    "last_updated_time",
    "revocation_time", "revocation_time_rfc3339", "server_time_utc", "install_time",
    "time_started", "time_finished", "not_after", "not_before", "this_update", "next_update",
}
# "ttl" is the remaining lifetime in a token lookup (an object that also has creation_ttl);
# elsewhere (roles, kv data) it is configuration and kept.
TOKEN_LOOKUP_MARKER = "creation_ttl"

PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----")
TOKEN_RE = re.compile(r"\b(?:hvs|s)\.[A-Za-z0-9]{20,}")
UUID_RE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
HMAC_RE = re.compile(r"hmac-sha256:[0-9a-f]{64}")
RFC3339_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
SERIAL_RE = re.compile(r"\b[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){7,}\b")
HEX_RE = re.compile(r"[0-9a-fA-F]{32,}")
B64_RE = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


class Normalizer:
    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.known = {}  # volatile string seen under a VOLATILE_KEYS key -> its placeholder

    def string(self, s):
        if s in self.known:
            return self.known[s]
        if self.tmpdir:
            s = s.replace(self.tmpdir, "<tmpdir>")
        s = PEM_RE.sub(lambda m: f"<pem:{m.group(1)}>", s)
        s = TOKEN_RE.sub("<token>", s)
        s = UUID_RE.sub("<uuid>", s)
        s = HMAC_RE.sub("<hmac>", s)
        s = RFC3339_RE.sub("<rfc3339>", s)
        s = SERIAL_RE.sub("<serial>", s)
        if HEX_RE.fullmatch(s):
            return "<hex>"
        if B64_RE.fullmatch(s):
            return "<base64>"
        return s

    def keyed(self, key, v):
        if isinstance(v, RawNum):  # (a str subclass: checked first)
            return f"<{key}:number>" if v not in ("0", "-0") else None
        if isinstance(v, str) and v != "":
            ph = f"<{key}>"
            if len(v) >= 8:
                self.known.setdefault(v, ph)
            return ph
        return None

    def value(self, v):
        if isinstance(v, Obj):
            lookup = any(k == TOKEN_LOOKUP_MARKER for k, _ in v)
            out = Obj()
            for k, x in v:
                rep = None
                if k in VOLATILE_KEYS or (lookup and k == "ttl"):
                    rep = self.keyed(k, x)
                out.append((self.string(k), rep if rep is not None else self.value(x)))
            return out
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, RawNum) or v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return self.string(v)
        raise TypeError(type(v))

    def body(self, raw, content_type):
        """The normalized body as text: JSON re-serialized, PEM/text normalized, binary elided."""
        if not raw:
            return ""
        if content_type in ("application/pkix-cert", "application/pkix-crl"):
            return "<binary>"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "<binary>"
        if content_type == "application/json":
            try:
                parsed = parse_ordered(text)
            except ValueError:
                parsed = None
            # Only bodies that round-trip exactly are compared structurally; anything else is
            # compared as text so no byte is hidden by re-serialization.
            if parsed is not None and dumps(parsed) == text:
                return dumps(self.value(parsed))
        return self.string(text)


# ---------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------

BOGUS_TOKEN = "hvs.AAAAAAAAAAAAAAAAAAAAAAAA"
APP_POLICY = 'path "secret/app/*" {\n  capabilities = ["read", "list"]\n}\n'
VAR_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def first_difference(want, got):
    if want == got:
        return ""
    i = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return (f"\n  first difference at character {i}:\n    expected ...{want[max(0, i - 60):i + 60]!r}..."
            f"\n    got      ...{got[max(0, i - 60):i + 60]!r}...")


class GoldenResponses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="coffer-golden-")
        d = os.path.join(cls.tmp, "srv")
        os.makedirs(d)
        cls.srv = Server(d, tls=False).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- plumbing ----------------------------------------------------------------------------

    def fill(self, v):
        if isinstance(v, str):
            return VAR_RE.sub(lambda m: self.vars[m.group(1)] if m.group(1) in self.vars else m.group(0), v)
        if isinstance(v, dict):
            return {k: self.fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.fill(x) for x in v]
        return v

    def send(self, method, path, token, data):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        headers = {"Connection": "close"}
        if token:
            headers["X-Vault-Token"] = token
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, "/v1/" + path, body=data, headers=headers)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            conn.close()

    def call(self, method, path, body=None, tok="root", raw=None):
        """Sends one request (path and body are templates over self.vars), records it, and
        returns the parsed JSON body (or None)."""
        data = raw if raw is not None else (json.dumps(self.fill(body)).encode() if body is not None else None)
        status, ctype, resp = self.send(method, self.fill(path), self.tokens[tok], data)
        rec = {"method": method, "path": path, "token": tok}
        if body is not None:
            rec["request"] = body
        if raw is not None:
            rec["request_raw"] = raw.decode()
        rec["status"] = status
        rec["content_type"] = ctype
        rec["body"] = self.norm.body(resp, ctype)
        self.records.append(rec)
        try:
            return json.loads(resp) if resp else None
        except ValueError:
            return None

    def openssl_csr(self, cn):
        key, csr = os.path.join(self.tmp, "csr.key"), os.path.join(self.tmp, "csr.pem")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn],
                       check=True, capture_output=True)
        with open(csr) as f:
            return f.read()

    # -- the request list ----------------------------------------------------------------------

    def scenario(self):
        c = self.call
        v = self.vars

        # Before init: unauthenticated sys paths and the sealed/uninitialized answers.
        c("GET", "sys/init", tok="none")
        c("GET", "sys/seal-status", tok="none")
        c("GET", "sys/health", tok="none")
        c("GET", "sys/health?uninitcode=299", tok="none")
        c("PUT", "sys/unseal", {"key": "00" * 33}, tok="none")
        c("GET", "secret/x", tok="none")
        c("PUT", "sys/init", {"secret_shares": "five", "secret_threshold": 3}, tok="none")
        c("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["x"]}, tok="none")
        init = c("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, tok="none")
        self.tokens["root"] = init["root_token"]
        v["unseal_key"] = init["keys"][0]
        c("GET", "sys/seal-status", tok="none")
        c("GET", "sys/health", tok="none")
        c("GET", "sys/health?sealedcode=299", tok="none")
        c("PUT", "sys/unseal", {"key": "{unseal_key}"}, tok="none")
        c("PUT", "sys/unseal", {"key": "{unseal_key}"}, tok="none")

        # Unauthenticated sys paths once unsealed.
        c("GET", "sys/init", tok="none")
        c("GET", "sys/health", tok="none")
        c("HEAD", "sys/health", tok="none")
        c("GET", "sys/health?activecode=299&standbycode=200", tok="none")
        c("GET", "sys/health?activecode=abc", tok="none")
        c("GET", "sys/health?drsecondarycode=9999", tok="none")
        c("POST", "sys/health", {}, tok="none")
        c("GET", "sys/leader", tok="none")
        c("GET", "sys/seal-status", tok="none")
        c("PUT", "sys/seal-status", {}, tok="none")
        c("GET", "sys/mounts", tok="none")
        c("GET", "sys/mounts", tok="bogus")
        c("PUT", "sys/policies/acl/x", raw=b"{not json", tok="none")  # refused before authentication

        # sys/mounts: list, enable, read, tune, disable, errors.
        c("GET", "sys/mounts")
        c("POST", "sys/mounts/secret", {"type": "kv", "description": "golden kv"})
        c("POST", "sys/mounts/secret", {"type": "kv"})
        c("POST", "sys/mounts/kv2", {"type": "kv", "options": {"version": "2"}})
        c("POST", "sys/mounts/m1", {"type": 5})
        c("POST", "sys/mounts/m1", {"type": "kv", "config": "x"})
        c("POST", "sys/mounts/m1", {"type": "kv", "config": {"max_lease_ttl": {"h": 1}}})
        c("POST", "sys/mounts/m1", {"type": "kv", "options": {"version": 1}})
        c("POST", "sys/mounts/sys/x", {"type": "kv"})
        c("POST", "sys/mounts/m1", {"type": "pki9"})
        c("POST", "sys/mounts/tmpkv", {"type": "kv"})
        c("GET", "sys/mounts/tmpkv")
        c("GET", "sys/mounts/tmpkv/tune")
        c("POST", "sys/mounts/tmpkv/tune", {"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "tuned"})
        c("GET", "sys/mounts/tmpkv/tune")
        c("POST", "sys/mounts/tmpkv/tune", {"default_lease_ttl": "3h"})
        c("DELETE", "sys/mounts/tmpkv")
        c("GET", "sys/mounts/tmpkv")
        c("DELETE", "sys/mounts/never-mounted")
        c("LIST", "sys/mounts")
        c("GET", "sys/mounts")
        c("GET", "sys/internal/ui/mounts/secret")
        c("GET", "sys/internal/ui/mounts/nowhere")
        c("GET", "sys/nonexistent")
        c("GET", "sys/key-status")
        c("PUT", "sys/rotate", {})
        c("GET", "sys/key-status")
        c("GET", "sys/rotate")
        c("GET", "sys/metrics?format=xml")

        # Policies, current and legacy endpoints.
        c("PUT", "sys/policies/acl/app", {"policy": APP_POLICY})
        c("GET", "sys/policies/acl/app")
        c("LIST", "sys/policies/acl")
        c("GET", "sys/policy")
        c("GET", "sys/policy/app")
        c("PUT", "sys/policy/tmp", {"rules": 'path "secret/tmp" { capabilities = ["deny"] }'})
        c("DELETE", "sys/policies/acl/tmp")
        c("GET", "sys/policies/acl/tmp")
        c("PUT", "sys/policies/acl/bad", {"policy": ""})
        c("PUT", "sys/policies/acl/bad", {"policy": 'path "x" { capabilities = ["fly"] }'})
        c("PUT", "sys/policies/acl/bad", {"policy": 42})
        c("GET", "sys/policies/acl")

        # Auth methods.
        c("POST", "sys/auth/approle", {"type": "approle", "description": "golden approle"})
        c("GET", "sys/auth")
        c("GET", "sys/auth/approle/tune")
        c("POST", "sys/auth/approle/tune", {"default_lease_ttl": "30m"})
        c("GET", "sys/auth/approle/tune")
        c("POST", "sys/auth/token", {"type": "token"})
        c("POST", "sys/auth/other", {"type": "ldap"})

        # Audit devices, with a file in the test's folder.
        c("PUT", "sys/audit/file", {"type": "file", "options": {"file_path": "{tmpdir}/audit.log"}})
        c("GET", "sys/audit")
        c("PUT", "sys/audit-hash/file", {"input": "hello"})
        c("PUT", "sys/audit-hash/nope", {"input": "hello"})
        c("PUT", "sys/audit/bad", {"type": "syslog"})
        c("PUT", "sys/audit/bad", {"type": "file", "options": {"file_path": "{tmpdir}/missing/dir/a.log"}})
        c("PUT", "sys/audit/bad", {"type": "file", "options": "x"})
        c("DELETE", "sys/audit/file")
        c("GET", "sys/audit")

        # KV version 1.
        c("PUT", "secret/app/config", {"user": "app", "password": "s3cr3t", "ttl": "30m"})
        c("GET", "secret/app/config")
        c("PUT", "secret/app/other", {"n": 1, "f": 1.5, "nested": {"a": [1, 2, {"b": None}], "t": True}, "u": "\u00e9\u2603"})
        c("GET", "secret/app/other")
        c("LIST", "secret/app")
        c("GET", "secret/app?list=true")
        c("LIST", "secret/")
        c("LIST", "secret/nothing")
        c("GET", "secret/missing")
        c("PUT", "secret/empty", {})
        c("PUT", "secret/bad", {"ttl": {"h": 1}})
        c("PUT", "secret/bad", {"ttl": "soon"})
        c("PUT", "secret/a/../b", {"v": 1})
        c("PUT", "secret/x", raw=b"{not json")
        c("PUT", "secret/x", raw=b"[1,2]")
        c("PATCH", "secret/app/config", {"user": "x"})
        c("BREW", "secret/app/config")
        c("GET", "secret")
        c("DELETE", "secret/app/other")
        c("GET", "secret/app/other")
        c("GET", "secret/app/config", tok="none")
        c("GET", "nowhere/at/all")

        # Token auth.
        c("GET", "auth/token/lookup-self")
        t1 = c("POST", "auth/token/create", {"policies": ["app"], "ttl": "1h", "display_name": "golden", "meta": {"team": "qa"}})
        self.tokens["t1"] = v["t1"] = t1["auth"]["client_token"]
        v["t1_accessor"] = t1["auth"]["accessor"]
        c("POST", "auth/token/create", {"policies": 5})
        c("POST", "auth/token/create", {"ttl": {"h": 1}})
        c("POST", "auth/token/create", {"type": "batch"})
        c("POST", "auth/token/create", {"id": "custom-id"})
        c("POST", "auth/token/create", {"policies": ["root"]}, tok="t1")
        c("POST", "auth/token/lookup", {"token": "{t1}"})
        c("GET", "auth/token/lookup-self", tok="t1")
        c("POST", "auth/token/lookup-accessor", {"accessor": "{t1_accessor}"})
        c("POST", "auth/token/renew", {"token": "{t1}", "increment": "2h"})
        c("POST", "auth/token/renew-self", {"increment": "1h"}, tok="t1")
        c("POST", "auth/token/lookup", {"token": BOGUS_TOKEN})
        c("GET", "auth/token/create")
        c("GET", "auth/token/nothing")
        c("POST", "auth/token/roles/golden", {"allowed_policies": ["app"], "orphan": True, "token_period": "1h"})
        c("GET", "auth/token/roles/golden")
        c("LIST", "auth/token/roles")
        t2 = c("POST", "auth/token/create/golden", {})
        v["t2_accessor"] = t2["auth"]["accessor"]
        c("POST", "auth/token/roles/bad", {"token_type": "batch"})
        c("DELETE", "auth/token/roles/golden")
        c("GET", "auth/token/roles/golden")
        c("LIST", "auth/token/accessors")
        c("GET", "secret/app/config", tok="t1")
        c("GET", "sys/mounts", tok="t1")
        c("POST", "sys/capabilities-self", {"paths": ["secret/app/config", "sys/mounts"]}, tok="t1")
        c("POST", "sys/capabilities-self", {"path": "secret/app/config"})
        c("POST", "sys/capabilities", {"token": "{t1}", "path": "secret/app/x"})
        c("POST", "sys/capabilities-accessor", {"accessor": "{t1_accessor}", "paths": ["secret/app/x", "secret/other"]})
        c("POST", "sys/capabilities", {"token": "{t1}", "paths": 5})
        c("POST", "auth/token/revoke-accessor", {"accessor": "{t2_accessor}"})
        c("POST", "auth/token/revoke", {"token": "{t1}"})
        c("POST", "auth/token/lookup", {"token": "{t1}"})
        c("GET", "secret/app/config", tok="t1")
        c("POST", "auth/token/tidy", {})

        # AppRole.
        c("POST", "auth/approle/role/web", {"token_policies": "app", "token_ttl": "20m", "token_max_ttl": "1h",
                                            "secret_id_ttl": "10m", "secret_id_num_uses": 5})
        c("GET", "auth/approle/role/web")
        c("LIST", "auth/approle/role")
        rid = c("GET", "auth/approle/role/web/role-id")
        v["role_id"] = rid["data"]["role_id"]
        sid = c("POST", "auth/approle/role/web/secret-id", {"metadata": {"env": "test"}})
        v["secret_id"] = sid["data"]["secret_id"]
        v["secret_id_accessor"] = sid["data"]["secret_id_accessor"]
        c("LIST", "auth/approle/role/web/secret-id")
        c("POST", "auth/approle/role/web/secret-id/lookup", {"secret_id": "{secret_id}"})
        c("POST", "auth/approle/role/web/secret-id-accessor/lookup", {"secret_id_accessor": "{secret_id_accessor}"})
        c("POST", "auth/approle/login", {"role_id": "{role_id}", "secret_id": "{secret_id}"}, tok="none")
        c("POST", "auth/approle/login", {"role_id": "{role_id}", "secret_id": "wrong"}, tok="none")
        c("POST", "auth/approle/login", {}, tok="none")
        c("GET", "auth/approle/login", tok="none")
        c("POST", "auth/approle/role/web", {"token_ttl": {"m": 20}})
        c("POST", "auth/approle/role/web", {"policies": 5})
        c("GET", "auth/approle/role/web/policies")
        c("GET", "auth/approle/role/web/nope")
        c("POST", "auth/approle/role/web/role-id", {"role_id": "golden-role-id"})
        c("GET", "auth/approle/role/web/role-id")
        c("POST", "auth/approle/role/web/secret-id-accessor/destroy", {"secret_id_accessor": "{secret_id_accessor}"})
        c("LIST", "auth/approle/role/web/secret-id")
        c("DELETE", "auth/approle/role/web")
        c("GET", "auth/approle/role/web")
        c("GET", "auth/approle/nothing")
        c("POST", "auth/approle/role/ghost/secret-id", {})

        # PKI: a root CA, roles, issue and sign, revocation, CRLs, tidy, an intermediate.
        c("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
        c("GET", "pki/ca/pem", tok="none")
        root = c("POST", "pki/root/generate/internal", {"common_name": "Golden Root", "key_type": "ec",
                                                         "ttl": "8760h", "issuer_name": "root-1"})
        v["issuer_id"] = root["data"]["issuer_id"]
        v["key_id"] = root["data"]["key_id"]
        v["root_serial"] = root["data"]["serial_number"]
        c("POST", "pki/root/generate/kms", {"common_name": "x"})
        c("POST", "pki/root/generate/internal", {"key_type": "ec"})
        c("GET", "pki/ca/pem", tok="none")
        c("GET", "pki/ca", tok="none")
        c("GET", "pki/ca_chain", tok="none")
        c("GET", "pki/cert/ca", tok="none")
        c("LIST", "pki/issuers", tok="none")
        c("GET", "pki/issuer/{issuer_id}/json", tok="none")
        c("GET", "pki/issuer/{issuer_id}")
        c("GET", "pki/issuer/root-1/pem", tok="none")
        c("LIST", "pki/keys")
        c("GET", "pki/key/{key_id}")
        c("GET", "pki/config/issuers")
        c("GET", "pki/config/keys")
        c("POST", "pki/config/urls", {"issuing_certificates": "http://127.0.0.1:8200/v1/pki/ca",
                                      "crl_distribution_points": ["http://127.0.0.1:8200/v1/pki/crl"]})
        c("GET", "pki/config/urls")
        c("POST", "pki/config/urls", {"issuing_certificates": "not a url"})
        c("GET", "pki/config/crl")
        c("POST", "pki/config/crl", {"expiry": "48h"})
        c("POST", "pki/config/crl", {"enable_delta": True})
        c("POST", "pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                    "key_type": "ec", "ttl": "24h", "max_ttl": "72h"})
        c("GET", "pki/roles/web")
        c("LIST", "pki/roles")
        c("POST", "pki/roles/bad", {"ttl": {"h": 1}})
        c("POST", "pki/roles/bad", {"allowed_domains": 5})
        cert = c("POST", "pki/issue/web", {"common_name": "api.example.com", "ttl": "1h"})
        v["serial"] = cert["data"]["serial_number"]
        c("POST", "pki/issue/web", {"common_name": "der.example.com", "format": "der"})
        c("POST", "pki/issue/web", {"common_name": "a.example.com", "ttl": "100h"})
        c("POST", "pki/issue/web", {"common_name": "evil.org"})
        c("POST", "pki/issue/nope", {"common_name": "a.example.com"})
        v["csr"] = self.openssl_csr("node.example.com")
        c("POST", "pki/sign/web", {"csr": "{csr}", "ttl": "2h"})
        c("POST", "pki/sign/web", {"csr": "garbage"})
        c("GET", "pki/issue/web")
        c("DELETE", "pki/ca")
        c("POST", "pki/roles", {})
        c("GET", "pki/nothing")
        c("LIST", "pki/certs")
        c("GET", "pki/cert/{serial}", tok="none")
        c("POST", "pki/revoke", {"serial_number": "{serial}"})
        c("POST", "pki/revoke", {"serial_number": "{serial}"})
        c("POST", "pki/revoke", {"serial_number": "{root_serial}"})
        c("POST", "pki/revoke", {})
        c("LIST", "pki/certs/revoked")
        c("GET", "pki/cert/{serial}", tok="none")
        c("GET", "pki/crl", tok="none")
        c("GET", "pki/crl/pem", tok="none")
        c("GET", "pki/cert/crl", tok="none")
        c("POST", "pki/tidy", {})
        c("POST", "pki/tidy", {"tidy_cert_store": True, "tidy_revoked_certs": True})
        self.wait_tidy("pki")
        c("GET", "pki/tidy-status")
        c("POST", "sys/mounts/pki_int", {"type": "pki", "config": {"max_lease_ttl": "43800h"}})
        gen = c("POST", "pki_int/intermediate/generate/internal", {"common_name": "Golden Intermediate", "key_type": "ec"})
        v["int_csr"] = gen["data"]["csr"]
        signed = c("POST", "pki/root/sign-intermediate", {"csr": "{int_csr}", "common_name": "Golden Intermediate",
                                                          "ttl": "4380h"})
        v["int_cert"] = signed["data"]["certificate"]
        c("POST", "pki_int/intermediate/set-signed", {"certificate": "{int_cert}"})
        c("POST", "pki_int/intermediate/set-signed", {})
        c("LIST", "pki_int/issuers", tok="none")
        c("GET", "pki_int/ca_chain", tok="none")
        c("DELETE", "pki/root", tok="t1")
        c("DELETE", "pki/root")
        c("GET", "pki/ca/pem", tok="none")
        c("LIST", "pki/issuers", tok="none")

        # Sealing: the sealed answers of sys and of a mount.
        c("PUT", "sys/seal", {})
        c("GET", "sys/seal-status", tok="none")
        c("GET", "sys/health", tok="none")
        c("GET", "sys/health?sealedcode=299", tok="none")
        c("GET", "secret/app/config")

    def wait_tidy(self, mount):
        deadline = time.time() + 20
        while time.time() < deadline:
            status, _, body = self.send("GET", f"{mount}/tidy-status", self.tokens["root"], None)
            if status == 200 and json.loads(body)["data"]["state"] != "Running":
                return
            time.sleep(0.05)
        self.fail(f"{mount}/tidy did not finish")

    # -- the test ------------------------------------------------------------------------------

    def test_golden_responses(self):
        self.records = []
        self.tokens = {"none": None, "bogus": BOGUS_TOKEN, "root": None}
        self.vars = {"tmpdir": self.tmp}
        self.norm = Normalizer(self.tmp)
        self.scenario()

        if RECORD:
            os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
            with open(GOLDEN, "w", encoding="utf-8") as f:
                json.dump(self.records, f, indent=1, ensure_ascii=False)
                f.write("\n")
            print(f"\nrecorded {len(self.records)} request/response pairs to {GOLDEN}")
            return

        self.assertTrue(os.path.exists(GOLDEN),
                        f"{GOLDEN} is missing: record it with COFFER_GOLDEN_RECORD=1 from a build before the change")
        with open(GOLDEN, encoding="utf-8") as f:
            golden = json.load(f)

        def request_of(r):
            return {k: r[k] for k in ("method", "path", "token", "request", "request_raw") if k in r}

        problems = []
        if len(golden) != len(self.records):
            problems.append(f"golden file has {len(golden)} pairs, the test made {len(self.records)}")
        for i, (want, got) in enumerate(zip(golden, self.records)):
            if request_of(want) != request_of(got):
                problems.append(f"#{i}: the request list differs from the golden file (re-record it from a "
                                f"pre-change build):\n  golden: {json.dumps(request_of(want))}\n"
                                f"  test:   {json.dumps(request_of(got))}")
                break
            for field in ("status", "content_type", "body"):
                if want[field] != got[field]:
                    problems.append(
                        f"#{i}: {got['method']} /v1/{got['path']} (token: {got['token']})"
                        + (f" request: {json.dumps(got.get('request'), ensure_ascii=False)}" if "request" in got else "")
                        + f"\n  {field} differs"
                        + f"\n  expected: status {want['status']}, content-type {want['content_type']}\n    {want['body']}"
                        + f"\n  got:      status {got['status']}, content-type {got['content_type']}\n    {got['body']}"
                        + first_difference(want["body"], got["body"]))
                    break
        if problems:
            self.fail(f"{len(problems)} response(s) differ from {GOLDEN}:\n\n" + "\n\n".join(problems))


if __name__ == "__main__":
    unittest.main(verbosity=2)
