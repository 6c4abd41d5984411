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
  raw.body = msg.body();
  return raw;
}

}  // namespace coffer::http
