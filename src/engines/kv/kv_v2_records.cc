// kv version 2: the stored records (config, key metadata), how Vault formats their values, and
// the parsers of request values the path files share.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "engines/kv/kv_v2_internal.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::kv::v2 {

namespace {

constexpr size_t kMaxKeyLength = 1024;
constexpr std::string_view kCustomPrefix = "custom_metadata validation failed";

// Nanoseconds since the Unix epoch: how times are stored.
int64_t Nanos(absl::Time t) { return absl::ToUnixNanos(t); }

absl::StatusOr<int64_t> StoredInt(const json::object& o, std::string_view key, bool required) {
  const json::value* v = o.if_contains(key);
  if (!v) {
    if (required) return absl::DataLossError(Cat("stored kv record lacks \"", key, "\""));
    return int64_t{0};
  }
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= INT64_MAX) return static_cast<int64_t>(v->as_uint64());
  return absl::DataLossError(Cat("stored kv record: \"", key, "\" is not an integer"));
}

bool StoredBool(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

// Go's %q for the strings in Vault's custom_metadata messages.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Vault's strutil.Printable for the characters that matter here: no control characters.
bool Printable(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

// ---- formatting ----

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

std::string Rfc3339(const std::optional<absl::Time>& t) { return t ? Rfc3339(*t) : ""; }

std::string GoDuration(int64_t seconds) {
  if (seconds == 0) return "0s";
  std::string out = seconds < 0 ? "-" : "";
  // The magnitude as unsigned: -INT64_MIN does not fit an int64.
  const uint64_t u = seconds < 0 ? 0 - static_cast<uint64_t>(seconds) : seconds;
  const uint64_t h = u / 3600, m = u % 3600 / 60, s = u % 60;
  if (h > 0) return Cat(out, h, "h", m, "m", s, "s");
  if (m > 0) return Cat(out, m, "m", s, "s");
  return Cat(out, s, "s");
}

json::value CustomJson(const std::map<std::string, std::string>& custom) {
  if (custom.empty()) return nullptr;
  json::object o;
  for (const auto& [k, v] : custom) o[k] = v;
  return o;
}

json::object VersionJson(int64_t version, const VersionMeta& v, const KeyMeta& meta) {
  return json::object{{"created_time", Rfc3339(v.created)},
                      {"custom_metadata", CustomJson(meta.custom)},
                      {"deletion_time", Rfc3339(v.deletion)},
                      {"destroyed", v.destroyed},
                      {"version", version}};
}

std::optional<absl::Time> DeletionTime(absl::Time from, const Config& config, const KeyMeta& meta) {
  if (config.delete_version_after < 0) return std::nullopt;
  const int64_t mount = config.delete_version_after, key = meta.delete_version_after;
  if (mount == 0 && key == 0) return std::nullopt;
  int64_t d = key;
  if (d == 0 || (mount != 0 && mount < d)) d = mount;
  return from + absl::Seconds(d);
}

// ---- parsing ----

absl::StatusOr<json::object> ParseStoredObject(std::string_view raw, std::string_view what) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 256;  // deeper than any request body the HTTP layer accepts
  json::value v = json::parse(raw, ec, {}, opts);
  if (ec || !v.is_object())
    return absl::DataLossError(Cat("stored ", what, " is not a JSON object"));
  return std::move(v.as_object());
}

absl::Status ValidateKey(std::string_view p) {
  if (p.size() > kMaxKeyLength)
    return absl::InvalidArgumentError(Cat("path is longer than ", kMaxKeyLength, " characters"));
  size_t start = 0;
  while (start <= p.size()) {
    const size_t end = p.find('/', start);
    const std::string_view seg =
        p.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (seg == "." || seg == "..")
      return absl::InvalidArgumentError("path segments \".\" and \"..\" are not allowed");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  for (char c : p)
    if (static_cast<unsigned char>(c) < 0x20)
      return absl::InvalidArgumentError("path must not contain control characters");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseSignedDuration(std::string_view field, const json::value& v) {
  auto bad = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(Cat(field, ": ", Msg(s)));
  };
  if (v.is_int64()) {
    const int64_t n = v.as_int64();
    if (n < -kMaxDurationSeconds || n > kMaxDurationSeconds)
      return bad(absl::InvalidArgumentError("duration out of range"));
    return n;
  }
  if (v.is_double()) {
    const double d = v.as_double();
    if (!(std::fabs(d) <= static_cast<double>(kMaxDurationSeconds)))
      return bad(absl::InvalidArgumentError("duration out of range"));
    return static_cast<int64_t>(d);
  }
  if (v.is_string()) {
    std::string_view s = v.as_string();
    const bool negative = !s.empty() && s.front() == '-';
    if (negative) s.remove_prefix(1);
    auto d = ParseDurationSeconds(s);
    if (!d.ok()) return bad(d.status());
    return negative ? -*d : *d;
  }
  auto d = ParseDurationSeconds(v);  // the message for other types
  if (!d.ok()) return bad(d.status());
  return *d;
}

absl::StatusOr<std::map<std::string, std::string>> ParseCustomMetadata(const json::object& raw,
                                                                       bool skip_nulls) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : raw) {
    const std::string key(k);
    if (v.is_null()) {
      if (!skip_nulls) out[key] = "";  // Vault's weak decoding of null: an empty string
      continue;
    }
    if (v.is_string()) {
      out[key] = std::string(v.as_string());
    } else if (v.is_int64() || v.is_uint64()) {
      out[key] = json::serialize(v);
    } else if (v.is_double()) {
      // Go's FormatFloat(f, 'f', -1, 64) for the shortest exact decimal ("1.5", "100").
      char buf[400];
      auto [end, ec] =
          std::to_chars(buf, buf + sizeof(buf), v.as_double(), std::chars_format::fixed);
      out[key] = ec == std::errc() ? std::string(buf, end) : json::serialize(v);
    } else if (v.is_bool()) {
      // "1" or "0", as Go's mapstructure.WeakDecode converts them.
      out[key] = std::string(1, v.as_bool() ? '1' : '0');
    } else {
      return absl::InvalidArgumentError(Cat(kCustomPrefix, ": value for key ", Quote(key),
                                            " must be a string, got ", JsonTypeName(v)));
    }
  }
  return out;
}

