#include "cluster/setup.h"

#include <algorithm>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "crypto/secret_bytes.h"
#include "crypto/x509.h"
#include "util/encoding.h"
#include "util/files.h"
#include "util/human_time.h"
#include "util/progress.h"
#include "util/status.h"

namespace coffer::cluster {
namespace json = boost::json;
namespace {

constexpr Ca kCas[] = {Ca::kEtcd, Ca::kKubernetes, Ca::kFrontProxy};
constexpr const char* kSpecPath = "coffer-cluster";

// One desired object: `check` says what must happen ("" when nothing), `apply` does it.
// Steps of one stage do not depend on each other; a stage depends on those before it.
struct Step {
  std::string what;
  std::function<absl::StatusOr<std::string>()> check;
  std::function<absl::Status()> apply;
  int stage = 0;
};

// Checks, and changes of one stage, in flight at once: the server group-commits the durable
// writes and the init token files' fsyncs overlap, where one at a time waited for each in turn
// (bench/cluster_setup, 1,000 nodes: 4.5-5.9 s -> 2.3-2.4 s). http::Api's pool keeps 8 idle.
constexpr size_t kWorkers = 8;

// Calls fn(i) for every i in [0, n) on up to `workers` threads (the calling one when 1); once
// a call returns false no further call starts (those in flight finish). `finished` runs after
// each call, one at a time. An exception in a call stops the others too and is rethrown here,
// on the calling thread, once they are done; if threads cannot be made, fewer (or the calling
// thread alone) do the work.
void ForEachConcurrently(size_t n, size_t workers, const std::function<bool(size_t)>& fn,
                         const std::function<void()>& finished) {
  std::mutex mu;
  size_t next = 0;
  bool stop = false;
  std::exception_ptr thrown;
  auto work = [&] {
    for (;;) {
      size_t i = 0;
      {
        std::lock_guard<std::mutex> l(mu);
        if (stop || next == n) return;
        i = next++;
      }
      bool ok = false;
      try {
        ok = fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> l(mu);
        if (!thrown) thrown = std::current_exception();
      }
      std::lock_guard<std::mutex> l(mu);
      if (!ok) stop = true;
      finished();
    }
  };
  workers = std::min(workers, n);
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t w = 1; w < workers; ++w) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no more threads (a pids limit): those made and this one do it
    }
  }
  work();
  for (auto& t : threads) t.join();
  if (thrown) std::rethrow_exception(thrown);
}

// Compares the fields we set with what the server returns. Lists compare as sets of strings;
// numbers by value; a field the server does not echo counts as different.
bool Matches(const json::object& want, const json::object& have) {
  for (const auto& [k, v] : want) {
    const json::value* h = have.if_contains(k);
    if (!h) return false;
    if (v.is_array()) {
      if (!h->is_array()) return false;
      std::multiset<std::string> a, b;
      for (const auto& e : v.as_array()) a.insert(json::serialize(e));
      for (const auto& e : h->as_array()) b.insert(json::serialize(e));
      if (a != b) return false;
    } else if (v.is_number()) {
      if (!h->is_number() || v.to_number<double>() != h->to_number<double>()) return false;
    } else if (v != *h) {
      return false;
    }
  }
  return true;
}

// "create" when the read is a 404; the error for anything else but success.
absl::StatusOr<std::optional<json::object>> ReadMaybe(const http::Api& api, std::string_view path) {
  auto r = api.Read(path);
  if (!r.ok() && absl::IsNotFound(r.status())) return std::optional<json::object>();
  if (!r.ok()) return r.status();
  return std::optional<json::object>(std::move(*r));
}

// An object written whole at `path` (a role, a token role): created when missing, rewritten
// when a field we set differs.
Step ObjectStep(const http::Api& api, std::string what, const std::string& path,
                const json::object& body) {
  Step st;
  st.what = std::move(what);
  st.check = [&api, path, body]() -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(auto have, ReadMaybe(api, path));
    if (!have) return std::string("create");
    return Matches(body, *have) ? std::string() : std::string("update");
  };
  st.apply = [&api, path, body] { return api.Write(path, body).status(); };
  return st;
}

