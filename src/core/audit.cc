#include "core/audit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/time/time.h"
#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;
namespace {

constexpr char kTablePath[] = "core/audit";

constexpr absl::Duration kFirstRetry = absl::Seconds(1);
constexpr absl::Duration kMaxRetry = absl::Seconds(60);

class FileDevice final : public AuditDevice {
 public:
  FileDevice(AuditOptions o, const Clock* clock)
      : o_(std::move(o)), stdout_(o_.file_path == "stdout"), clock_(clock) {}
  ~FileDevice() override {
    if (fd_ > 2) ::close(fd_);
  }
  absl::Status Write(std::string_view line) override ABSL_LOCKS_EXCLUDED(mu_) {
    std::string buf;
    buf.reserve(o_.prefix.size() + line.size() + 2);
    buf.append(o_.prefix).append(line).push_back('\n');
    MutexLock l(&mu_);
    if (fd_ < 0) {
      // The last open failed: try again once the backoff has passed, else fail fast.
      const absl::Time now = clock_->Now();
      if (now < retry_at_)
        return absl::UnavailableError(Cat(Msg(open_error_), "; the next attempt to open it is in ",
                                          absl::FormatDuration(retry_at_ - now)));
      RETURN_IF_ERROR(OpenLocked());
    }
    if (torn_) buf.insert(buf.begin(), '\n');
    return AppendLocked(buf);
  }
  absl::Status Reopen() override ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    backoff_ = kFirstRetry;  // a reopen asked for starts the backoff again
    return OpenLocked();
  }

 private:
  // On failure the device holds no file (it fails closed) until an attempt after retry_at_.
  absl::Status OpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stdout_) {
      fd_ = 1;
      return absl::OkStatus();
    }
    const int fd = ::open(o_.file_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, o_.mode);
    if (fd < 0) {
      const int err = errno;
      if (fd_ > 2) ::close(fd_);
      fd_ = -1;
      open_error_ = absl::FailedPreconditionError(
          Cat("cannot open audit file ", o_.file_path, ": ", strerror(err)));
      retry_at_ = clock_->Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, kMaxRetry);
      return open_error_;
    }
    ::fchmod(fd, o_.mode);
    if (fd_ > 2) ::close(fd_);
    fd_ = fd;
    backoff_ = kFirstRetry;
    return absl::OkStatus();
  }

  // Appends `buf` with one write(2) (more only after a short write). If the write fails part-way
  // (ENOSPC, EFBIG, EIO), the file is truncated back to its size before the entry, so no torn
  // line remains; where that cannot be done (stdout, a pipe, an append-only file) the next entry
  // starts with a newline, so it is whole on its own line. mu_ serialises this device's writes;
  // flock also keeps out another device on the same file (and any process that takes it), which
  // could otherwise append between the size read here and the truncation. It is only tried:
  // a log shipper holding the lock must not stall every request, so without it the entry is
  // written anyway and a failure is handled as on stdout (no truncation).
  absl::Status AppendLocked(std::string_view buf) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool locked = !stdout_ && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
    struct stat sb {};
    const off_t start = locked && ::fstat(fd_, &sb) == 0 && S_ISREG(sb.st_mode) ? sb.st_size : -1;
    size_t off = 0;
    int err = 0;
    while (off < buf.size()) {
      const ssize_t n = ::write(fd_, buf.data() + off, buf.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        err = n < 0 ? errno : EIO;  // 0 bytes written for a non-empty buffer: give up
        break;
      }
    }
    std::string what;
    if (err == 0) {
      torn_ = false;
    } else {
      what = Cat("cannot write audit file ", o_.file_path, ": ", strerror(err));
      if (off > 0 && start >= 0 && ::ftruncate(fd_, start) == 0) {
        what += " (the partly written entry was removed)";
      } else if (off > 0) {
        torn_ = true;
        what += " (a partly written entry remains; the next entry starts on a new line)";
      }
    }
    if (locked) ::flock(fd_, LOCK_UN);
    return err == 0 ? absl::OkStatus() : absl::UnavailableError(what);
  }

  const AuditOptions o_;
  const bool stdout_;
  const Clock* const clock_;
  Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Status open_error_ ABSL_GUARDED_BY(mu_);  // why fd_ < 0
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = kFirstRetry;  // before the attempt after next
  bool torn_ ABSL_GUARDED_BY(mu_) = false;                     // the file ends in a partial entry
};