absl::Status ValidateCustomMetadata(const std::map<std::string, std::string>& custom) {
  std::vector<std::string> errs;
  if (custom.size() > kMaxCustomMetadataKeys) {
    errs.push_back(Cat(kCustomPrefix, ": payload must contain at most ", kMaxCustomMetadataKeys,
                       " keys, provided ", custom.size()));
  } else {
    for (const auto& [k, v] : custom) {
      if (k.empty() || k.size() > kMaxCustomMetadataKeyLength)
        errs.push_back(Cat(kCustomPrefix, ": length of key ", Quote(k), " is ", k.size(),
                           " but must be 0 < len(key) <= ", kMaxCustomMetadataKeyLength));
      if (v.empty() || v.size() > kMaxCustomMetadataValueLength)
        errs.push_back(Cat(kCustomPrefix, ": length of value for key ", Quote(k), " is ", v.size(),
                           " but must be 0 < len(value) <= ", kMaxCustomMetadataValueLength));
      if (!Printable(k))
        errs.push_back(
            Cat(kCustomPrefix, ": key ", Quote(k), " (", k, ") contains unprintable characters"));
      if (!Printable(v))
        errs.push_back(
            Cat(kCustomPrefix, ": value for key ", Quote(k), " contains unprintable characters"));
    }
  }
  if (errs.empty()) return absl::OkStatus();
  // Go's multierror list format, as Vault's message reads.
  if (errs.size() == 1)
    return absl::InvalidArgumentError(Cat("1 error occurred:\n\t* ", errs[0], "\n\n"));
  std::string msg = Cat(errs.size(), " errors occurred:");
  for (const auto& e : errs) msg += Cat("\n\t* ", e);
  return absl::InvalidArgumentError(msg + "\n\n");
}

// ---- records ----

std::string Config::Serialize() const {
  return json::serialize(json::object{{"max_versions", max_versions},
                                      {"cas_required", cas_required},
                                      {"delete_version_after", delete_version_after}});
}

