// Helpers shared by the client commands: resolving the address/token/CA (flags, COFFER_*,
// VAULT_*, then the token file written by `coffer login`), calling the API, printing results
// the way the vault CLI does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "boost/json.hpp"
#include "cli/cli.h"
#include "cli/output.h"
#include "http/client.h"

namespace coffer::cli {

std::string Env(const char* primary, const char* fallback);
// Prints "Error: <message>" on stderr and returns Vault's exit code for it: 2 for what the server
// said or could not say (HTTP errors, connection failures), 1 for local problems (flags, config,
// files).
int FailStatus(const absl::Status& st);
std::string TokenFilePath();  // ~/.coffer-token
std::string ReadTokenFile();
// Writes the token to TokenFilePath() (mode 0600, replaced atomically), as `coffer login` and
// `coffer server -dev` do; false when it cannot.
bool StoreToken(const std::string& token);
http::ClientOptions Resolve(const ClientFlags& f);         // never wraps
http::ClientOptions ResolveWrapped(const ClientFlags& f);  // with -wrap-ttl / VAULT_WRAP_TTL
// The output format: -format, else COFFER_FORMAT, else VAULT_FORMAT, else "table"; yml is yaml.
std::string Format(const ClientFlags& f);
int ReportApiError(std::string_view action, const http::ClientOptions& o, std::string_view method,
                   std::string_view path, const http::ClientResponse& r);
// Runs a request; on a transport failure prints the reason and returns nullopt with *code set.
// In -output-curl-string mode it prints the request as a curl command instead (the first one
// only) and returns nullopt with *code = 0.
std::optional<http::ClientResponse> Request(const http::ClientOptions& o, std::string_view method,
                                            std::string_view path, std::string_view body,
                                            int* code);
std::string ValueText(const boost::json::value& v);
std::string DurationText(int64_t s);
void PrintTable(const std::vector<std::pair<std::string, std::string>>& rows,
                std::string_view h1 = "Key", std::string_view h2 = "Value");
// The vault CLI's table for a response holding an auth block (token, token_accessor ...); the
// whole response in the structured formats.
int PrintAuth(const boost::json::object& resp, const std::string& format, const std::string& field);
// A response as vault prints a secret: a Key/Value table of its data (and lease, wrapping), the
// whole response in the structured formats, or one -field's value.
int PrintSecret(const boost::json::object& resp, const std::string& format,
                const std::string& field);
std::string ReadAll(std::istream& in);
// A secret the user gives (secret_input.cc): `arg` itself, or with "-" a line of standard input,
// or with nothing a line typed at the terminal after `prompt` with echo off (the terminal is
// restored however the command ends); with nothing and no terminal, an error naming `what`.
absl::StatusOr<std::string> ReadSecret(const std::string& arg, std::string_view what,
                                       std::string_view prompt);
absl::StatusOr<boost::json::object> ParseKv(const std::vector<std::string>& args);
std::string ApiPath(std::string p);
std::optional<boost::json::object> ParseObject(const std::string& body);

// Registers login, token, policy, auth and audit.
void RegisterAuthCommands(CLI::App& app, int* exit_code);

}  // namespace coffer::cli
