// Transit signatures and MACs: hmac/<name>[/<algorithm>], sign/<name>[/<algorithm>],
// verify/<name>[/<algorithm>] (each with batch_input).
#include <charconv>

#include "engines/transit/transit_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {
namespace {

bool KnownHash(std::string_view a) { return a == "none" || Digest(a, "").has_value(); }

absl::Status CheckSaltLength(std::string_view s) {
  if (s.empty() || s == "auto" || s == "hash") return absl::OkStatus();
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < -1)
    return absl::InvalidArgumentError(
        Cat("invalid salt_length \"", s, "\"; use auto, hash or an integer >= -1"));
  return absl::OkStatus();
}

// The algorithm from the URL, else `field`, else `def`.
std::string Algorithm(const FieldData& d, std::string_view field, std::string_view def) {
  if (d.Has("urlalgorithm") && !d.String("urlalgorithm").empty()) return d.String("urlalgorithm");
  if (d.Has(field) && !d.String(field).empty()) return d.String(field);
  if (field == "hash_algorithm" && d.Has("algorithm") && !d.String("algorithm").empty())
    return d.String("algorithm");
  return std::string(def);
}

std::map<std::string, FieldSchema> SignFields() {
  return {
      {"name", Field(FieldType::kString, "The key's name")},
      {"urlalgorithm", Field(FieldType::kString, "Hash algorithm (in the URL)")},
      {"input", Field(FieldType::kString, "Base64 input")},
      {"key_version", Field(FieldType::kInt, "Version to sign with; 0 is the newest")},
      {"hash_algorithm", Field(FieldType::kString,
                               "sha2-256 (default), sha2-224, sha2-384, "
                               "sha2-512, sha3-* or none")},
      {"algorithm", Field(FieldType::kString, "Deprecated name of hash_algorithm")},
      {"context", Field(FieldType::kString, "Base64 context for derived Ed25519 keys")},
      {"prehashed", Field(FieldType::kBool, "The input is already a hash")},
      {"signature_algorithm", Field(FieldType::kString, "RSA: pss (default) or pkcs1v15")},
      {"marshaling_algorithm", Field(FieldType::kString, "asn1 (default) or jws", "asn1")},
      {"salt_length", Field(FieldType::kString, "RSA PSS salt: auto, hash or a number", "auto")},
      {"batch_input", Field(FieldType::kAny, "A list of items {input, context, ...}")},
      {"reference", Field(FieldType::kString, "Echoed back in batch results")},
      {"partial_failure_response_code",
       Field(FieldType::kInt, "HTTP status when some batch items fail (default 200)")}};
}

absl::StatusOr<SignOptions> Options(const FieldData& d) {
  SignOptions o;
  o.hash_algorithm = Algorithm(d, "hash_algorithm", "sha2-256");
  if (!KnownHash(o.hash_algorithm))
    return absl::InvalidArgumentError(Cat("invalid hash algorithm \"", o.hash_algorithm, "\""));
  o.prehashed = d.Bool("prehashed");
  o.signature_algorithm = d.String("signature_algorithm");
  if (!o.signature_algorithm.empty() && o.signature_algorithm != "pss" &&
      o.signature_algorithm != "pkcs1v15")
    return absl::InvalidArgumentError(
        Cat("invalid signature_algorithm \"", o.signature_algorithm, "\"; use pss or pkcs1v15"));
  o.marshaling_algorithm = d.String("marshaling_algorithm");
  if (o.marshaling_algorithm != "asn1" && o.marshaling_algorithm != "jws")
    return absl::InvalidArgumentError(
        Cat("invalid marshaling_algorithm \"", o.marshaling_algorithm, "\"; use asn1 or jws"));
  o.salt_length = d.String("salt_length");
  RETURN_IF_ERROR(CheckSaltLength(o.salt_length));
  ASSIGN_OR_RETURN(o.key_version, VersionField(d, "key_version"));
  return o;
}

}  // namespace

