// Transit encryption: encrypt/<name>, decrypt/<name>, rewrap/<name> (each with batch_input)
// and datakey/<plaintext|wrapped>/<name>.
#include "crypto/crypto.h"
#include "engines/transit/transit_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {
namespace {

FieldSchema B64Schema(std::string d) { return Field(FieldType::kString, std::move(d)); }

std::map<std::string, FieldSchema> CommonFields() {
  return {{"name", Field(FieldType::kString, "The key's name")},
          {"context", B64Schema("Base64 context for derived keys")},
          {"nonce", B64Schema("Base64 nonce (convergent encryption version 1 only)")},
          {"key_version", Field(FieldType::kInt, "The key version to use; 0 is the newest")},
          {"associated_data", B64Schema("Base64 additional authenticated data (AEAD keys)")},
          {"batch_input", Field(FieldType::kAny, "A list of items, each with the fields above")},
          {"reference", Field(FieldType::kString, "Echoed back in batch results")},
          {"partial_failure_response_code",
           Field(FieldType::kInt, "HTTP status when some batch items fail (default 200)")}};
}

}  // namespace

void TransitBackend::CryptoPaths(TransitBackend* self, std::vector<Path>& p) {
  auto encrypt_fields = CommonFields();
  encrypt_fields["plaintext"] = B64Schema("Base64 plaintext");
  encrypt_fields["plaintext"].sensitive = true;
  encrypt_fields["type"] =
      Field(FieldType::kString, "Type of a key created by this call", "aes256-gcm96");
  encrypt_fields["convergent_encryption"] =
      Field(FieldType::kBool, "Convergent encryption for a key created by this call");
  p.push_back(
      {.patterns = {"encrypt/{name}"},
       .fields = encrypt_fields,
       .operations =
           {{Operation::kUpdate,
             {[self](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
               ASSIGN_OR_RETURN(auto pol,
                                self->GetOrCreate(d.String("name"), r.op == Operation::kCreate, d));
               return RunItems(
                   r, d, {"plaintext", "context", "nonce", "key_version", "associated_data"},
                   [&](const json::object& item) -> absl::StatusOr<json::object> {
                     const json::value* pt = item.if_contains("plaintext");
                     if (pt == nullptr || pt->is_null())
                       return absl::InvalidArgumentError("missing plaintext to encrypt");
                     ASSIGN_OR_RETURN(std::string plain, ItemBase64(item, "plaintext"));
                     ASSIGN_OR_RETURN(std::string ctx, ItemBase64(item, "context"));
                     ASSIGN_OR_RETURN(std::string nonce, ItemBase64(item, "nonce"));
                     ASSIGN_OR_RETURN(std::string aad, ItemBase64(item, "associated_data"));
                     ASSIGN_OR_RETURN(int ver, ItemInt(item, "key_version"));
                     ASSIGN_OR_RETURN(int used, pol->EncryptionVersion(ver));
                     auto c = pol->Encrypt(plain, ctx, nonce, aad, used);
                     OPENSSL_cleanse(plain.data(), plain.size());
                     if (!c.ok()) return c.status();
                     return json::object{{"ciphertext", std::move(*c)}, {"key_version", used}};
                   });
             }}}},
       // Asked before the ACL check: Load, which never rotates a due key (Get would let a
       // caller without access to the key make the rotation and its write).
       .exists = [self](Request&, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
         ASSIGN_OR_RETURN(auto pol, self->Load(d.String("name")));
         return std::optional<bool>(pol != nullptr);
       },
       .synopsis = "Encrypts base64 plaintext (creating an aes256-gcm96 key when missing and "
                   "the caller may create)"});

  auto decrypt_fields = CommonFields();
  decrypt_fields["ciphertext"] = Field(FieldType::kString, "vault:v<N>:<base64>");
  p.push_back(
      {.patterns = {"decrypt/{name}"},
       .fields = decrypt_fields,
       .operations = {{Operation::kUpdate,
                       {[self](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
                         ASSIGN_OR_RETURN(auto pol, self->Get(d.String("name")));
                         if (!pol) return absl::InvalidArgumentError("encryption key not found");
                         return RunItems(
                             r, d, {"ciphertext", "context", "nonce", "associated_data"},
                             [&](const json::object& item) -> absl::StatusOr<json::object> {
                               ASSIGN_OR_RETURN(std::string c, ItemString(item, "ciphertext"));
                               if (c.empty())
                                 return absl::InvalidArgumentError("missing ciphertext to decrypt");
                               ASSIGN_OR_RETURN(std::string ctx, ItemBase64(item, "context"));
                               ASSIGN_OR_RETURN(std::string nonce, ItemBase64(item, "nonce"));
                               ASSIGN_OR_RETURN(std::string aad,
                                                ItemBase64(item, "associated_data"));
                               ASSIGN_OR_RETURN(std::string plain,
                                                pol->Decrypt(c, ctx, nonce, aad));
                               std::string b64 = Base64Encode(plain);
                               OPENSSL_cleanse(plain.data(), plain.size());
                               return json::object{{"plaintext", std::move(b64)}};
                             });
                       }}}},
       .synopsis = "Decrypts a ciphertext; the plaintext comes back base64"});

  auto rewrap_fields = CommonFields();
  rewrap_fields["ciphertext"] = Field(FieldType::kString, "vault:v<N>:<base64>");
  p.push_back(
      {.patterns = {"rewrap/{name}"},
       .fields = rewrap_fields,
       .operations =
           {{Operation::kUpdate,
             {[self](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
               ASSIGN_OR_RETURN(auto pol, self->Get(d.String("name")));
               if (!pol) return absl::InvalidArgumentError("encryption key not found");
               return RunItems(
                   r, d, {"ciphertext", "context", "nonce", "key_version"},
                   [&](const json::object& item) -> absl::StatusOr<json::object> {
                     ASSIGN_OR_RETURN(std::string c, ItemString(item, "ciphertext"));
                     if (c.empty())
                       return absl::InvalidArgumentError("missing ciphertext to rewrap");
                     ASSIGN_OR_RETURN(std::string ctx, ItemBase64(item, "context"));
                     ASSIGN_OR_RETURN(std::string nonce, ItemBase64(item, "nonce"));
                     ASSIGN_OR_RETURN(int ver, ItemInt(item, "key_version"));
                     ASSIGN_OR_RETURN(std::string plain, pol->Decrypt(c, ctx, nonce, ""));
                     ASSIGN_OR_RETURN(int used, pol->EncryptionVersion(ver));
                     auto out = pol->Encrypt(plain, ctx, nonce, "", used);
                     OPENSSL_cleanse(plain.data(), plain.size());
                     if (!out.ok()) return out.status();
                     return json::object{{"ciphertext", std::move(*out)}, {"key_version", used}};
                   });
             }}}},
       .synopsis = "Re-encrypts a ciphertext with the newest (or given) key version"});

  auto datakey_fields = CommonFields();
  datakey_fields["plaintext"] = Field(FieldType::kString, "plaintext or wrapped");
  datakey_fields["bits"] = Field(FieldType::kInt, "128, 256 (default) or 512", 256);
  p.push_back(
      {.patterns = {"datakey/{plaintext}/{name}"},
       .fields = datakey_fields,
       .operations =
           {{Operation::kUpdate, {[self](Request&, const FieldData& d) -> absl::StatusOr<Response> {
               std::string kind = d.String("plaintext");
               if (kind != "plaintext" && kind != "wrapped")
                 return absl::InvalidArgumentError(
                     Cat("invalid data key type \"", kind, "\"; use plaintext or wrapped"));
               int64_t bits = d.Int("bits");
               if (bits != 128 && bits != 256 && bits != 512)
                 return absl::InvalidArgumentError("invalid bits length; use 128, 256 or 512");
               ASSIGN_OR_RETURN(auto pol, self->Get(d.String("name")));
               if (!pol) return absl::InvalidArgumentError("encryption key not found");
               json::object item;
               for (const char* k : {"context", "nonce"})
                 if (d.Has(k)) item[k] = d.String(k);
               ASSIGN_OR_RETURN(std::string ctx, ItemBase64(item, "context"));
               ASSIGN_OR_RETURN(std::string nonce, ItemBase64(item, "nonce"));
               ASSIGN_OR_RETURN(int asked, VersionField(d, "key_version"));
               ASSIGN_OR_RETURN(int used, pol->EncryptionVersion(asked));
               ASSIGN_OR_RETURN(crypto::SecretBytes key,
                                crypto::SecretBytes::Random(static_cast<size_t>(bits / 8)));
               ASSIGN_OR_RETURN(std::string c, pol->Encrypt(key.view(), ctx, nonce, "", used));
               json::object out{{"ciphertext", std::move(c)}, {"key_version", used}};
               if (kind == "plaintext") out["plaintext"] = Base64Encode(key.view());
               return Response::Data(std::move(out));
             }}}},
       .synopsis = "Makes a random data key, returned encrypted (and in plaintext when asked)"});
}

}  // namespace coffer::engines::transit
