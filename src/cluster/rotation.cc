#include "cluster/rotation.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cluster/profile.h"
#include "cluster/setup.h"
#include "crypto/cert_fields.h"
#include "crypto/pem.h"
#include "util/files.h"
#include "util/human_time.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/shell.h"
#include "util/status.h"

namespace coffer::cluster {
namespace {

namespace json = boost::json;

struct Doc {
  json::object o;
  int64_t version = 0;  // the KV version the next write must replace (0: none yet)
  bool exists = false;
};

json::array Array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object& Batch(json::object& o) {
  json::value& b = o["batch"];
  if (!b.is_object()) b = json::object();
  return b.as_object();
}

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string DocPath(const std::string& cluster) {
  return Cat(cluster, "/nodes/data/", kRotationKey);
}

absl::StatusOr<Doc> ReadDoc(const http::Api& api, const std::string& cluster) {
  Doc d;
  auto r = api.Read(DocPath(cluster));
  if (!r.ok() && absl::IsNotFound(r.status())) {
    // Never written, or its latest version deleted: a write must name the current version.
    auto m = api.Read(Cat(cluster, "/nodes/metadata/", kRotationKey));
    if (m.ok()) d.version = JsonIntOr(*m, "current_version");
    return d;
  }
  if (!r.ok()) return r.status();
  if (const json::value* m = r->if_contains("metadata"); m && m->is_object())
    d.version = JsonIntOr(m->as_object(), "version");
  if (const json::value* v = r->if_contains("data"); v && v->is_object()) {
    d.o = v->as_object();
    d.exists = true;
  }
  return d;
}

absl::StatusOr<Doc> ReadExisting(const http::Api& api, const std::string& cluster) {
  ASSIGN_OR_RETURN(Doc d, ReadDoc(api, cluster));
  if (!d.exists)
    return absl::NotFoundError(Cat("cluster ", cluster,
                                   " has no CA rotation; start one with `coffer cluster rotate-ca ",
                                   cluster, " --ca etcd|kubernetes|front-proxy`"));
  return d;
}

// Check-and-set on the document's version: a second driver's write fails instead of
// interleaving.
absl::Status WriteDoc(const http::Api& api, const std::string& cluster, Doc& d) {
  auto r = api.Write(DocPath(cluster),
                     json::object{{"options", json::object{{"cas", d.version}}}, {"data", d.o}});
  if (!r.ok() && absl::IsInvalidArgument(r.status()) &&
      std::string(r.status().message()).find("check-and-set") != std::string::npos)
    return absl::AbortedError(
        "the rotation document changed under this command (another `coffer cluster rotation` "
        "command is driving it?); run `coffer cluster rotation status` to see it");
  if (!r.ok()) return r.status();
  if (const json::value* v = r->if_contains("data"); v && v->is_object())
    d.version = JsonIntOr(v->as_object(), "version");
  else
    d.version += 1;
  d.exists = true;
  return absl::OkStatus();
}

bool Finished(const json::object& o) {
  const std::string p = JsonStringOr(o, "phase");
  return p == "done" || p == "aborted";
}

// The node names that hold a certificate of `ca`, in the spec's order.
std::vector<std::string> Participants(const ClusterSpec& s, Ca ca) {
  std::vector<std::string> out;
  for (const auto& n : s.nodes) {
    bool holds = false;
    for (const auto& k : Kinds(s))
      if (k.ca == ca)
        for (const auto& r : k.node_roles) holds = holds || n.Has(r);
    if (holds) out.push_back(n.name);
  }
  return out;
}

absl::StatusOr<Ca> ParseCa(std::string_view name) {
  for (Ca ca : {Ca::kEtcd, Ca::kKubernetes, Ca::kFrontProxy})
    if (CaName(ca) == name) return ca;
  return absl::InvalidArgumentError(
      Cat("--ca \"", name, "\" must be etcd, kubernetes or front-proxy"));
}

// A node's acknowledgement (its registry entry's "rotation" object), empty when it has none.
absl::StatusOr<json::object> Ack(const http::Api& api, const std::string& cluster,
                                 const std::string& node) {
  auto r = api.Read(Cat(cluster, "/nodes/data/", node));
  if (!r.ok() && absl::IsNotFound(r.status())) return json::object();
  if (!r.ok()) return r.status();
  if (const json::value* d = r->if_contains("data"); d && d->is_object())
    if (const json::value* a = d->as_object().if_contains("rotation"); a && a->is_object())
      return a->as_object();
  return json::object();
}

enum class NodeState { kWaiting, kActing, kDone, kFailed, kSkipped };

struct NodeView {
  std::string name;
  NodeState state = NodeState::kWaiting;
  int64_t since = 0;
  std::string error, output;
};

// What the driver already knows in the current phase: nodes done (an acknowledgement of the
// phase is final) and, after one full read, that a node outside the batch has not acted (it
// acts only when let in), so each tick reads only the batch's entries.
struct NodeCache {
  std::string phase_key;  // id/phase/generation the sets belong to
  std::set<std::string> done;
  bool read_all = false;
};

absl::StatusOr<std::vector<NodeView>> Nodes(const http::Api& api, const std::string& cluster,
                                            const json::object& doc, NodeCache* cache = nullptr) {
  const std::string id = JsonStringOr(doc, "id"), phase = JsonStringOr(doc, "phase");
  const json::value* batch = doc.if_contains("batch");
  const std::string key = Cat(id, "/", phase, "/", JsonIntOr(doc, "generation"));
  if (cache && cache->phase_key != key) *cache = NodeCache{key, {}, false};
  std::vector<NodeView> out;
  for (const auto& n : JsonStringsOr(doc, "nodes")) {
    NodeView v{n};
    const bool in_batch = batch && batch->is_object() && batch->as_object().contains(n);
    if (cache && cache->done.contains(n)) {
      v.state = NodeState::kDone;
      out.push_back(std::move(v));
      continue;
    }
    if (cache && cache->read_all && !in_batch) {
      out.push_back(std::move(v));  // waiting for its turn
      continue;
    }
    ASSIGN_OR_RETURN(json::object a, Ack(api, cluster, n));
    const bool here = JsonStringOr(a, "id") == id && JsonStringOr(a, "phase") == phase;
    if (batch && batch->is_object())
      if (const json::value* t = batch->as_object().if_contains(n); t && t->is_int64()) {
        v.state = NodeState::kActing;
        v.since = t->as_int64();
      }
    if (here && JsonStringOr(a, "state") == "done") {
      v.state = NodeState::kDone;
      v.since = JsonIntOr(a, "at");
    } else if (here && JsonStringOr(a, "state") == "failed" &&
               JsonIntOr(a, "generation") == JsonIntOr(doc, "generation")) {
      v.state = NodeState::kFailed;
      v.since = JsonIntOr(a, "at");
      v.error = PrintableText(JsonStringOr(a, "error"), 1024);
      v.output = PrintableText(JsonStringOr(a, "output"), 4096);
    }
    if (cache && v.state == NodeState::kDone) cache->done.insert(n);
    out.push_back(std::move(v));
  }
  if (cache) cache->read_all = true;
  for (const auto& n : JsonStringsOr(doc, "skipped")) out.push_back({n, NodeState::kSkipped});
  return out;
}

// The old issuer's usage as it was before the rotation (finalize takes issuing away).
absl::Status RestoreOldUsage(const http::Api& api, const json::object& doc) {
  std::string usage = JsonStringOr(doc, "old_usage");
  if (usage.empty()) usage = "read-only,issuing-certificates,crl-signing,ocsp-signing";
  return api
      .Write(Cat(JsonStringOr(doc, "mount"), "/issuer/", JsonStringOr(doc, "old_issuer")),
             json::object{{"usage", usage}})
      .status();
}

// What happens on the server when every node has finished `phase`; returns the next phase.
absl::StatusOr<std::string> Advance(const http::Api& api, json::object& doc, std::ostream& out) {
  const std::string phase = JsonStringOr(doc, "phase"), mount = JsonStringOr(doc, "mount");
  const std::string old_issuer = JsonStringOr(doc, "old_issuer"),
                    new_issuer = JsonStringOr(doc, "new_issuer");
  if (phase == "trust") return std::string("reissue");
  if (phase == "reissue") {
    // From here on renewals anywhere (nodes, cert-manager, people) get the new CA.
    RETURN_IF_ERROR(
        api.Write(Cat(mount, "/config/issuers"), json::object{{"default", new_issuer}}).status());
    out << "  the default issuer of " << mount << " is now " << new_issuer << "\n";
    return std::string("finalize");
  }
  if (phase == "finalize") {
    // No node trusts the old CA any more: it keeps its CRL, and signs nothing new.
    RETURN_IF_ERROR(api.Write(Cat(mount, "/issuer/", old_issuer),
                              json::object{{"usage", "read-only,crl-signing"}})
                        .status());
    out << "  the old issuer " << old_issuer << " no longer issues\n";
    const auto hooks = JsonStringsOr(doc, "finalize_hooks");
    for (int64_t i = JsonIntOr(doc, "finalize_hooks_done"); i < static_cast<int64_t>(hooks.size());
         ++i) {
      std::string output;
      const int rc = RunShellCaptured(hooks[static_cast<size_t>(i)], &output);
      if (rc != 0) {
        // The output stays on this terminal: the document is readable by every node.
        out << "  finalize hook \"" << hooks[static_cast<size_t>(i)] << "\" exited with " << rc
            << "; its output:\n"
            << PrintableText(output, 4096) << "\n";
        return absl::FailedPreconditionError(Cat("finalize hook ", i + 1, " exited with ", rc));
      }
      out << "  ran finalize hook: " << hooks[static_cast<size_t>(i)] << "\n";
      doc["finalize_hooks_done"] = i + 1;
    }
    return std::string("done");
  }
  // Abort runs the rotation backwards from where it stopped (Abort picks the first step), so that
  // no node ever presents a certificate another node does not trust.
  if (phase == "abort-trust") {
    // From here on renewals anywhere get the old CA again: every node trusts it now.
    RETURN_IF_ERROR(
        api.Write(Cat(mount, "/config/issuers"), json::object{{"default", old_issuer}}).status());
    return std::string("abort-reissue");
  }
  if (phase == "abort-reissue") return std::string("abort-finalize");
  if (phase == "abort-finalize") {
    RETURN_IF_ERROR(
        api.Write(Cat(mount, "/config/issuers"), json::object{{"default", old_issuer}}).status());
    RETURN_IF_ERROR(RestoreOldUsage(api, doc));
    RETURN_IF_ERROR(
        api.Write(Cat(mount, "/issuer/", new_issuer), json::object{{"usage", "read-only"}})
            .status());
    // The abandoned key is no longer certified by the old CA (its CRL lists the cross-signed
    // certificate), and agents stop sending it.
    if (const std::string cross = JsonStringOr(doc, "cross_issuer"); !cross.empty()) {
      RETURN_IF_ERROR(api.Write(Cat(mount, "/issuer/", cross, "/revoke"), json::object{}).status());
      if (json::value* c = doc.if_contains("crosses"); c && c->is_object())
        c->as_object().erase(mount);
      out << "  the cross-signed certificate " << cross << " is revoked\n";
    }
    out << "  the default issuer of " << mount << " is " << old_issuer << " again; " << new_issuer
        << " no longer issues\n";
    return std::string("aborted");
  }
  return absl::InternalError(Cat("the rotation is in an unknown phase \"", phase, "\""));
}

// Wakes the agents of `nodes` (their long poll is on their own turn key): the document, which
// says what to do, is written first.
absl::Status WriteTurns(const http::Api& api, const std::string& cluster, const json::object& doc,
                        const std::vector<std::string>& nodes) {
  for (const auto& n : nodes)
    RETURN_IF_ERROR(
        api.Write(
               Cat(cluster, "/nodes/data/", kTurnPrefix, n),
               json::object{{"data", json::object{{"id", JsonStringOr(doc, "id")},
                                                  {"phase", JsonStringOr(doc, "phase")},
                                                  {"generation", JsonIntOr(doc, "generation")}}}})
            .status());
  return absl::OkStatus();
}

// Every node of the current batch, woken again (after resume or a repeated abort).
absl::Status WakeBatch(const http::Api& api, const std::string& cluster, const json::object& doc) {
  std::vector<std::string> batch;
  if (const json::value* b = doc.if_contains("batch"); b && b->is_object())
    for (const auto& [n, since] : b->as_object()) batch.emplace_back(n);
  return WriteTurns(api, cluster, doc, batch);
}

// One step of the driver. Returns true when the rotation is finished.
absl::StatusOr<bool> Tick(const http::Api& api, const RotateOptions& o, std::ostream& out,
                          std::unique_ptr<Progress>* bar, std::string* shown, NodeCache* cache) {
  ASSIGN_OR_RETURN(Doc d, ReadExisting(api, o.cluster));
  const std::string phase = JsonStringOr(d.o, "phase");
  if (Finished(d.o)) return true;
  if (!JsonStringOr(d.o, "error").empty())
    return absl::FailedPreconditionError(
        Cat("the rotation is paused: ", JsonStringOr(d.o, "error"),
            "; after fixing it run `coffer cluster rotation resume ", o.cluster, "`"));
  ASSIGN_OR_RETURN(auto nodes, Nodes(api, o.cluster, d.o, cache));
  size_t done = 0, total = 0;
  for (const auto& n : nodes) {
    if (n.state == NodeState::kSkipped) continue;
    ++total;
    if (n.state == NodeState::kDone) ++done;
    if (n.state == NodeState::kFailed) {
      // The document (readable by every node) names the node only; the error and the hook's
      // output stay in that node's own entry, shown here and by `rotation status`.
      d.o["error"] = Cat("node ", n.name, " failed the ", phase, " phase");
      RETURN_IF_ERROR(WriteDoc(api, o.cluster, d));
      if (*bar) (*bar)->Finish();
      return absl::FailedPreconditionError(
          Cat("the rotation is paused: node ", n.name, " failed the ", phase, " phase: ", n.error,
              n.output.empty() ? "" : Cat("\n  hook output:\n", n.output),
              "\nafter fixing it run `coffer cluster rotation resume ", o.cluster, "`"));
    }
  }
  if (*shown != phase) {
    if (*bar) (*bar)->Finish();
    *bar = std::make_unique<Progress>(o.progress, o.progress_tty, Cat("phase ", phase), total, 0);
    *shown = phase;
  }
  if (*bar) (*bar)->Set(done);
  if (done == total) {
    auto next = Advance(api, d.o, out);
    if (!next.ok()) {
      d.o["error"] = std::string(next.status().message());
      RETURN_IF_ERROR(WriteDoc(api, o.cluster, d));
      return absl::FailedPreconditionError(
          Cat("the rotation is paused: ", std::string(next.status().message()),
              "; after fixing it run ", "`coffer cluster rotation resume ", o.cluster, "`"));
    }
    if (*bar) (*bar)->Finish();
    out << "phase " << phase << " done on " << total << " node" << (total == 1 ? "" : "s") << " ("
        << SpanText(Now() - JsonIntOr(d.o, "phase_started")) << ")\n";
    d.o["phase"] = *next;
    d.o["phase_started"] = Now();
    d.o["batch"] = json::object();
    RETURN_IF_ERROR(WriteDoc(api, o.cluster, d));
    if (Finished(d.o)) {
      out << "rotation " << JsonStringOr(d.o, "id") << " " << *next << " ("
          << SpanText(Now() - JsonIntOr(d.o, "started")) << ")\n";
      return true;
    }
    return false;
  }
  // Let nodes in, at most max_unavailable acting at once.
  json::object& batch = Batch(d.o);
  bool changed = false;
  for (const auto& n : nodes)
    if (n.state == NodeState::kDone && batch.contains(n.name)) {
      batch.erase(n.name);
      changed = true;
    }
  const size_t room = static_cast<size_t>(std::max<int64_t>(1, JsonIntOr(d.o, "max_unavailable")));
  std::vector<std::string> let_in;
  for (const auto& n : nodes) {
    if (batch.size() >= room) break;
    if (n.state == NodeState::kWaiting) {
      batch[n.name] = Now();
      let_in.push_back(n.name);
      changed = true;
      if (!o.progress_tty) out << "  " << phase << ": " << n.name << "\n";
    }
  }
  if (changed) RETURN_IF_ERROR(WriteDoc(api, o.cluster, d));
  RETURN_IF_ERROR(WriteTurns(api, o.cluster, d.o, let_in));
  return false;
}

absl::Status RefreshPolicies(const http::Api& api, const ClusterSpec& s) {
  for (const char* r : kNodeRoles)
    RETURN_IF_ERROR(api.Write(Cat("sys/policy/", s.name, "-", r),
                              json::object{{"policy", NodeRolePolicy(s, r)}})
                        .status());
  for (const auto& n : s.nodes)
    RETURN_IF_ERROR(api.Write(Cat("sys/policy/", s.name, "-node-", n.name),
                              json::object{{"policy", NodePolicy(s, n)}})
                        .status());
  return absl::OkStatus();
}

// What a node's CA file holds for an issuer: its certificate and its chain up to the root (one
// certificate for a root CA), as the issuer's JSON gives them.
std::string ChainPem(const json::object& issuer) {
  std::string pem;
  for (const auto& c : JsonStringsOr(issuer, "ca_chain")) {
    std::string one = c;
    while (!one.empty() && (one.back() == '\n' || one.back() == '\r')) one.pop_back();
    pem += (pem.empty() ? "" : "\n") + one;
  }
  return pem.empty() ? JsonStringOr(issuer, "certificate") : pem;
}

// Whether the old CA can certify the new one (--cross-sign), checked before anything is made.
absl::Status CheckCrossSignable(const json::object& old) {
  ASSIGN_OR_RETURN(crypto::Cert c, crypto::ParseCertPem(JsonStringOr(old, "certificate")));
  if (JsonStringOr(old, "key_id").empty() ||
      JsonStringOr(old, "usage").find("issuing-certificates") == std::string::npos)
    return absl::FailedPreconditionError(
        "--cross-sign: the current CA may not issue (no key in the mount, or its usage lacks "
        "issuing-certificates): it cannot certify the new one");
  if (X509_get_pathlen(c.get()) == 0)
    return absl::FailedPreconditionError(
        "--cross-sign: the current CA has a path length of 0 and cannot certify another CA");
  // The new root has the old one's name: a verifier tells them apart by key identifier only.
  if (crypto::SubjectKeyId(c.get()).empty())
    return absl::FailedPreconditionError(
        "--cross-sign: the current CA has no subject key identifier, so clients could not tell "
        "it from the new CA (they share a name); rotate without --cross-sign");
  return absl::OkStatus();
}

// --cross-sign: the new root's key certified by the old CA (same subject and key identifier, a
// serial of its own, valid until the earlier of the two CAs' ends), imported into the mount as
// a read-only issuer named <id>-cross. Returns its PEM; *cross is its issuer id as soon as it
// exists (so a caller can disable it after a later failure).
absl::StatusOr<std::string> CrossSign(const http::Api& api, const std::string& mount,
                                      const json::object& old, const std::string& old_issuer,
                                      const json::object& fresh, const std::string& id,
                                      std::string* cross) {
  const std::string key_id = JsonStringOr(fresh, "key_id");
  ASSIGN_OR_RETURN(crypto::Cert root, crypto::ParseCertPem(JsonStringOr(fresh, "certificate")));
  ASSIGN_OR_RETURN(crypto::Cert old_cert, crypto::ParseCertPem(JsonStringOr(old, "certificate")));
  const std::string cn = crypto::CommonName(X509_get_subject_name(root.get()));
  if (key_id.empty() || cn.empty())
    return absl::InternalError(Cat(mount, ": the new issuer has no key or common name"));
  auto Data = [](const json::object& r) {
    const json::value* d = r.if_contains("data");
    return d && d->is_object() ? d->as_object() : json::object();
  };
  ASSIGN_OR_RETURN(
      auto csr,
      api.Write(Cat(mount, "/intermediate/cross-sign"),
                json::object{{"common_name", cn}, {"key_ref", key_id}, {"format", "pem"}}));
  const int64_t left =
      std::min(crypto::NotAfterUnix(root.get()), crypto::NotAfterUnix(old_cert.get())) - Now();
  if (left < 3600)
    return absl::FailedPreconditionError(
        "--cross-sign: the current CA expires within the hour; rotate without --cross-sign");
  auto signed_by_old = api.Write(Cat(mount, "/issuer/", old_issuer, "/sign-intermediate"),
                                 json::object{{"csr", JsonStringOr(Data(csr), "csr")},
                                              {"use_csr_values", true},
                                              {"ttl", Cat(left, "s")},
                                              {"format", "pem"}});
  if (!signed_by_old.ok())
    return absl::Status(signed_by_old.status().code(),
                        Cat("--cross-sign: the old CA could not certify the new one: ",
                            std::string(signed_by_old.status().message())));
  const std::string pem = JsonStringOr(Data(*signed_by_old), "certificate");
  ASSIGN_OR_RETURN(auto imported, api.Write(Cat(mount, "/issuers/import/cert"),
                                            json::object{{"pem_bundle", pem}}));
  const json::object d = Data(imported);
  for (const char* list : {"imported_issuers", "existing_issuers"})
    if (const json::value* ids = d.if_contains(list); ids && ids->is_array())
      for (const auto& v : ids->as_array())
        if (v.is_string() && cross->empty()) *cross = std::string(v.as_string());
  if (cross->empty()) return absl::InternalError(Cat(mount, " did not import the cross-signed CA"));
  // It names the path to the old CA; the new root signs the leaves.
  RETURN_IF_ERROR(
      api.Write(Cat(mount, "/issuer/", *cross),
                json::object{{"issuer_name", Cat(id, "-cross")}, {"usage", "read-only"}})
          .status());
  return pem;
}

std::string StampUtc(int64_t t) {
  return absl::FormatTime("%Y%m%d%H%M%S", absl::FromUnixSeconds(t), absl::UTCTimeZone());
}

}  // namespace

absl::Status RotateCa(const http::Api& api, const RotateOptions& o, std::ostream& out) {
  ASSIGN_OR_RETURN(ClusterSpec s, LoadSpec(api, o.cluster));
  ASSIGN_OR_RETURN(Ca ca, ParseCa(o.ca));
  if (!o.key_type.empty()) RETURN_IF_ERROR(ParseKeyOption(o.key_type, &s));
  if (o.max_unavailable < 1)
    return absl::InvalidArgumentError("--max-unavailable must be at least 1");
  if (o.cross_sign && (o.from_csr || !o.signed_file.empty()))
    return absl::InvalidArgumentError(
        "--cross-sign certifies a new root with the old CA; a new intermediate (--from-csr, "
        "--signed) is already certified by your root: give one of them");
  const std::string mount = MountPath(s, ca);
  ASSIGN_OR_RETURN(Doc d, ReadDoc(api, o.cluster));
  if (d.exists && !Finished(d.o))
    return absl::FailedPreconditionError(
        Cat("a rotation of the ", JsonStringOr(d.o, "ca"), " CA (", JsonStringOr(d.o, "id"),
            ") is in phase ", JsonStringOr(d.o, "phase"), "; see `coffer cluster rotation status ",
            o.cluster, "`, then resume or abort it"));
  const auto nodes = Participants(s, ca);
  if (nodes.empty())
    return absl::FailedPreconditionError(
        Cat("no node of cluster ", o.cluster, " holds a certificate of the ", o.ca, " CA"));

  ASSIGN_OR_RETURN(auto cfg, api.Read(Cat(mount, "/config/issuers")));
  const std::string old_issuer = JsonStringOr(cfg, "default");
  if (old_issuer.empty())
    return absl::FailedPreconditionError(Cat(mount, " has no default issuer to rotate from"));
  ASSIGN_OR_RETURN(auto old, api.Read(Cat(mount, "/issuer/", old_issuer)));
  if (o.from_csr) {
    // Step one of a new intermediate signed by a root kept elsewhere (seed 002): the key is made
    // and kept in the mount, the CSR goes to the operator. The rotation starts with --signed.
    json::object gen{{"common_name", std::string(CaCommonName(ca))}, {"key_type", s.key_type}};
    if (s.key_type != "ed25519") gen["key_bits"] = s.key_bits;
    ASSIGN_OR_RETURN(auto made,
                     api.Write(Cat(mount, "/issuers/generate/intermediate/internal"), gen));
    const json::value* md = made.if_contains("data");
    const std::string csr =
        md && md->is_object() ? JsonStringOr(md->as_object(), "csr") : std::string();
    if (csr.empty()) return absl::InternalError(Cat(mount, " made no CSR"));
    RETURN_IF_ERROR(
        files::WriteAtomic(o.csr_out, Cat(csr, "\n"), files::WriteOptions{0644, "", ""}));
    out << "wrote the new " << o.ca << " CA's CSR (CN " << CaCommonName(ca) << ", its key kept in "
        << mount << ") to " << o.csr_out
        << "\nsign it with your root as a CA certificate (basicConstraints CA:TRUE, keyUsage "
           "keyCertSign), then start the rotation with\n  coffer cluster rotate-ca "
        << o.cluster << " --ca " << o.ca
        << " --signed <certificate.pem>   (the certificate, then its chain up to the root)\n";
    return absl::OkStatus();
  }
  if (o.cross_sign) RETURN_IF_ERROR(CheckCrossSignable(old));
  if (o.signed_file.empty() && JsonStringsOr(old, "ca_chain").size() > 1)
    return absl::FailedPreconditionError(
        Cat("the ", o.ca,
            " CA is an intermediate: make its successor with --from-csr (a CSR for your root "
            "to sign), then start the rotation with --signed"));
  // Policies of clusters set up by older versions lack the rotation's paths.
  RETURN_IF_ERROR(RefreshPolicies(api, s));

  const int64_t now = Now();
  // The id names the new issuer too, and issuer names are unique in a mount: the time, and a
  // random suffix for two rotations within a second.
  std::random_device rd;
  const std::string id =
      Cat(o.ca, "-", StampUtc(now), "-", absl::StrCat(absl::Hex(rd() & 0xffff, absl::kZeroPad4)));
  std::string new_issuer;
  if (!o.signed_file.empty()) {
    ASSIGN_OR_RETURN(auto pem, files::ReadIfExists(o.signed_file));
    if (!pem) return absl::NotFoundError(Cat("--signed: no file ", o.signed_file));
    ASSIGN_OR_RETURN(auto imported, api.Write(Cat(mount, "/intermediate/set-signed"),
                                              json::object{{"certificate", *pem}}));
    // The imported issuer holding the key made by --from-csr (its parents come in without one).
    // The issuer holding the key made by --from-csr (its parents come in without one); found
    // among those already imported too, so a retry after a later failure works.
    const std::string old_key = JsonStringOr(old, "key_id");
    if (const json::value* dv = imported.if_contains("data"); dv && dv->is_object())
      for (const char* list : {"imported_issuers", "existing_issuers"}) {
        const json::value* ids = dv->as_object().if_contains(list);
        if (!ids || !ids->is_array()) continue;
        for (const auto& v : ids->as_array()) {
          if (!v.is_string() || v.as_string() == old_issuer) continue;
          auto is = api.Read(Cat(mount, "/issuer/", std::string(v.as_string())));
          if (!is.ok() || JsonStringOr(*is, "key_id").empty()) continue;
          if (JsonStringOr(*is, "key_id") == old_key)
            return absl::InvalidArgumentError(
                Cat(o.signed_file,
                    " certifies the current CA's own key: a rotation needs the "
                    "new key of `rotate-ca --from-csr`"));
          new_issuer = std::string(v.as_string());
        }
      }
    if (new_issuer.empty())
      return absl::InvalidArgumentError(
          Cat(o.signed_file, " holds no certificate for the key `rotate-ca --from-csr` made in ",
              mount));
    RETURN_IF_ERROR(
        api.Write(Cat(mount, "/issuer/", new_issuer), json::object{{"issuer_name", id}}).status());
  } else {
    json::object gen{{"common_name", std::string(CaCommonName(ca))},
                     {"issuer_name", id},
                     {"key_type", s.key_type},
                     {"ttl", Cat(s.ca_ttl, "s")}};
    if (s.key_type != "ed25519") gen["key_bits"] = s.key_bits;
    // root/rotate: the new root is not the default, not even for a moment.
    ASSIGN_OR_RETURN(auto made, api.Write(Cat(mount, "/root/rotate/internal"), gen));
    const json::value* md = made.if_contains("data");
    if (md && md->is_object()) new_issuer = JsonStringOr(md->as_object(), "issuer_id");
    if (new_issuer.empty()) return absl::InternalError(Cat(mount, " made no issuer"));
  }
  std::string cross_issuer, cross_pem;
  // From here on a failure leaves issuers no rotation uses: they must not sign (nodes may name
  // any issuer of the mount).
  auto abandon = [&](absl::Status st) {
    for (const auto& is : {new_issuer, cross_issuer})
      if (!is.empty())
        (void)api.Write(Cat(mount, "/issuer/", is), json::object{{"usage", "read-only"}});
    return st;
  };
  auto fresh = api.Read(Cat(mount, "/issuer/", new_issuer));
  if (!fresh.ok()) return abandon(fresh.status());
  if (o.cross_sign) {
    auto made = CrossSign(api, mount, old, old_issuer, *fresh, id, &cross_issuer);
    if (!made.ok()) return abandon(made.status());
    cross_pem = std::move(*made);
  }
  // The old issuer stays the default until finalize.
  auto cfg2 = api.Read(Cat(mount, "/config/issuers"));
  if (!cfg2.ok()) return abandon(cfg2.status());
  if (JsonStringOr(*cfg2, "default") != old_issuer)
    if (auto st = api.Write(Cat(mount, "/config/issuers"), json::object{{"default", old_issuer}})
                      .status();
        !st.ok())
      return abandon(st);
  // The cross-signed certificates agents send with the leaves of each mount: those of earlier
  // rotations of the cluster's other CAs stay.
  json::object crosses;
  if (d.exists)
    if (const json::value* c = d.o.if_contains("crosses"); c && c->is_object())
      crosses = c->as_object();
  crosses.erase(mount);
  if (!cross_pem.empty()) crosses[mount] = cross_pem;

  d.o = json::object{{"id", id},
                     {"ca", o.ca},
                     {"mount", mount},
                     {"old_issuer", old_issuer},
                     {"new_issuer", new_issuer},
                     {"old_pem", ChainPem(old)},
                     {"old_usage", JsonStringOr(old, "usage")},
                     {"new_pem", ChainPem(*fresh)},
                     {"cross_issuer", cross_issuer},
                     {"crosses", std::move(crosses)},
                     {"phase", "trust"},
                     {"generation", 1},
                     {"max_unavailable", o.max_unavailable},
                     {"nodes", Array(nodes)},
                     {"skipped", json::array()},
                     {"batch", json::object()},
                     {"finalize_hooks", Array(o.finalize_hooks)},
                     {"finalize_hooks_done", 0},
                     {"started", now},
                     {"phase_started", now},
                     {"error", ""}};
  if (auto st = WriteDoc(api, o.cluster, d); !st.ok()) return abandon(st);
  out << "rotation " << id << " of the " << o.ca << " CA started: new issuer " << new_issuer
      << " (CN " << CaCommonName(ca) << ") in " << mount << "; " << nodes.size() << " node"
      << (nodes.size() == 1 ? "" : "s") << ", at most " << o.max_unavailable << " at a time\n";
  if (!o.wait) return absl::OkStatus();
  return Drive(api, o, out);
}

absl::Status Drive(const http::Api& api, const RotateOptions& o, std::ostream& out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  std::unique_ptr<Progress> bar;
  std::string shown, waiting_for;
  NodeCache cache;
  for (;;) {
    auto t = Tick(api, o, out, &bar, &shown, &cache);
    if (t.ok() && *t) return absl::OkStatus();
    if (!t.ok()) {
      // A server restarting, sealed or unreachable is waited out; anything else stops.
      // Aborted: another command wrote the document (skip-node, resume): read it again.
      if (!absl::IsUnavailable(t.status()) && !absl::IsAborted(t.status())) return t.status();
      if (waiting_for != t.status().message()) {
        waiting_for = std::string(t.status().message());
        out << "waiting for the server: " << waiting_for << "\n";
      }
    } else {
      waiting_for.clear();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      if (bar) bar->Finish();
      return absl::DeadlineExceededError(
          Cat("the rotation did not finish within ", o.timeout_s, "s; it stays stored: see ",
              "`coffer cluster rotation status ", o.cluster, "` and continue it with ",
              "`coffer cluster rotation resume ", o.cluster, "`"));
    }
    // A tick reads the document and the batch's entries: a few requests, ten times a second at
    // most (agents act within their long poll, so a shorter wait only shortens each batch).
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

absl::Status Resume(const http::Api& api, const RotateOptions& o, std::ostream& out) {
  ASSIGN_OR_RETURN(Doc d, ReadExisting(api, o.cluster));
  if (Finished(d.o)) {
    out << "rotation " << JsonStringOr(d.o, "id") << " is " << JsonStringOr(d.o, "phase") << "\n";
    return absl::OkStatus();
  }
  d.o["error"] = "";
  d.o["generation"] = JsonIntOr(d.o, "generation") + 1;
  RETURN_IF_ERROR(WriteDoc(api, o.cluster, d));
  // The nodes in the batch (a failed one among them) are woken to try again.
  RETURN_IF_ERROR(WakeBatch(api, o.cluster, d.o));
  out << "resuming rotation " << JsonStringOr(d.o, "id") << " in phase "
      << JsonStringOr(d.o, "phase") << "\n";
  return Drive(api, o, out);
}

absl::Status Abort(const http::Api& api, const RotateOptions& o, std::ostream& out) {
  ASSIGN_OR_RETURN(Doc d, ReadExisting(api, o.cluster));
  const std::string phase = JsonStringOr(d.o, "phase");
  if (phase == "done")
    return absl::FailedPreconditionError(Cat("rotation ", JsonStringOr(d.o, "id"),
                                             " is done: no node trusts the old CA any more; "
                                             "rotate again to leave the new one"));
  if (phase == "aborted") {
    out << "rotation " << JsonStringOr(d.o, "id") << " is already aborted\n";
    return absl::OkStatus();
  }
  if (!phase.starts_with("abort-")) {
    // trust: every leaf is still the old CA's, CA files are old or old+new: drop the new CA.
    // reissue: CA files are old+new, leaves mixed: re-sign with the old issuer, then drop it.
    // finalize: some CA files hold only the new CA: trust both again first.
    d.o["phase"] = phase == "trust"     ? "abort-finalize"
                   : phase == "reissue" ? "abort-reissue"
                                        : "abort-trust";
    d.o["aborted_from"] = phase;
    d.o["phase_started"] = Now();
    d.o["batch"] = json::object();
  }
  // Abort-reissue signs with the old issuer: a finalize that paused on its hooks has already
  // taken its issuing usage away.
  RETURN_IF_ERROR(RestoreOldUsage(api, d.o));
  d.o["error"] = "";
  d.o["generation"] = JsonIntOr(d.o, "generation") + 1;
  RETURN_IF_ERROR(WriteDoc(api, o.cluster, d));
  // Already aborting (a node failed a step back): the batch's nodes try again now.
  RETURN_IF_ERROR(WakeBatch(api, o.cluster, d.o));
  out << "aborting rotation " << JsonStringOr(d.o, "id") << " (was in phase " << phase
      << "): every node goes back to the old CA\n";
  return Drive(api, o, out);
}

absl::Status SkipNode(const http::Api& api, const std::string& cluster, const std::string& node,
                      std::ostream& out) {
  ASSIGN_OR_RETURN(Doc d, ReadExisting(api, cluster));
  auto nodes = JsonStringsOr(d.o, "nodes");
  auto it = std::find(nodes.begin(), nodes.end(), node);
  if (it == nodes.end())
    return absl::InvalidArgumentError(
        Cat("node \"", node, "\" is not part of rotation ", JsonStringOr(d.o, "id")));
  nodes.erase(it);
  auto skipped = JsonStringsOr(d.o, "skipped");
  skipped.push_back(node);
  d.o["nodes"] = Array(nodes);
  d.o["skipped"] = Array(skipped);
  Batch(d.o).erase(node);
  RETURN_IF_ERROR(WriteDoc(api, cluster, d));
  out << "node " << node << " skipped in rotation " << JsonStringOr(d.o, "id")
      << ": if it comes back, run `coffer agent once --force` on it after the rotation is done; "
         "if it is gone for good, revoke its token and re-install it with a new init token "
         "(`coffer cluster init-token "
      << cluster << " " << node << "`)\n";
  return absl::OkStatus();
}

absl::Status WaitRotation(const http::Api& api, const RotateOptions& o, std::ostream& out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  std::unique_ptr<Progress> bar;
  std::string shown;
  NodeCache cache;
  for (;;) {
    auto d = ReadExisting(api, o.cluster);
    if (!d.ok() && !absl::IsUnavailable(d.status())) return d.status();
    if (d.ok()) {
      const std::string phase = JsonStringOr(d->o, "phase");
      if (Finished(d->o)) {
        if (bar) bar->Finish();
        out << "rotation " << JsonStringOr(d->o, "id") << " " << phase << "\n";
        if (phase == "aborted")
          return absl::FailedPreconditionError(Cat("rotation ", JsonStringOr(d->o, "id"),
                                                   " was aborted: every node is on the old CA"));
        return absl::OkStatus();
      }
      if (!JsonStringOr(d->o, "error").empty()) {
        if (bar) bar->Finish();
        return absl::FailedPreconditionError(
            Cat("the rotation is paused: ", PrintableText(JsonStringOr(d->o, "error"), 1024),
                "; see `coffer cluster rotation status ", o.cluster, "`"));
      }
      auto nodes = Nodes(api, o.cluster, d->o, &cache);
      if (nodes.ok()) {
        size_t done = 0, total = 0;
        for (const auto& n : *nodes) {
          if (n.state == NodeState::kSkipped) continue;
          ++total;
          if (n.state == NodeState::kDone) ++done;
        }
        if (shown != phase) {
          if (bar) bar->Finish();
          bar = std::make_unique<Progress>(o.progress, o.progress_tty, Cat("phase ", phase), total,
                                           0);
          shown = phase;
        }
        bar->Set(done);
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      if (bar) bar->Finish();
      return absl::DeadlineExceededError(
          Cat("the rotation did not finish within ", o.timeout_s, "s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

absl::Status RotationStatus(const http::Api& api, const std::string& cluster, int64_t now,
                            std::ostream& out) {
  ASSIGN_OR_RETURN(Doc d, ReadExisting(api, cluster));
  const std::string phase = JsonStringOr(d.o, "phase");
  out << "Rotation " << JsonStringOr(d.o, "id") << " of the " << JsonStringOr(d.o, "ca") << " CA ("
      << JsonStringOr(d.o, "mount") << ")\n"
      << "  phase:      " << phase << " since " << SpanText(now - JsonIntOr(d.o, "phase_started"))
      << (phase.starts_with("abort")
              ? " (abort-trust -> abort-reissue -> abort-finalize -> aborted)\n"
              : " (trust -> reissue -> finalize -> done)\n")
      << "  old issuer: " << JsonStringOr(d.o, "old_issuer") << "\n"
      << "  new issuer: " << JsonStringOr(d.o, "new_issuer") << "\n";
  if (!JsonStringOr(d.o, "cross_issuer").empty())
    out << "  cross-signed by the old CA: " << JsonStringOr(d.o, "cross_issuer")
        << (phase == "aborted" ? " (revoked)\n" : " (sent after each new leaf)\n");
  out << "  at a time:  " << JsonIntOr(d.o, "max_unavailable") << "\n";
  if (!JsonStringOr(d.o, "error").empty())
    out << "  PAUSED:     " << JsonStringOr(d.o, "error") << "\n";
  if (Finished(d.o)) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto nodes, Nodes(api, cluster, d.o));
  size_t done = 0, total = 0;
  for (const auto& n : nodes) {
    if (n.state != NodeState::kSkipped) ++total;
    if (n.state == NodeState::kDone) ++done;
  }
  out << "  nodes:      " << done << "/" << total << " done with " << phase << "\n";
  for (const auto& n : nodes) {
    std::string what;
    switch (n.state) {
      case NodeState::kWaiting:
        what = "waiting for its turn";
        break;
      case NodeState::kActing:
        what = Cat("pending since ", SpanText(now - n.since), " (its agent has not acknowledged)");
        break;
      case NodeState::kDone:
        what = "done";
        break;
      case NodeState::kFailed:
        what = Cat("FAILED: ", n.error);
        break;
      case NodeState::kSkipped:
        what = "skipped";
        break;
    }
    out << "    " << n.name << ": " << what << "\n";
    if (!n.output.empty()) {
      std::string line;
      for (char c : n.output) {
        if (c == '\n') {
          out << "      | " << line << "\n";
          line.clear();
        } else {
          line += (c >= 0x20 && c < 0x7f) || c == '\t' ? c : '?';
        }
      }
      if (!line.empty()) out << "      | " << line << "\n";
    }
  }
  return absl::OkStatus();
}

}  // namespace coffer::cluster