// Live node tokens, found through the accessor list (an admin tool: O(tokens) lookups).
absl::StatusOr<std::map<std::string, json::object>> NodeTokens(const http::Api& api,
                                                               const ClusterSpec& s,
                                                               std::ostream* progress = nullptr,
                                                               bool tty = false) {
  std::map<std::string, json::object> out;
  ASSIGN_OR_RETURN(auto accessors, api.List("auth/token/accessors"));
  const std::string prefix = Cat(s.name, "-node-");
  Progress bar(progress, tty, "tokens", accessors.size());
  size_t looked_up = 0;
  for (const auto& a : accessors) {
    bar.Set(looked_up++);
    auto r = api.Write("auth/token/lookup-accessor", json::object{{"accessor", a}});
    if (!r.ok()) continue;  // revoked meanwhile
    const json::value* d = r->if_contains("data");
    if (!d || !d->is_object()) continue;
    const json::value* role = d->as_object().if_contains("role");
    if (!role || !role->is_string()) continue;
    std::string_view rn = role->as_string();
    if (rn.substr(0, prefix.size()) != prefix) continue;
    out[std::string(rn.substr(prefix.size()))] = d->as_object();
  }
  bar.Set(accessors.size());
  bar.Finish();
  return out;
}

std::string TokenFile(const SetupOptions& o, const NodeSpec& n) {
  return Cat(o.init_token_dir, "/", n.name, ".token");
}

// Whether a stored init token is still usable (looked up by root without using it).
absl::StatusOr<bool> InitTokenValid(const http::Api& api, const std::string& token) {
  auto r = api.Write("auth/token/lookup", json::object{{"token", token}});
  if (r.ok()) return true;
  if (absl::IsPermissionDenied(r.status()) || absl::IsInvalidArgument(r.status()) ||
      absl::IsNotFound(r.status()))
    return false;
  return r.status();
}

absl::StatusOr<std::string> ServiceAccountKeyPair(std::string* pub) {
  // kubeadm's sa.key: RSA 2048, PKCS#1/PKCS#8 PEM; sa.pub its public key.
  ASSIGN_OR_RETURN(auto spec, crypto::ParseKeySpec("rsa", 2048));
  ASSIGN_OR_RETURN(auto key, crypto::GenerateKey(spec));
  ASSIGN_OR_RETURN(auto pem, crypto::PrivateKeyPem(key.get(), "pkcs8"));
  std::string der = crypto::PublicKeyDer(key.get());
  std::string b64 = Base64Encode(der);
  std::string p = "-----BEGIN PUBLIC KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) p += b64.substr(i, 64) + "\n";
  p += "-----END PUBLIC KEY-----\n";
  *pub = std::move(p);
  return std::string(pem.view());
}

absl::StatusOr<std::string> EncryptionConfig(std::string* key_b64) {
  ASSIGN_OR_RETURN(auto key, crypto::SecretBytes::Random(32));
  *key_b64 = Base64Encode(key.view());
  // secretbox (XSalsa20-Poly1305): the strongest local provider of EncryptionConfiguration.
  return Cat(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources:\n      - secrets\n    providers:\n      - secretbox:\n          keys:\n"
      "            - name: key1\n              secret: ",
      *key_b64, "\n      - identity: {}\n");
}

}  // namespace

absl::StatusOr<std::string> NewInitToken(const http::Api& api, const ClusterSpec& s,
                                         const NodeSpec& n) {
  json::object body{{"policies", json::array{Cat(s.name, "-init-", n.name)}},
                    {"no_default_policy", true},
                    {"num_uses", 1},
                    {"ttl", s.init_token_ttl},
                    {"renewable", false},
                    {"display_name", Cat(s.name, "-init-", n.name)},
                    {"meta", json::object{{"cluster", s.name}, {"node", n.name}}}};
  ASSIGN_OR_RETURN(auto r, api.Write("auth/token/create", body));
  const json::value* a = r.if_contains("auth");
  if (!a || !a->is_object() || !a->as_object().contains("client_token"))
    return absl::InternalError("the server returned no token");
  return std::string(a->as_object().at("client_token").as_string());
}