absl::StatusOr<AuditOptions> ParseOptions(const json::object& o) {
  AuditOptions a;
  for (const auto& [k, v] : o) {
    if (!v.is_string() && !v.is_bool() && !v.is_number())
      return absl::InvalidArgumentError(
          Cat("audit option \"", std::string_view(k), "\" must be a string"));
  }
  ASSIGN_OR_RETURN(auto path, JsonString(o, "file_path"));
  if (!path) {
    ASSIGN_OR_RETURN(path, JsonString(o, "path"));  // legacy name
  }
  if (!path || path->empty())
    return absl::InvalidArgumentError("options.file_path is required (a file, or \"stdout\")");
  a.file_path = *path;
  if (const auto* m = o.if_contains("mode")) {
    std::string ms =
        m->is_string() ? std::string(m->as_string()) : std::to_string(m->to_number<int64_t>());
    char* end = nullptr;
    long mode = std::strtol(ms.c_str(), &end, 8);
    if (ms.empty() || *end != '\0' || mode < 0 || mode > 0777)
      return absl::InvalidArgumentError(
          Cat("options.mode \"", ms, "\" is not an octal file mode such as 0600"));
    a.mode = static_cast<uint32_t>(mode);
  }
  auto flag = [&](const char* key, bool* out) -> absl::Status {
    ASSIGN_OR_RETURN(auto b, JsonBool(o, key));
    if (b) *out = *b;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(flag("log_raw", &a.log_raw));
  RETURN_IF_ERROR(flag("hmac_accessor", &a.hmac_accessor));
  RETURN_IF_ERROR(flag("elide_list_responses", &a.elide_list_responses));
  ASSIGN_OR_RETURN(auto prefix, JsonString(o, "prefix"));
  if (prefix) a.prefix = *prefix;
  for (const auto& [k, v] : o) {
    std::string_view key = k;
    if (key != "file_path" && key != "path" && key != "mode" && key != "log_raw" &&
        key != "hmac_accessor" && key != "prefix" && key != "elide_list_responses" &&
        key != "format")
      return absl::InvalidArgumentError(Cat("unknown audit option \"", key, "\""));
  }
  if (const auto* f = o.if_contains("format"); f && !(f->is_string() && f->as_string() == "json"))
    return absl::InvalidArgumentError("options.format must be \"json\"");
  return a;
}

std::string Hmac(const crypto::SecretBytes& salt, std::string_view s) {
  return "hmac-sha256:" + HexEncode(crypto::HmacSha256(salt.view(), s));
}

// Replaces every string inside `v` by its HMAC (keys stay readable, as Vault's).
void HashValues(json::value& v, const crypto::SecretBytes& salt) {
  if (v.is_string()) {
    v = Hmac(salt, std::string_view(v.as_string()));
  } else if (v.is_array()) {
    for (auto& e : v.as_array()) HashValues(e, salt);
  } else if (v.is_object()) {
    for (auto& [k, e] : v.as_object()) HashValues(e, salt);
  }
}

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditDevice>> OpenFileDevice(const AuditOptions& o,
                                                            const Clock* clock) {
  auto d = std::make_unique<FileDevice>(o, clock);
  RETURN_IF_ERROR(d->Reopen());
  return std::unique_ptr<AuditDevice>(std::move(d));
}

void AuditBroker::Note(Device& d, const absl::Status& st, bool write) {
  if (!st.ok()) {
    if (write) {
      ++d.missed;
      if (metrics_) metrics_->AddAuditWriteFailure(d.path);
    }
    if (d.failed) return;  // logged when it started failing
    d.failed = true;
    if (metrics_) metrics_->SetAuditDeviceFailed(d.path, true);
    // The status names the file and the system error, never the entry.
    log::Error("audit device failed: it records nothing until it can write again",
               {{"path", d.path}, {"file_path", d.options.file_path}, {"error", Msg(st)}});
    return;
  }
  if (!d.failed) return;
  d.failed = false;
  if (metrics_) metrics_->SetAuditDeviceFailed(d.path, false);
  log::Log(d.missed > 0 ? log::Level::kWarn : log::Level::kInfo, "audit device recovered",
           {{"path", d.path},
            {"file_path", d.options.file_path},
            {"missed_entries", std::to_string(d.missed)}});
  d.missed = 0;
}

void AuditBroker::Forget(const Device& d) {
  if (metrics_) metrics_->RemoveAuditDevice(d.path);
}

absl::Status AuditBroker::Persist() {
  json::array entries;
  for (const auto& [path, d] : devices_)
    entries.push_back(json::object{{"path", d->path},
                                   {"type", d->type},
                                   {"description", d->description},
                                   {"local", d->local},
                                   {"options", d->raw_options},
                                   {"salt", Base64Encode(d->salt.view())}});
  return barrier_->Put(kTablePath, json::serialize(json::object{{"entries", entries}}));
}

absl::Status AuditBroker::Load() {
  ASSIGN_OR_RETURN(auto raw, barrier_->Get(kTablePath));
  MutexLock l(&mu_);
  for (const auto& [path, d] : devices_) Forget(*d);
  devices_.clear();
  if (!raw) return absl::OkStatus();
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("audit table is corrupt");
  for (const auto& e : v.as_object()["entries"].as_array()) {
    const auto& o = e.as_object();
    auto d = std::make_unique<Device>();
    d->path = std::string(o.at("path").as_string());
    d->type = std::string(o.at("type").as_string());
    d->description = std::string(o.at("description").as_string());
    d->local = o.at("local").as_bool();
    d->raw_options = o.at("options").as_object();
    auto salt = Base64Decode(std::string_view(o.at("salt").as_string()));
    if (!salt) return absl::DataLossError("audit salt is corrupt");
    d->salt = crypto::SecretBytes(*salt);
    ASSIGN_OR_RETURN(d->options, ParseOptions(d->raw_options));
    // A device that cannot open stays in the table and fails closed until a write after the
    // backoff, or a SIGHUP, opens it.
    d->sink = std::make_unique<FileDevice>(d->options, clock_);
    if (metrics_) metrics_->SetAuditDeviceFailed(d->path, false);
    {
      Device& dev = *d;
      MutexLock dl(&dev.mu);
      Note(dev, dev.sink->Reopen(), /*write=*/false);
    }
    devices_[d->path] = std::move(d);
  }
  return absl::OkStatus();
}

void AuditBroker::Clear() {
  MutexLock l(&mu_);
  for (const auto& [path, d] : devices_) Forget(*d);
  devices_.clear();
}

bool AuditBroker::Enabled() {
  ReaderMutexLock l(&mu_);
  return !devices_.empty();
}

absl::Status AuditBroker::Enable(std::string_view raw_path, std::string_view type,
                                 std::string_view description, const json::object& options,
                                 bool local) {
  std::string path(raw_path);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty()) return absl::InvalidArgumentError("audit device path is required");
  if (type != "file")
    return absl::InvalidArgumentError(
        Cat("unknown audit device type \"", type, "\": use \"file\""));
  ASSIGN_OR_RETURN(AuditOptions o, ParseOptions(options));
  path += "/";
  auto d = std::make_unique<Device>();
  d->path = path;
  d->type = std::string(type);
  d->description = std::string(description);
  d->local = local;
  d->options = o;
  d->raw_options = options;
  ASSIGN_OR_RETURN(d->salt, crypto::SecretBytes::Random(32));
  ASSIGN_OR_RETURN(d->sink, OpenFileDevice(o, clock_));
  // As Vault does, a device proves it can write before it is enabled.
  const std::string probe = json::serialize(json::object{
      {"time", absl::FormatTime(absl::RFC3339_full, clock_->Now(), absl::UTCTimeZone())},
      {"type", "request"},
      {"request",
       json::object{
           {"id", crypto::RandomUuid()}, {"operation", "update"}, {"path", "sys/audit/test"}}},
      {"error", ""}});
  if (auto st = d->sink->Write(probe); !st.ok())
    return absl::InvalidArgumentError(
        Cat("the audit device failed its test write, so it was not enabled: ", Msg(st)));
  MutexLock l(&mu_);
  if (devices_.count(path))
    return absl::InvalidArgumentError(
        Cat("path already in use: an audit device is enabled at ", path));
  devices_[path] = std::move(d);
  auto st = Persist();
  if (!st.ok())
    devices_.erase(path);
  else if (metrics_)
    metrics_->SetAuditDeviceFailed(path, false);
  return st;
}

