#include "engines/example/example_backend.h"

#include <optional>

#include "boost/json.hpp"
#include "core/framework/framework.h"
#include "util/mutex.h"
#include "util/status.h"

namespace coffer::engines::example {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldType;

namespace {

class ExampleBackend final : public core::framework::FrameworkBackend {
 public:
  explicit ExampleBackend(const core::BackendConfig& cfg)
      : FrameworkBackend("The example engine keeps named items.", Paths(this),
                         core::SpecialPaths{.root = {"config"}, .unauthenticated = {"public/*"}}),
        storage_(cfg.storage) {}

  absl::Status Initialize() override { return LoadConfig().status(); }
  void InvalidateKey(std::string_view key) override ABSL_LOCKS_EXCLUDED(mu_) {
    if (key == "config") {
      MutexLock l(&mu_);
      greeting_.reset();
    }
  }
  void Cleanup() override { InvalidateKey("config"); }

  // Counts how often the config was read from storage (tests check the cache).
  int loads() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    return loads_;
  }

 private:
  // Static, given the (not yet constructed) engine: handlers only capture the pointer, and are
  // called after construction. Calling a member function here would run before the base class
  // is constructed.
  static std::vector<core::framework::Path> Paths(ExampleBackend* self) {
    using core::framework::OperationSpec;
    std::vector<core::framework::Path> p;
    p.push_back({.patterns = {"config"},
                 .fields = {{"greeting", {FieldType::kString, "What public/hello says", "hello"}}},
                 .operations = {{Operation::kRead, {[self](Request&, const FieldData&) {
                                   return self->ReadConfig();
                                 }}},
                                {Operation::kUpdate, {[self](Request& r, const FieldData& d) {
                                   return self->WriteConfig(r, d);
                                 }}}},
                 .synopsis = "The engine's configuration (root-protected)"});
    p.push_back({.patterns = {"items"},
                 .operations = {{Operation::kList,
                                 {[](Request& r, const FieldData&) -> absl::StatusOr<Response> {
                                   ASSIGN_OR_RETURN(auto keys, r.storage->List("item/"));
                                   if (keys.empty()) return absl::NotFoundError("");
                                   json::array a;
                                   for (auto& k : keys) a.emplace_back(k);
                                   return Response::Data(json::object{{"keys", std::move(a)}});
                                 }}}},
                 .synopsis = "Lists the items"});
    p.push_back(
        {.patterns = {"items/{name}"},
         .fields = {{"name", {FieldType::kString, "The item's name"}},
                    {"value", {FieldType::kString, "The item's value", {}, false, true}},
                    {"count", {FieldType::kInt, "A number", 1}},
                    {"ttl", {FieldType::kDuration, "A duration", "1h"}},
                    {"tags", {FieldType::kCommaStringSlice, "Tags, a list or \"a,b\""}}},
         .operations =
             {{Operation::kRead, {[](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                 ASSIGN_OR_RETURN(auto raw, r.storage->Get("item/" + d.String("name")));
                 if (!raw) return absl::NotFoundError("");
                 boost::system::error_code ec;
                 auto v = json::parse(*raw, ec);
                 if (ec || !v.is_object())
                   return absl::DataLossError("stored item is not a JSON object");
                 return Response::Data(std::move(v.as_object()));
               }}},
              {Operation::kUpdate, {[](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                 if (!d.Has("value")) return absl::InvalidArgumentError("value is required");
                 json::array tags;
                 for (auto& t : d.Strings("tags")) tags.emplace_back(t);
                 json::object o{{"value", d.String("value")},
                                {"count", d.Int("count")},
                                {"ttl", d.Duration("ttl")},
                                {"tags", std::move(tags)}};
                 RETURN_IF_ERROR(r.storage->Put("item/" + d.String("name"), json::serialize(o)));
                 return Response::Empty();
               }}},
              {Operation::kDelete, {[](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                 RETURN_IF_ERROR(r.storage->Delete("item/" + d.String("name")));
                 return Response::Empty();
               }}}},
         .exists = [](Request& r, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
           ASSIGN_OR_RETURN(auto raw, r.storage->Get("item/" + d.String("name")));
           return std::optional<bool>(raw.has_value());
         },
         .synopsis = "One item: read, write, delete"});
    p.push_back({.patterns = {"public/hello"},
                 .operations = {{Operation::kRead,
                                 {[self](Request&, const FieldData&) -> absl::StatusOr<Response> {
                                   ASSIGN_OR_RETURN(std::string g, self->LoadConfig());
                                   return Response::Data(json::object{{"message", g}});
                                 }}}},
                 .synopsis = "A greeting anyone may read"});
    p.push_back({.patterns = {"echo/{kind:upper|plain}/{rest*}"},
                 .fields = {{"kind", {FieldType::kString, "upper or plain"}},
                            {"rest", {FieldType::kString, "Any path"}}},
                 .operations =
                     {{Operation::kRead, {[](Request&, const FieldData& d) {
                         std::string s = d.String("rest");
                         if (d.String("kind") == "upper")
                           for (char& c : s) c = static_cast<char>(std::toupper(c));
                         return absl::StatusOr<Response>(Response::Data(json::object{{"echo", s}}));
                       }}}},
                 .synopsis = "Echoes the rest of the path"});
    return p;
  }

  absl::StatusOr<std::string> LoadConfig() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    if (greeting_) return *greeting_;
    ASSIGN_OR_RETURN(auto raw, storage_->Get("config"));
    ++loads_;
    greeting_ = raw ? *raw : std::string("hello");
    return *greeting_;
  }

  absl::StatusOr<Response> ReadConfig() {
    ASSIGN_OR_RETURN(std::string g, LoadConfig());
    return Response::Data(json::object{{"greeting", g}, {"loads", loads()}});
  }

  absl::StatusOr<Response> WriteConfig(Request& r, const FieldData& d) {
    RETURN_IF_ERROR(r.storage->Put("config", d.String("greeting")));
    InvalidateKey("config");
    return Response::Empty();
  }

  storage::Storage* storage_;
  mutable Mutex mu_;
  std::optional<std::string> greeting_ ABSL_GUARDED_BY(mu_);
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return std::unique_ptr<core::Backend>(new ExampleBackend(config));
}

}  // namespace coffer::engines::example