void TransitBackend::SignPaths(TransitBackend* self, std::vector<Path>& p) {
  p.push_back(
      {.patterns = {"hmac/{name}", "hmac/{name}/{urlalgorithm}"},
       .fields = {{"name", Field(FieldType::kString, "The key's name")},
                  {"urlalgorithm", Field(FieldType::kString, "Hash algorithm (in the URL)")},
                  {"algorithm", Field(FieldType::kString,
                                      "sha2-256 (default), sha2-224, "
                                      "sha2-384, sha2-512, sha3-*")},
                  {"input", Field(FieldType::kString, "Base64 input")},
                  {"key_version", Field(FieldType::kInt, "Version to use; 0 is the newest")},
                  {"batch_input", Field(FieldType::kAny, "A list of items {input, reference}")},
                  {"reference", Field(FieldType::kString, "Echoed back in batch results")},
                  {"partial_failure_response_code",
                   Field(FieldType::kInt, "HTTP status when some batch items fail")}},
       .operations = {{Operation::kUpdate,
                       {[self](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                         std::string alg = Algorithm(d, "algorithm", "sha2-256");
                         if (!Digest(alg, ""))
                           return absl::InvalidArgumentError(
                               Cat("unsupported algorithm \"", alg, "\""));
                         ASSIGN_OR_RETURN(auto pol, self->Get(d.String("name")));
                         if (!pol) return absl::InvalidArgumentError("encryption key not found");
                         ASSIGN_OR_RETURN(int ver, VersionField(d, "key_version"));
                         return RunItems(
                             r, d, {"input"},
                             [&](const json::object& item) -> absl::StatusOr<json::object> {
                               if (!item.contains("input"))
                                 return absl::InvalidArgumentError("missing input for HMAC");
                               ASSIGN_OR_RETURN(std::string in, ItemBase64(item, "input"));
                               ASSIGN_OR_RETURN(std::string mac, pol->Hmac(in, alg, ver));
                               return json::object{{"hmac", std::move(mac)}};
                             });
                       }}}},
       .synopsis = "HMACs base64 input with the key's HMAC key"});

  p.push_back({.patterns = {"sign/{name}", "sign/{name}/{urlalgorithm}"},
               .fields = SignFields(),
               .operations =
                   {{Operation::kUpdate,
                     {[self](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                       ASSIGN_OR_RETURN(SignOptions base, Options(d));
                       ASSIGN_OR_RETURN(auto pol, self->Get(d.String("name")));
                       if (!pol) return absl::InvalidArgumentError("signing key not found");
                       return RunItems(
                           r, d, {"input", "context"},
                           [&](const json::object& item) -> absl::StatusOr<json::object> {
                             if (!item.contains("input"))
                               return absl::InvalidArgumentError("missing input to sign");
                             ASSIGN_OR_RETURN(std::string in, ItemBase64(item, "input"));
                             SignOptions o = base;
                             ASSIGN_OR_RETURN(o.context, ItemBase64(item, "context"));
                             ASSIGN_OR_RETURN(std::string sig, pol->Sign(in, o));
                             auto parsed =
                                 ParseVersioned(sig, "signature", o.marshaling_algorithm == "jws");
                             int v = parsed.ok() ? parsed->version : 0;
                             return json::object{{"signature", std::move(sig)}, {"key_version", v}};
                           });
                     }}}},
               .synopsis = "Signs base64 input with the key"});

  auto verify = SignFields();
  verify["signature"] = Field(FieldType::kString, "vault:v<N>:<base64> signature to verify");
  verify["hmac"] = Field(FieldType::kString, "vault:v<N>:<base64> HMAC to verify");
  p.push_back(
      {.patterns = {"verify/{name}", "verify/{name}/{urlalgorithm}"},
       .fields = verify,
       .operations = {{Operation::kUpdate,
                       {[self](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                         ASSIGN_OR_RETURN(SignOptions base, Options(d));
                         ASSIGN_OR_RETURN(auto pol, self->Get(d.String("name")));
                         if (!pol)
                           return absl::InvalidArgumentError(
                               "signature verification key not found");
                         std::string hmac_alg = Algorithm(d, "algorithm", "sha2-256");
                         if (d.Has("hash_algorithm") && !d.Has("urlalgorithm"))
                           hmac_alg = d.String("hash_algorithm");
                         return RunItems(
                             r, d, {"input", "signature", "hmac", "context"},
                             [&](const json::object& item) -> absl::StatusOr<json::object> {
                               if (!item.contains("input"))
                                 return absl::InvalidArgumentError("missing input to verify");
                               ASSIGN_OR_RETURN(std::string in, ItemBase64(item, "input"));
                               ASSIGN_OR_RETURN(std::string sig, ItemString(item, "signature"));
                               ASSIGN_OR_RETURN(std::string mac, ItemString(item, "hmac"));
                               if (sig.empty() == mac.empty())
                                 return absl::InvalidArgumentError(
                                     "give exactly one of 'signature' and 'hmac'");
                               bool valid = false;
                               if (!mac.empty()) {
                                 ASSIGN_OR_RETURN(valid, pol->VerifyHmac(in, hmac_alg, mac));
                               } else {
                                 SignOptions o = base;
                                 ASSIGN_OR_RETURN(o.context, ItemBase64(item, "context"));
                                 ASSIGN_OR_RETURN(valid, pol->Verify(in, sig, o));
                               }
                               return json::object{{"valid", valid}};
                             });
                       }}}},
       .synopsis = "Verifies a signature or an HMAC"});
}

}  // namespace coffer::engines::transit