absl::Status AuditBroker::Disable(std::string_view raw_path) {
  std::string path(raw_path);
  while (!path.empty() && path.back() == '/') path.pop_back();
  path += "/";
  MutexLock l(&mu_);
  auto it = devices_.find(path);
  if (it == devices_.end()) return absl::OkStatus();
  auto d = std::move(it->second);
  devices_.erase(it);
  auto st = Persist();
  if (st.ok())
    Forget(*d);
  else
    devices_[path] = std::move(d);
  return st;
}

json::object AuditBroker::List() {
  ReaderMutexLock l(&mu_);
  json::object out;
  for (const auto& [path, d] : devices_)
    out[path] = json::object{{"type", d->type},
                             {"description", d->description},
                             {"options", d->raw_options},
                             {"local", d->local},
                             {"path", path}};
  return out;
}

absl::StatusOr<std::string> AuditBroker::Hash(std::string_view raw_path, std::string_view input) {
  std::string path(raw_path);
  while (!path.empty() && path.back() == '/') path.pop_back();
  path += "/";
  ReaderMutexLock l(&mu_);
  auto it = devices_.find(path);
  if (it == devices_.end())
    // Vault's words ("unknown audit backend"), which clients match on.
    return absl::InvalidArgumentError(
        Cat("unknown audit backend: no audit device is enabled at \"", path, "\""));
  return Hmac(it->second->salt, input);
}

