#include "cluster/nodes.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/time/time.h"
#include "cluster/profile.h"
#include "cluster/setup.h"
#include "util/human_time.h"
#include "util/status.h"

namespace coffer::cluster {
namespace {

namespace json = boost::json;

// What a node wrote is printed to an operator's terminal: control bytes (escape sequences,
// carriage returns) and anything beyond printable ASCII become '?', and a value is cut at
// `max` characters, so a compromised node can neither forge rows nor flood the table.
std::string Printable(std::string_view v, size_t max = 64) {
  std::string out;
  for (char c : v.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (v.size() > max) out += "...";
  return out;
}

std::string Str(const json::object& o, std::string_view k, size_t max = 64) {
  const json::value* v = o.if_contains(k);
  if (!v || !v->is_string()) return std::string();
  return Printable(std::string_view(v->as_string().data(), v->as_string().size()), max);
}

int64_t Num(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}

std::string Pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

}  // namespace

absl::Status Nodes(const http::Api& api, const std::string& cluster, int64_t now,
                   std::ostream& out) {
  ASSIGN_OR_RETURN(ClusterSpec s, LoadSpec(api, cluster));
  const std::string mount = NodesMount(s);
  struct Row {
    std::string node, roles, seen = "never seen", agent, soonest;
    json::object entry;
    bool reported = false;
  };
  std::map<std::string, Row> rows;
  for (const auto& n : s.nodes) {
    Row r;
    r.node = n.name;
    for (size_t i = 0; i < n.roles.size(); ++i) r.roles += (i ? "+" : "") + n.roles[i];
    rows[n.name] = std::move(r);
  }
  auto listed = api.List(Cat(mount, "/metadata"));
  if (!listed.ok() && !absl::IsNotFound(listed.status())) return listed.status();
  for (const auto& name : listed.ok() ? *listed : std::vector<std::string>{}) {
    if (!name.empty() && name.back() == '/') continue;
    auto read = api.Read(Cat(mount, "/data/", name));
    if (!read.ok()) {
      if (absl::IsNotFound(read.status())) continue;
      return read.status();
    }
    Row& r = rows[name];
    if (r.node.empty()) {
      r.node = Printable(name);
      r.roles = "(not in the spec)";
    }
    r.reported = true;
    const json::value* d = read->if_contains("data");
    const json::value* m = read->if_contains("metadata");
    if (d && d->is_object()) r.entry = d->as_object();
    if (m && m->is_object()) {
      absl::Time t;
      std::string err;
      if (absl::ParseTime(absl::RFC3339_full, Str(m->as_object(), "created_time"), &t, &err)) {
        const int64_t at = absl::ToUnixSeconds(t);
        r.seen = Cat(Rfc3339Utc(at), " (", SpanText(now - at), " ago)");
      }
    }
    r.agent = Str(r.entry, "agent_version", 32);
    int64_t soonest = 0;
    std::string which;
    if (const json::value* c = r.entry.if_contains("certificates"); c && c->is_object()) {
      for (const auto& [cname, cv] : c->as_object()) {
        if (!cv.is_object()) continue;
        const int64_t na = Num(cv.as_object(), "not_after");
        if (na > 0 && (soonest == 0 || na < soonest)) {
          soonest = na;
          which = Printable(std::string_view(cname.data(), cname.size()));
        }
      }
    }
    if (soonest > 0) r.soonest = Cat(which, " ", Remaining(soonest, now));
  }

  size_t wn = 4, wr = 5, ws = 9, wa = 5;
  for (const auto& [_, r] : rows) {
    wn = std::max(wn, r.node.size());
    wr = std::max(wr, r.roles.size());
    ws = std::max(ws, r.seen.size());
    wa = std::max(wa, r.agent.size());
  }
  out << Pad("NODE", wn + 3) << Pad("ROLES", wr + 3) << Pad("LAST SEEN", ws + 3)
      << Pad("AGENT", wa + 3) << "SOONEST EXPIRY\n";
  for (const auto& [_, r] : rows) {
    std::string line = Cat(Pad(r.node, wn + 3), Pad(r.roles, wr + 3), Pad(r.seen, ws + 3),
                           Pad(r.agent, wa + 3), r.soonest);
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
  for (const auto& [_, r] : rows) {
    if (!r.reported) continue;
    out << "\nNode " << r.node << ":\n";
    if (const json::value* c = r.entry.if_contains("certificates"); c && c->is_object()) {
      for (const auto& [cname, cv] : c->as_object()) {
        if (!cv.is_object()) continue;
        const int64_t na = Num(cv.as_object(), "not_after");
        out << "  certificate " << Printable(std::string_view(cname.data(), cname.size())) << ": "
            << (na > 0 ? Cat("serial ", Str(cv.as_object(), "serial"), ", expires ",
                             ExpiryText(na, now))
                       : std::string("not present"))
            << "\n";
      }
    }
    if (const json::value* c = r.entry.if_contains("ca_files"); c && c->is_object()) {
      for (const auto& [path, fps] : c->as_object()) {
        out << "  CA file " << Printable(std::string_view(path.data(), path.size()), 256) << ":";
        if (!fps.is_array() || fps.as_array().empty()) out << " (missing)";
        if (fps.is_array())
          for (const auto& f : fps.as_array())
            if (f.is_string())
              out << " sha256:"
                  << Printable(std::string_view(f.as_string().data(), f.as_string().size()));
        out << "\n";
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace coffer::cluster