absl::StatusOr<Config> Config::Parse(std::string_view raw) {
  ASSIGN_OR_RETURN(json::object o, ParseStoredObject(raw, "kv config"));
  Config c;
  ASSIGN_OR_RETURN(c.max_versions, StoredInt(o, "max_versions", false));
  c.cas_required = StoredBool(o, "cas_required");
  ASSIGN_OR_RETURN(c.delete_version_after, StoredInt(o, "delete_version_after", false));
  return c;
}

KeyMeta KeyMeta::New(absl::Time now) {
  KeyMeta m;
  m.created = now;
  m.updated = now;
  return m;
}

std::string KeyMeta::Serialize() const {
  json::object vs;
  for (const auto& [n, v] : versions) {
    json::object o{{"created_time", Nanos(v.created)}, {"destroyed", v.destroyed}};
    if (v.deletion) o["deletion_time"] = Nanos(*v.deletion);
    vs[std::to_string(n)] = std::move(o);
  }
  json::object custom_json;
  for (const auto& [k, v] : custom) custom_json[k] = v;
  return json::serialize(json::object{{"created_time", Nanos(created)},
                                      {"updated_time", Nanos(updated)},
                                      {"current_version", current},
                                      {"oldest_version", oldest},
                                      {"max_versions", max_versions},
                                      {"cas_required", cas_required},
                                      {"delete_version_after", delete_version_after},
                                      {"custom_metadata", std::move(custom_json)},
                                      {"versions", std::move(vs)}});
}

absl::StatusOr<KeyMeta> KeyMeta::Parse(std::string_view raw) {
  ASSIGN_OR_RETURN(json::object o, ParseStoredObject(raw, "kv metadata"));
  KeyMeta m;
  ASSIGN_OR_RETURN(int64_t created, StoredInt(o, "created_time", true));
  ASSIGN_OR_RETURN(int64_t updated, StoredInt(o, "updated_time", true));
  m.created = absl::FromUnixNanos(created);
  m.updated = absl::FromUnixNanos(updated);
  ASSIGN_OR_RETURN(m.current, StoredInt(o, "current_version", true));
  ASSIGN_OR_RETURN(m.oldest, StoredInt(o, "oldest_version", true));
  ASSIGN_OR_RETURN(m.max_versions, StoredInt(o, "max_versions", false));
  m.cas_required = StoredBool(o, "cas_required");
  ASSIGN_OR_RETURN(m.delete_version_after, StoredInt(o, "delete_version_after", false));
  if (const auto* c = o.if_contains("custom_metadata"); c && c->is_object())
    for (const auto& [k, v] : c->as_object())
      if (v.is_string()) m.custom[std::string(k)] = std::string(v.as_string());
  if (const auto* vs = o.if_contains("versions"); vs && vs->is_object()) {
    for (const auto& [k, v] : vs->as_object()) {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), n);
      if (ec != std::errc() || end != k.data() + k.size() || !v.is_object())
        return absl::DataLossError(
            Cat("stored kv metadata: bad version \"", std::string_view(k), "\""));
      const json::object& vo = v.as_object();
      VersionMeta vm;
      ASSIGN_OR_RETURN(int64_t vc, StoredInt(vo, "created_time", true));
      vm.created = absl::FromUnixNanos(vc);
      if (vo.contains("deletion_time")) {
        ASSIGN_OR_RETURN(int64_t vd, StoredInt(vo, "deletion_time", true));
        vm.deletion = absl::FromUnixNanos(vd);
      }
      vm.destroyed = StoredBool(vo, "destroyed");
      m.versions[n] = vm;
    }
  }
  return m;
}

std::vector<int64_t> KeyMeta::AddVersion(const VersionMeta& v, int64_t mount_max_versions) {
  ++current;
  versions[current] = v;
  updated = v.created;
  // Vault keeps the larger of the key's and the mount's settings.
  int64_t keep = std::max(max_versions, mount_max_versions);
  if (keep <= 0) keep = kDefaultMaxVersions;
  std::vector<int64_t> dropped;
  if (current - oldest >= keep) {
    const int64_t last_dropped = current - keep;
    for (auto it = versions.begin(); it != versions.end() && it->first <= last_dropped;) {
      dropped.push_back(it->first);
      it = versions.erase(it);
    }
    oldest = last_dropped + 1;
  }
  return dropped;
}

}  // namespace coffer::engines::kv::v2