absl::Status AuditBroker::Broadcast(const std::function<std::string(const Device&)>& render) {
  ReaderMutexLock l(&mu_);
  if (devices_.empty()) return absl::OkStatus();
  int ok = 0;
  std::string last;
  for (const auto& [path, d] : devices_) {
    const std::string line = render(*d);
    Device& dev = *d;
    MutexLock dl(&dev.mu);
    auto st = dev.sink->Write(line);
    Note(dev, st, /*write=*/true);
    if (st.ok())
      ++ok;
    else
      last = Msg(st);
  }
  if (ok == 0)
    return absl::InternalError(
        Cat("no audit device could record the request, so it was refused: ", last));
  return absl::OkStatus();
}

namespace {

json::object AuthBlock(const std::optional<TokenEntry>& t, std::string_view client_token,
                       const crypto::SecretBytes& salt, const AuditOptions& o) {
  if (!t) return json::object{};
  json::object meta;
  for (const auto& [k, v] : t->meta) meta[k] = v;
  json::object a{
      {"client_token", o.log_raw ? std::string(client_token) : Hmac(salt, client_token)},
      {"accessor", o.log_raw || !o.hmac_accessor ? t->accessor : Hmac(salt, t->accessor)},
      {"display_name", t->display_name},
      {"policies", Strings(t->policies)},
      {"token_policies", Strings(t->policies)},
      {"metadata", meta.empty() ? json::value(nullptr) : json::value(meta)},
      {"entity_id", ""},
      {"token_type", "service"},
      {"token_ttl", t->ttl}};
  if (!o.log_raw) {
    json::value m = a["metadata"];
    HashValues(m, salt);
    a["metadata"] = m;
  }
  return a;
}

// The request path, with a secret in it (a token in the URL: Request::secret_path_from)
// HMAC'd as the body's token is.
std::string AuditPath(const Request& req, const crypto::SecretBytes& salt, const AuditOptions& o) {
  if (o.log_raw || req.secret_path_from >= req.path.size()) return req.path;
  std::string_view p = req.path;
  return Cat(p.substr(0, req.secret_path_from), Hmac(salt, p.substr(req.secret_path_from)));
}

json::object RequestBlock(const Request& req, const crypto::SecretBytes& salt,
                          const AuditOptions& o, const std::optional<TokenEntry>& t) {
  json::value data = req.data;
  if (!o.log_raw) HashValues(data, salt);
  return json::object{
      {"id", req.id},
      {"operation", OperationName(req.op)},
      {"mount_type", req.mount_type},
      {"mount_point", req.mount_point},
      {"client_token", o.log_raw ? req.client_token : Hmac(salt, req.client_token)},
      {"client_token_accessor",
       t ? (o.log_raw || !o.hmac_accessor ? t->accessor : Hmac(salt, t->accessor)) : ""},
      {"path", AuditPath(req, salt, o)},
      {"data", req.data.empty() ? json::value(nullptr) : data},
      {"remote_address", req.remote_address},
      {"namespace", json::object{{"id", "root"}}}};
}

}  // namespace

