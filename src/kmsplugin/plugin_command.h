// The options and the run of the KMS v2 plugin (plugin_command.cc), set on the CLI11 app of the
// coffer-kms-plugin program (main.cc), which `coffer kms-plugin` runs.
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::kmsplugin {

// Adds the plugin's flags to `c`; when parsed, runs the plugin and sets *exit_code.
void ConfigureKmsPlugin(CLI::App* c, int* exit_code);

}  // namespace coffer::kmsplugin