absl::StatusOr<ClusterSpec> LoadSpec(const http::Api& api, const std::string& cluster) {
  auto r = api.Read(Cat(cluster, "/secrets/", kSpecPath));
  if (!r.ok() && absl::IsNotFound(r.status()))
    return absl::NotFoundError(Cat("cluster \"", cluster,
                                   "\" is not set up here: run `coffer cluster setup ", cluster,
                                   "` first"));
  if (!r.ok()) return r.status();
  const json::value* spec = r->if_contains("spec");
  if (!spec || !spec->is_string()) return absl::DataLossError("the stored cluster spec is corrupt");
  boost::system::error_code ec;
  auto v = json::parse(spec->as_string(), ec);
  if (ec || !v.is_object()) return absl::DataLossError("the stored cluster spec is corrupt");
  return ClusterSpec::FromJson(v.as_object());
}

absl::StatusOr<int> Setup(const http::Api& api, const SetupOptions& o, std::ostream& out) {
  const ClusterSpec& s = o.spec;
  RETURN_IF_ERROR(s.Validate());
  if (!o.intermediate_of.empty() && o.csr)
    return absl::InvalidArgumentError("use --intermediate-of or --csr, not both");
  std::vector<Step> steps;
  size_t staged = 0;  // steps before this one have their stage set
  auto end_stage = [&](int stage) {
    for (; staged < steps.size(); ++staged) steps[staged].stage = stage;
  };

  // 1. Mounts, with the TTLs the CAs and leaves need.
  auto mount_step = [&](const std::string& path, const std::string& type, int64_t def,
                        int64_t max) {
    Step st;
    st.what = Cat("mount ", path, " (", type, ")");
    st.check = [&api, path, type, def, max]() -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(auto m, ReadMaybe(api, Cat("sys/mounts/", path)));
      if (!m) return std::string("create");
      auto* t = m->if_contains("type");
      if (!t || !t->is_string() || t->as_string() != type)
        return absl::FailedPreconditionError(
            Cat(path, " is already mounted with another type; move it away first"));
      if (max == 0) return std::string();
      ASSIGN_OR_RETURN(auto tune, api.Read(Cat("sys/mounts/", path, "/tune")));
      if (!Matches(json::object{{"default_lease_ttl", def}, {"max_lease_ttl", max}}, tune))
        return std::string("re-tune TTLs");
      return std::string();
    };
    st.apply = [&api, path, type, def, max]() -> absl::Status {
      ASSIGN_OR_RETURN(auto m, ReadMaybe(api, Cat("sys/mounts/", path)));
      if (!m) {
        json::object body{{"type", type}, {"description", "coffer cluster setup"}};
        if (max > 0)
          body["config"] = json::object{{"default_lease_ttl", def}, {"max_lease_ttl", max}};
        return api.Write(Cat("sys/mounts/", path), body).status();
      }
      return api
          .Write(Cat("sys/mounts/", path, "/tune"),
                 json::object{{"default_lease_ttl", def}, {"max_lease_ttl", max}})
          .status();
    };
    steps.push_back(std::move(st));
  };
  for (Ca ca : kCas) mount_step(MountPath(s, ca), "pki", s.leaf_ttl, s.ca_ttl);
  mount_step(SecretsMount(s), "kv", 0, 0);
  {
    // The node registry: KV version 2 (each entry's version time is the server's), one version.
    const std::string nodes = NodesMount(s);
    Step st;
    st.what = Cat("mount ", nodes, " (kv version 2, node registry)");
    st.check = [&api, nodes]() -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(auto m, ReadMaybe(api, Cat("sys/mounts/", nodes)));
      if (!m) return std::string("create");
      const json::value* t = m->if_contains("type");
      const json::value* o = m->if_contains("options");
      const json::value* v = o && o->is_object() ? o->as_object().if_contains("version") : nullptr;
      if (!t || !t->is_string() || t->as_string() != "kv" || !v || !v->is_string() ||
          v->as_string() != "2")
        return absl::FailedPreconditionError(
            Cat(nodes, " is already mounted as something else than KV version 2; move it away"));
      ASSIGN_OR_RETURN(auto c, api.Read(Cat(nodes, "/config")));
      if (!Matches(json::object{{"max_versions", 1}}, c)) return std::string("configure");
      return std::string();
    };
    st.apply = [&api, nodes]() -> absl::Status {
      ASSIGN_OR_RETURN(auto m, ReadMaybe(api, Cat("sys/mounts/", nodes)));
      if (!m) {
        RETURN_IF_ERROR(api.Write(Cat("sys/mounts/", nodes),
                                  json::object{{"type", "kv"},
                                               {"options", json::object{{"version", "2"}}},
                                               {"description", "coffer node registry"}})
                            .status());
      }
      return api.Write(Cat(nodes, "/config"), json::object{{"max_versions", 1}}).status();
    };
    steps.push_back(std::move(st));
  }

  end_stage(1);

  // 2. The CAs.
  for (Ca ca : kCas) {
    const std::string mount = MountPath(s, ca);
    Step st;
    st.what = Cat("CA of ", mount, " (CN ", CaCommonName(ca), ")");
    st.check = [&api, mount]() -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(auto issuers, api.List(Cat(mount, "/issuers")));
      if (!issuers.empty()) return std::string();
      return std::string("create");
    };
    st.apply = [&api, &o, &s, &out, mount, ca]() -> absl::Status {
      const std::string cn(CaCommonName(ca));
      json::object gen{{"common_name", cn},
                       {"key_type", s.key_type},
                       {"key_bits", s.key_bits},
                       {"ttl", s.ca_ttl},
                       {"issuer_name", cn}};
      if (o.intermediate_of.empty() && !o.csr)
        return api.Write(Cat(mount, "/root/generate/internal"), gen).status();
      gen.erase("ttl");
      gen.erase("issuer_name");
      ASSIGN_OR_RETURN(auto r, api.Write(Cat(mount, "/intermediate/generate/internal"), gen));
      const json::value* d = r.if_contains("data");
      if (!d || !d->is_object() || !d->as_object().contains("csr"))
        return absl::InternalError("intermediate/generate returned no CSR");
      std::string csr(d->as_object().at("csr").as_string());
      if (o.csr) {
        std::string file = Cat(o.csr_dir, "/", CaName(ca), ".csr");
        RETURN_IF_ERROR(files::WriteAtomic(file, csr + "\n", 0644));
        out << "    CSR for " << mount << " written to " << file << "; sign it and run `coffer "
            << "cluster import-ca " << s.name << " " << CaName(ca) << " CERT.pem`\n";
        return absl::OkStatus();
      }
      ASSIGN_OR_RETURN(
          auto signed_resp,
          api.Write(
              Cat(o.intermediate_of, "/root/sign-intermediate"),
              json::object{
                  {"csr", csr}, {"common_name", cn}, {"ttl", s.ca_ttl}, {"format", "pem_bundle"}}));
      const json::value* sd = signed_resp.if_contains("data");
      if (!sd || !sd->is_object()) return absl::InternalError("sign-intermediate returned no data");
      std::string bundle(sd->as_object().at("certificate").as_string());
      return api
          .Write(Cat(mount, "/intermediate/set-signed"), json::object{{"certificate", bundle}})
          .status();
    };
    steps.push_back(std::move(st));
  }

  end_stage(2);

  // 3. Roles: shared ones once, per-node ones for every node of a role that gets them.
  for (const auto& k : Kinds(s)) {
    std::vector<const NodeSpec*> targets;
    if (!k.per_node) {
      targets.push_back(nullptr);
    } else {
      for (const auto& n : s.nodes)
        for (const auto& r : k.node_roles)
          if (n.Has(r)) {
            targets.push_back(&n);
            break;
          }
    }
    for (const NodeSpec* n : targets) {
      const std::string path = Cat(MountPath(s, k.ca), "/roles/", RoleName(k, n));
      steps.push_back(ObjectStep(api, Cat("role ", path), path, RoleBody(s, k, n)));
    }
  }

  end_stage(3);

  // 4. Policies and token roles.
  auto policy_step = [&](const std::string& name, const std::string& text) {
    Step st;
    st.what = Cat("policy ", name);
    st.check = [&api, name, text]() -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(auto have, ReadMaybe(api, Cat("sys/policy/", name)));
      if (!have) return std::string("create");
      auto* rules = have->if_contains("rules");
      return rules && rules->is_string() && rules->as_string() == text ? std::string()
                                                                       : std::string("update");
    };
    st.apply = [&api, name, text] {
      return api.Write(Cat("sys/policy/", name), json::object{{"policy", text}}).status();
    };
    steps.push_back(std::move(st));
  };
  for (const char* r : kNodeRoles) policy_step(Cat(s.name, "-", r), NodeRolePolicy(s, r));
  for (const auto& n : s.nodes) {
    policy_step(Cat(s.name, "-node-", n.name), NodePolicy(s, n));
    policy_step(Cat(s.name, "-init-", n.name), InitPolicy(s, n));
    steps.push_back(ObjectStep(api, Cat("token role ", NodeTokenRole(s, n)),
                               Cat("auth/token/roles/", NodeTokenRole(s, n)), TokenRoleBody(s, n)));
  }

  end_stage(4);

  // 5. Secrets: made once, never replaced (rotating them is a deliberate act).
  {
    const std::string sa = Cat(SecretsMount(s), "/service-accounts");
    steps.push_back({Cat("secret ", sa, " (service-account key pair, RSA 2048)"),
                     [&api, sa]() -> absl::StatusOr<std::string> {
                       ASSIGN_OR_RETURN(auto have, ReadMaybe(api, sa));
                       return have ? std::string() : std::string("create");
                     },
                     [&api, sa]() -> absl::Status {
                       std::string pub;
                       ASSIGN_OR_RETURN(std::string key, ServiceAccountKeyPair(&pub));
                       json::object body{{"key", key}, {"pub", pub}};
                       auto st = api.Write(sa, body).status();
                       std::fill(key.begin(), key.end(), '\0');
                       return st;
                     }});
    const std::string enc = Cat(SecretsMount(s), "/encryption-config");
    steps.push_back(
        {Cat("secret ", enc, " (EncryptionConfiguration, secretbox key)"),
         [&api, enc]() -> absl::StatusOr<std::string> {
           ASSIGN_OR_RETURN(auto have, ReadMaybe(api, enc));
           return have ? std::string() : std::string("create");
         },
         [&api, enc]() -> absl::Status {
           std::string key;
           ASSIGN_OR_RETURN(std::string cfg, EncryptionConfig(&key));
           auto st = api.Write(enc, json::object{{"key", key}, {"config", cfg}}).status();
           std::fill(key.begin(), key.end(), '\0');
           std::fill(cfg.begin(), cfg.end(), '\0');
           return st;
         }});
    const std::string specp = Cat(SecretsMount(s), "/", kSpecPath);
    const std::string spec_text = json::serialize(s.ToJson());
    steps.push_back({Cat("cluster spec ", specp),
                     [&api, specp, spec_text]() -> absl::StatusOr<std::string> {
                       ASSIGN_OR_RETURN(auto have, ReadMaybe(api, specp));
                       if (!have) return std::string("create");
                       auto* t = have->if_contains("spec");
                       return t && t->is_string() && t->as_string() == spec_text
                                  ? std::string()
                                  : std::string("update");
                     },
                     [&api, specp, spec_text] {
                       return api.Write(specp, json::object{{"spec", spec_text}}).status();
                     }});
  }

  end_stage(5);

  // 6. Init tokens (their token roles and policies are made in stage 4): for a node that holds no
  // token and has no usable init token in the folder.
  std::optional<std::map<std::string, json::object>> holders;
  std::mutex holders_mu;  // checks run concurrently; the first that needs the holders finds them
  if (!o.init_token_dir.empty()) {
    for (const auto& n : s.nodes) {
      Step st;
      st.what = Cat("init token for node ", n.name, " (", TokenFile(o, n), ")");
      st.check = [&api, &o, &s, &holders, &holders_mu, &n]() -> absl::StatusOr<std::string> {
        ASSIGN_OR_RETURN(auto have, files::ReadIfExists(TokenFile(o, n)));
        if (have) {
          std::string t = *have;
          while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
          auto valid = InitTokenValid(api, t);
          std::fill(t.begin(), t.end(), '\0');
          if (!valid.ok() && !absl::IsNotFound(valid.status())) return valid.status();
          if (valid.ok() && *valid) return std::string();
        }
        std::lock_guard<std::mutex> l(holders_mu);
        if (!holders) {
          auto h = NodeTokens(api, s);
          if (!h.ok() && !absl::IsNotFound(h.status())) return h.status();
          holders = h.ok() ? *h : std::map<std::string, json::object>{};
        }
        if (holders->count(n.name)) return std::string();  // booted: it renews its own token
        return std::string("create");
      };
      st.apply = [&api, &o, &s, &n]() -> absl::Status {
        ASSIGN_OR_RETURN(std::string token, NewInitToken(api, s, n));
        files::WriteOptions w;
        w.mode = 0600;
        auto st = files::WriteAtomic(TokenFile(o, n), token + "\n", w);
        std::fill(token.begin(), token.end(), '\0');
        return st;
      };
      steps.push_back(std::move(st));
    }
  }

  end_stage(6);

  // Plan, then apply.
  std::vector<std::pair<const Step*, std::string>> plan;
  Progress checking(o.progress, o.progress_tty, "checking", steps.size());
  std::vector<std::optional<absl::StatusOr<std::string>>> checks(steps.size());
  size_t checked = 0;
  ForEachConcurrently(
      steps.size(), kWorkers,
      [&](size_t i) {
        const auto& c = *(checks[i] = steps[i].check());
        return c.ok() || (o.dry_run && absl::IsNotFound(c.status()));
      },
      [&] { checking.Set(++checked); });
  for (size_t i = 0; i < steps.size() && checks[i]; ++i) {
    const Step& st = steps[i];
    const absl::StatusOr<std::string>& c = *checks[i];
    if (!c.ok()) {
      // Dry run against a fresh server: checks of objects under mounts that do not exist yet.
      if (o.dry_run && absl::IsNotFound(c.status())) {
        plan.emplace_back(&st, "create");
        continue;
      }
      return absl::Status(c.status().code(), Cat(st.what, ": ", std::string(c.status().message())));
    }
    if (!c->empty()) plan.emplace_back(&st, *c);
  }
  checking.Finish();
  if (plan.empty()) {
    out << "cluster " << s.name << ": no changes\n";
    return 0;
  }
  out << "Plan for cluster " << s.name << " (" << plan.size() << " changes):\n";
  for (const auto& [st, action] : plan) out << "  " << action << ": " << st->what << "\n";
  if (o.dry_run) return static_cast<int>(plan.size());
  out << "Applying:\n";
  // Stage by stage (the plan keeps the steps' order, so a stage's entries are adjacent). Mounts
  // and CAs one at a time (a CA step may print, and there are four of them); the rest in
  // parallel. "done" lines come in plan order once their stage is over.
  int done = 0;
  Progress applying(o.progress, o.progress_tty, "applying", plan.size());
  for (size_t begin = 0; begin < plan.size();) {
    const int stage = plan[begin].first->stage;
    size_t end = begin;
    while (end < plan.size() && plan[end].first->stage == stage) ++end;
    auto finished = static_cast<size_t>(done);
    std::vector<std::optional<absl::Status>> results(end - begin);  // nullopt: not started
    ForEachConcurrently(
        end - begin, stage <= 2 ? 1 : kWorkers,
        [&](size_t i) { return (results[i] = plan[begin + i].first->apply())->ok(); },
        [&] { applying.Set(++finished); });
    const absl::Status* first_error = nullptr;
    const Step* failed = nullptr;
    for (size_t i = begin; i < end; ++i) {
      const std::optional<absl::Status>& st = results[i - begin];
      if (st && st->ok()) {
        ++done;
        out << "  done " << plan[i].second << ": " << plan[i].first->what << "\n";
      } else if (st && !first_error) {
        first_error = &*st;
        failed = plan[i].first;
      }
    }
    if (first_error)
      return absl::Status(
          first_error->code(),
          Cat(failed->what, ": ", std::string(first_error->message()), " (", done, " of ",
              plan.size(), " changes were made; run setup again to finish)"));
    begin = end;
  }
  applying.Set(static_cast<size_t>(done));
  applying.Finish();
  out << "cluster " << s.name << ": " << done << " changes made\n";
  return done;
}

