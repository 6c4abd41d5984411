// The `coffer` command line. Vault-compatible spelling: single-dash long flags (-format=json),
// env COFFER_ADDR / COFFER_TOKEN / COFFER_CACERT with VAULT_* fallbacks, and vault's exit
// codes: 0 success, 1 local error (bad flags or input), 2 remote error (API or connection).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace coffer::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitLocal = 1;
inline constexpr int kExitRemote = 2;

// Rewrites "-flag" and "-flag=value" to "--flag..." so CLI11 accepts vault's spelling.
std::vector<std::string> NormalizeArgs(int argc, char** argv);

struct ClientFlags {
  std::string address;
  std::string ca_cert;
  std::string format;
  std::string wrap_ttl;    // -wrap-ttl (env VAULT_WRAP_TTL): ask for the response wrapped
  bool wrap_flag = false;  // set by ResolveWrapped: -wrap-ttl and VAULT_WRAP_TTL apply
  bool skip_verify = false;
  std::string client_cert, client_key;  // -client-cert/-client-key (VAULT_CLIENT_CERT/KEY)
  bool output_curl_string = false;  // -output-curl-string: print the request as curl, send nothing
};

// Adds -address, -ca-cert, -tls-skip-verify, -format and -output-curl-string to a client
// subcommand; an unknown -format (or COFFER_FORMAT/VAULT_FORMAT) stops it with exit 1 before it
// makes a request (output.h).
void AddClientFlags(CLI::App* app, ClientFlags* f);
// Adds -wrap-ttl, for commands that make one request (read, write, list, delete), which resolve
// their options with ResolveWrapped() (client_util.h) so the response comes wrapped.
void AddWrapFlag(CLI::App* app, ClientFlags* f);

// Registers the client subcommands (operator, status, read, write, list, delete, secrets).
// Each sets *exit_code when it runs.
void RegisterClientCommands(CLI::App& app, int* exit_code);
// Registers `coffer operator generate-root` and `coffer operator rekey` (operator_keys.cc)
// under the `operator` command.
void RegisterOperatorKeyCommands(CLI::App* op, int* exit_code);
// Registers `coffer kv ...` (kv_commands.cc): either kv version, as `vault kv`.
void RegisterKvCommands(CLI::App& app, int* exit_code);
// Registers `coffer transit encrypt|decrypt|rewrap|rewrap-all` (transit_commands.cc).
void RegisterTransitCommands(CLI::App& app, int* exit_code);
// Registers `coffer pki ...`.
void RegisterPkiCommands(CLI::App& app, int* exit_code);
// Registers `coffer cluster ...` and `coffer agent ...`.
void RegisterClusterCommands(CLI::App& app, int* exit_code);
void RegisterAgentCommands(CLI::App& app, int* exit_code);
// Registers `coffer server`.
void RegisterServerCommand(CLI::App& app, int* exit_code);
// Registers `coffer kms-plugin` (kms_commands.cc): the Kubernetes KMS v2 plugin.
void RegisterKmsCommands(CLI::App& app, int* exit_code);

}  // namespace coffer::cli
