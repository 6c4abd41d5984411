// Fuzzes JSON request bodies: parsing through ParseRequest and the typed field accessors every
// endpoint uses (integers, booleans, strings, durations).
#include <cstddef>
#include <cstdint>
#include <string>

#include "http/convert.h"
#include "util/duration.h"
#include "util/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  coffer::http::RawRequest raw;
  raw.method = "PUT";
  raw.target = "/v1/sys/init";
  raw.body = body;
  auto req = coffer::http::ParseRequest(raw);
  if (!req.ok()) return 0;
  for (const auto& [k, v] : req->data) {
    std::string_view key = k;
    (void)coffer::JsonInt(req->data, key);
    (void)coffer::JsonBool(req->data, key);
    (void)coffer::JsonString(req->data, key);
    (void)coffer::ParseDurationSeconds(v);
  }
  return 0;
}