absl::Status ImportCa(const http::Api& api, const std::string& cluster, const std::string& ca,
                      const std::string& pem, std::ostream& out) {
  if (ca != "etcd" && ca != "kubernetes" && ca != "front-proxy")
    return absl::InvalidArgumentError(
        Cat("CA \"", ca, "\" must be etcd, kubernetes or front-proxy"));
  const std::string mount = Cat(cluster, "/pki/", ca);
  ASSIGN_OR_RETURN(auto r, api.Write(Cat(mount, "/intermediate/set-signed"),
                                     json::object{{"certificate", pem}}));
  out << "Installed the signed CA certificate in " << mount << "\n";
  return absl::OkStatus();
}

absl::Status ForEachStoredCert(const http::Api& api, const std::string& mount,
                               const std::function<void(const StoredCert&)>& fn,
                               const std::function<void(size_t)>& page) {
  constexpr size_t kPage = 1000;
  std::string after;
  for (;;) {
    std::string q = Cat(mount, "/certs?key_info=true&limit=", kPage);
    if (!after.empty()) q += Cat("&after=", after);
    auto r = api.Call("LIST", q);
    if (!r.ok() && absl::IsNotFound(r.status())) return absl::OkStatus();
    if (!r.ok()) return r.status();
    const json::value* d = r->if_contains("data");
    if (!d || !d->is_object()) return absl::OkStatus();
    const json::value* keys = d->as_object().if_contains("keys");
    const json::value* info = d->as_object().if_contains("key_info");
    if (!keys || !keys->is_array()) return absl::OkStatus();
    for (const auto& k : keys->as_array()) {
      if (!k.is_string()) continue;
      StoredCert c;
      c.serial = std::string(k.as_string());
      const json::value* e =
          info && info->is_object() ? info->as_object().if_contains(c.serial) : nullptr;
      if (!e || !e->is_object()) continue;
      const json::value* exp = e->as_object().if_contains("expiration");
      const json::value* cn = e->as_object().if_contains("common_name");
      if (exp && exp->is_int64()) c.expiration = exp->as_int64();
      if (cn && cn->is_string()) c.common_name = std::string(cn->as_string());
      fn(c);
    }
    const size_t n = keys->as_array().size();
    if (page) page(n);
    if (n < kPage) return absl::OkStatus();
    after = std::string(keys->as_array().back().as_string());
  }
}

