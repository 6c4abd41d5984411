// Typed access to fields of a JSON request body, with errors a person can act on.
// Numbers and booleans are also accepted as strings ("3", "true"), as Vault's field parser does.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json.hpp"

namespace coffer {

absl::StatusOr<std::optional<int64_t>> JsonInt(const boost::json::object& o, std::string_view key);
absl::StatusOr<std::optional<bool>> JsonBool(const boost::json::object& o, std::string_view key);
absl::StatusOr<std::optional<std::string>> JsonString(const boost::json::object& o,
                                                      std::string_view key);
// Lenient reads of a document Coffer wrote itself (a stored record, a server's answer): the
// string or integer at `key`, or "" / 0 when it is missing or of another type.
std::string JsonStringOr(const boost::json::object& o, std::string_view key);
int64_t JsonIntOr(const boost::json::object& o, std::string_view key);
// The object at `key`, or null; the strings of the array at `key` (other elements skipped).
const boost::json::object* JsonObjectOr(const boost::json::object& o, std::string_view key);
std::vector<std::string> JsonStringsOr(const boost::json::object& o, std::string_view key);
// Name of a JSON value's type for messages ("string", "number", "object" ...).
std::string_view JsonTypeName(const boost::json::value& v);

// Appends the JSON text of `v` to `out`: the same bytes as boost::json::serialize (its string
// escapes, its number forms), written straight into `out` instead of through the serializer's
// chunked state machine. Used to render every response.
void AppendJsonText(std::string& out, const boost::json::value& v);
void AppendJsonText(std::string& out, const boost::json::object& o);
void AppendJsonText(std::string& out, std::string_view s);  // as a JSON string

}  // namespace coffer