absl::Status AuditBroker::LogRequest(const Request& req, const std::optional<TokenEntry>& token,
                                     const absl::Status& error) {
  std::string now;  // formatted only when a device is enabled (most requests have none)
  return Broadcast([&](const Device& d) {
    if (now.empty()) now = absl::FormatTime(absl::RFC3339_full, clock_->Now(), absl::UTCTimeZone());
    json::object e{{"time", now},
                   {"type", "request"},
                   {"auth", AuthBlock(token, req.client_token, d.salt, d.options)},
                   {"request", RequestBlock(req, d.salt, d.options, token)},
                   {"error", error.ok() ? "" : Msg(error)}};
    return json::serialize(e);
  });
}

absl::Status AuditBroker::LogResponse(const Request& req, const std::optional<TokenEntry>& token,
                                      const absl::StatusOr<Response>& resp) {
  std::string now;  // formatted only when a device is enabled (most requests have none)
  return Broadcast([&](const Device& d) {
    if (now.empty()) now = absl::FormatTime(absl::RFC3339_full, clock_->Now(), absl::UTCTimeZone());
    json::object r{{"mount_type", req.mount_type}, {"mount_point", req.mount_point}};
    if (resp.ok()) {
      if (resp->data) {
        json::value data = *resp->data;
        if (d.options.elide_list_responses && req.op == Operation::kList && data.is_object()) {
          auto& o = data.as_object();
          if (o.contains("keys") && o["keys"].is_array())
            o["keys"] = static_cast<int64_t>(o["keys"].as_array().size());
        }
        if (!d.options.log_raw) HashValues(data, d.salt);
        r["data"] = data;
      }
      if (resp->auth) {
        json::value auth = *resp->auth;
        if (!d.options.log_raw) {
          auto& a = auth.as_object();
          for (const char* k : {"client_token", "accessor"})
            if (a.contains(k) && a[k].is_string() &&
                (std::string_view(k) != "accessor" || d.options.hmac_accessor))
              a[k] = Hmac(d.salt, std::string_view(a[k].as_string()));
          if (a.contains("metadata")) HashValues(a["metadata"], d.salt);
        }
        r["auth"] = auth;
      }
      if (resp->wrap_info) {
        // A wrapped response: what the client got, the wrapping token HMAC'd (so an unwrap,
        // audited with HMAC(client token), can be matched to it), accessors as configured.
        json::object w = *resp->wrap_info;
        if (!d.options.log_raw) {
          for (const char* k : {"token", "accessor", "wrapped_accessor"})
            if (w.contains(k) && w[k].is_string() &&
                (std::string_view(k) == "token" || d.options.hmac_accessor))
              w[k] = Hmac(d.salt, std::string_view(w[k].as_string()));
        }
        r["wrap_info"] = std::move(w);
      }
      if (!resp->warnings.empty()) r["warnings"] = Strings(resp->warnings);
    }
    json::object e{{"time", now},
                   {"type", "response"},
                   {"auth", AuthBlock(token, req.client_token, d.salt, d.options)},
                   {"request", RequestBlock(req, d.salt, d.options, token)},
                   {"response", r},
                   {"error", resp.ok() ? "" : Msg(resp.status())}};
    return json::serialize(e);
  });
}

absl::Status AuditBroker::Reopen() {
  MutexLock l(&mu_);
  absl::Status first;
  for (const auto& [path, d] : devices_) {
    Device& dev = *d;
    MutexLock dl(&dev.mu);
    auto st = dev.sink->Reopen();
    Note(dev, st, /*write=*/false);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

}  // namespace coffer::core