absl::Status Status(const http::Api& api, const std::string& cluster, int soonest, int64_t now,
                    std::ostream& out, std::ostream* progress, bool progress_tty) {
  ASSIGN_OR_RETURN(ClusterSpec s, LoadSpec(api, cluster));
  out << "Cluster " << s.name << " (keys " << s.key_type
      << (s.key_type == "ed25519" ? "" : Cat("-", s.key_bits)) << ", leaf TTL "
      << TtlText(s.leaf_ttl) << ")\n\nCAs:\n";
  for (Ca ca : kCas) {
    const std::string mount = MountPath(s, ca);
    auto r = api.Read(Cat(mount, "/cert/ca"));
    if (!r.ok()) {
      out << "  " << mount << ": no CA (" << std::string(r.status().message()) << ")\n";
      continue;
    }
    auto cert = crypto::ParseCertPem(std::string(r->at("certificate").as_string()));
    if (!cert.ok()) {
      out << "  " << mount << ": unreadable CA\n";
      continue;
    }
    int64_t na = crypto::NotAfterUnix(cert->get());
    out << "  " << mount << ": CN=" << crypto::CommonName(X509_get_subject_name(cert->get()))
        << (crypto::IsSelfSigned(cert->get()) ? " (root)" : " (intermediate)") << ", expires "
        << ExpiryText(na, now) << "\n";
  }
  out << "\nRoles:\n";
  for (Ca ca : kCas) {
    ASSIGN_OR_RETURN(auto roles, api.List(Cat(MountPath(s, ca), "/roles")));
    out << "  " << MountPath(s, ca) << ": ";
    for (size_t i = 0; i < roles.size(); ++i) out << (i ? ", " : "") << roles[i];
    out << "\n";
  }
  out << "\nNodes:\n";
  ASSIGN_OR_RETURN(auto holders, NodeTokens(api, s, progress, progress_tty));
  for (const auto& n : s.nodes) {
    out << "  " << n.name << " [";
    for (size_t i = 0; i < n.roles.size(); ++i) out << (i ? "+" : "") << n.roles[i];
    out << "] ";
    auto it = holders.find(n.name);
    if (it == holders.end()) {
      out << "no token (not booted yet, or its token expired)\n";
    } else {
      auto* ttl = it->second.if_contains("ttl");
      out << "holds a token, ttl " << TtlText(ttl && ttl->is_int64() ? ttl->as_int64() : 0) << "\n";
    }
  }
  // Soonest expiring live certificates, paging through each mount's store (bounded memory).
  struct Entry {
    int64_t expiration;
    std::string mount, serial, cn;
  };
  std::vector<Entry> top;
  // The bar's total is what each mount's tidy-status counts (certs/ names); a mount that cannot
  // say counts as empty, and the bar then only ends later than it showed.
  size_t total = 0, seen = 0;
  for (Ca ca : kCas) {
    auto t = api.Read(Cat(MountPath(s, ca), "/tidy-status"));
    const json::value* n = t.ok() ? t->if_contains("cert_store_current_entry_count") : nullptr;
    if (n && n->is_int64() && n->as_int64() > 0) total += static_cast<size_t>(n->as_int64());
  }
  Progress bar(progress, progress_tty, "certificates", total);
  for (Ca ca : kCas) {
    const std::string mount = MountPath(s, ca);
    RETURN_IF_ERROR(ForEachStoredCert(
        api, mount,
        [&](const StoredCert& c) {
          if (c.expiration <= now) return;
          top.push_back({c.expiration, mount, c.serial, c.common_name});
          std::sort(top.begin(), top.end(),
                    [](const Entry& a, const Entry& b) { return a.expiration < b.expiration; });
          if (top.size() > static_cast<size_t>(soonest)) top.pop_back();
        },
        [&](size_t names) {
          seen += names;
          bar.Set(std::min(seen, total));
        }));
  }
  bar.Finish();
  out << "\nCertificates expiring soonest:\n";
  if (top.empty()) out << "  (none stored)\n";
  for (const auto& e : top)
    out << "  " << e.mount << " " << e.serial << " CN=" << e.cn << " expires "
        << ExpiryText(e.expiration, now) << "\n";
  return absl::OkStatus();
}

}  // namespace coffer::cluster
