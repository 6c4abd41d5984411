// The fields of a parsed Beast request that http::ParseRequest reads, as views into the message
// (the server and the HTTP fuzz target share it, so the fuzzer covers the real conversion).
#pragma once

#include <boost/beast/http.hpp>

#include "http/convert.h"

namespace coffer::http {

// Views into `msg`, which must outlive the result; remote_address stays empty.
inline RawRequest ViewOf(const boost::beast::http::request<boost::beast::http::string_body>& msg) {
  RawRequest raw;
  raw.method = msg.method_string();
  raw.target = msg.target();
  auto tok = msg.find("X-Vault-Token");
  if (tok != msg.end()) raw.vault_token = tok->value();
  auto authz = msg.find(boost::beast::http::field::authorization);
  if (authz != msg.end()) raw.authorization = authz->value();
  for (const auto& f : msg) {
    std::string_view name = f.name_string();
    if (name.size() < 8 || !boost::beast::iequals(name.substr(0, 8), "X-Vault-")) continue;
    if (boost::beast::iequals(name, "X-Vault-Token")) continue;
    if (boost::beast::iequals(name, "X-Vault-Wrap-TTL")) {
      raw.wrap_ttl = f.value();
      continue;
    }
    // Sent by the vault CLI and hvac on every request: "this is an API call", nothing to do.
    if (boost::beast::iequals(name, "X-Vault-Request")) continue;
    // The root namespace is the only one Coffer has.
    if (boost::beast::iequals(name, "X-Vault-Namespace") &&
        (f.value().empty() || f.value() == "root" || f.value() == "/"))
      continue;
    raw.unsupported_headers.push_back(name);
  }
  raw.body = msg.body();
  return raw;
}

}  // namespace coffer::http
