// Output formats of the client commands and the -output-curl-string mode, as the vault CLI's.
//
// -format (env COFFER_FORMAT, then VAULT_FORMAT) takes table (the default), json, yaml (or yml),
// pretty, and for `coffer read` only raw. json is the response indented by two spaces, as Go's
// json.MarshalIndent; yaml is what vault's ghodss/yaml prints (keys sorted, YAML 1.1 quoting,
// multi-line strings as literal blocks); pretty is an indented outline (see docs/compatibility.md:
// vault only has it for `operator raft autopilot state`). A command prints with
// PrintStructured() and falls back to its table when that returns false.
//
// -output-curl-string: the first API request a command makes is printed as the equivalent curl
// command instead of being sent; the command then stops with exit 0. The mode belongs to the one
// command the process runs, so it is process-wide state set while the flags are parsed.
// Nothing here is thread-safe: the CLI runs one command on one thread.
#pragma once

#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "boost/json.hpp"
#include "http/client.h"

namespace coffer::cli {

struct ClientFlags;

// The text of `v` in each format. Json: indented; Yaml: ends without a newline for a collection
// (as vault trims it); Pretty: lines ending in "\n".
std::string IndentedJson(const boost::json::value& v);
std::string Yaml(const boost::json::value& v);
std::string Pretty(const boost::json::value& v);

// json, yaml, yml, pretty, table (and raw where allowed).
bool KnownFormat(std::string_view format, bool raw_allowed);
// Checks the command's -format (or the environment's); on an unknown one prints vault's
// "Invalid output format: X" and throws CLI::RuntimeError(1), which main() turns into exit 1.
// Called once the command's flags are parsed (AddClientFlags arranges it).
void CheckFormat(const ClientFlags& f, bool raw_allowed);

// For json, yaml and pretty prints `v` and returns true; for table (and raw) returns false and
// prints nothing: the caller prints its table.
bool PrintStructured(const boost::json::value& v, std::string_view format);
// A -field value as vault's PrintRawField: with table, raw or pretty the value itself (strings
// unquoted, others as JSON), with json or yaml the value in that format; a newline follows only
// when standard output is a terminal.
void PrintFieldValue(const boost::json::value& v, std::string_view format);

// ---- -output-curl-string -----------------------------------------------------------------
void SetCurlMode(bool on);
bool CurlMode();
// True once a command has printed its curl string (it then stops, exit 0).
bool CurlPrinted();
// The curl command for a request, as vault's: the token as $(coffer print token), --cacert or
// --insecure from the options, LIST as GET with ?list=true.
std::string CurlString(const http::ClientOptions& o, std::string_view method, std::string_view path,
                       std::string_view body);
// Prints it and marks the command done.
void PrintCurl(const http::ClientOptions& o, std::string_view method, std::string_view path,
               std::string_view body);
// While alive, requests are sent even in curl mode: a command's look-ups that only decide which
// request to make (kv's mount preflight), as vault's.
class CurlSuspended {
 public:
  CurlSuspended();
  ~CurlSuspended();
  CurlSuspended(const CurlSuspended&) = delete;
  CurlSuspended& operator=(const CurlSuspended&) = delete;

 private:
  bool was_;
};

// `coffer completion bash|zsh` (completion.cc): a script generated from `root`'s command tree.
void RegisterCompletionCommand(CLI::App& root, int* exit_code);

}  // namespace coffer::cli
