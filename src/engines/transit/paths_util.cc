// Transit utilities that need no key: random[/<source>][/<bytes>] and hash[/<algorithm>].
#include <charconv>

#include "crypto/crypto.h"
#include "engines/transit/transit_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {
namespace {

constexpr int64_t kMaxRandomBytes = int64_t{128} * 1024;

absl::StatusOr<std::string> Encode(std::string_view bytes, std::string_view format) {
  if (format.empty() || format == "base64") return Base64Encode(bytes);
  if (format == "hex") return HexEncode(bytes);
  return absl::InvalidArgumentError(
      Cat("unsupported encoding format \"", format, "\"; use base64 or hex"));
}

}  // namespace

void TransitBackend::UtilPaths(TransitBackend* /*self*/, std::vector<Path>& p) {
  p.push_back(
      {.patterns = {"random/{source:platform|seal|all}/{urlbytes}",
                    "random/{source:platform|seal|all}", "random/{urlbytes}", "random"},
       .fields = {{"urlbytes", Field(FieldType::kString, "Number of bytes (in the URL)")},
                  {"bytes", Field(FieldType::kInt, "Number of bytes, 1 to 131072", 32)},
                  {"format", Field(FieldType::kString, "base64 (default) or hex", "base64")},
                  {"source", Field(FieldType::kString,
                                   "platform (default); seal and all are the platform's "
                                   "generator too in Coffer",
                                   "platform")}},
       .operations =
           {{Operation::kUpdate, {[](Request&, const FieldData& d) -> absl::StatusOr<Response> {
               int64_t n = d.Int("bytes");
               if (d.Has("urlbytes")) {
                 std::string s = d.String("urlbytes");
                 auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
                 if (ec != std::errc() || ptr != s.data() + s.size())
                   return absl::InvalidArgumentError(Cat("unable to parse bytes \"", s, "\""));
               }
               if (n < 1) return absl::InvalidArgumentError("bytes must be positive");
               if (n > kMaxRandomBytes)
                 return absl::InvalidArgumentError(
                     Cat("exceeded maximum allowed number of bytes (", kMaxRandomBytes, ")"));
               ASSIGN_OR_RETURN(std::string bytes, crypto::RandomBytes(static_cast<size_t>(n)));
               ASSIGN_OR_RETURN(std::string out, Encode(bytes, d.String("format")));
               return Response::Data(json::object{{"random_bytes", std::move(out)}});
             }}}},
       .synopsis = "Random bytes from the platform's generator"});

  p.push_back(
      {.patterns = {"hash/{urlalgorithm}", "hash"},
       .fields = {{"urlalgorithm", Field(FieldType::kString, "Algorithm (in the URL)")},
                  {"algorithm",
                   Field(FieldType::kString,
                         "sha2-256 (default), sha2-224, sha2-384, sha2-512, sha3-*", "sha2-256")},
                  {"input", Field(FieldType::kString, "Base64 input")},
                  {"format", Field(FieldType::kString, "hex (default) or base64", "hex")}},
       .operations = {{Operation::kUpdate,
                       {[](Request&, const FieldData& d) -> absl::StatusOr<Response> {
                         std::string alg = d.Has("urlalgorithm") ? d.String("urlalgorithm")
                                                                 : d.String("algorithm");
                         if (!d.Has("input"))
                           return absl::InvalidArgumentError("missing input to hash");
                         ASSIGN_OR_RETURN(std::string in, DecodeB64("input", d.String("input")));
                         auto sum = Digest(alg, in);
                         if (!sum)
                           return absl::InvalidArgumentError(
                               Cat("unsupported algorithm \"", alg, "\""));
                         std::string format = d.String("format");
                         if (format != "hex" && format != "base64")
                           return absl::InvalidArgumentError(Cat("unsupported encoding format \"",
                                                                 format, "\"; use hex or base64"));
                         return Response::Data(json::object{
                             {"sum", format == "hex" ? HexEncode(*sum) : Base64Encode(*sum)}});
                       }}}},
       .synopsis = "Hashes base64 input"});
}

}  // namespace coffer::engines::transit
