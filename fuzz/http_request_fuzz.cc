// Fuzzes the HTTP request path: Beast's parser over raw bytes (with Coffer's limits), then
// Coffer's conversion of the parsed message into a core request and the rendering of an error.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "http/beast_request.h"
#include "http/convert.h"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(coffer::http::kMaxBodyBytes);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  auto& msg = parser.get();
  coffer::http::RawRequest raw = coffer::http::ViewOf(msg);
  auto req = coffer::http::ParseRequest(raw);
  if (!req.ok()) (void)coffer::http::RenderError(400, std::string(req.status().message()));
  return 0;
}
