// PKI engine: CAs, issuers and keys — root/generate, root/rotate, intermediate/generate,
// intermediate/set-signed, config/ca, issuers/import/bundle, issuer/:ref, keys, config/issuers,
// config/keys, config/urls, ca, ca/pem, ca_chain.
#include "engines/pki/pki_internal.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;

namespace {

absl::Status CheckType(std::string_view type, bool allow_existing) {
  if (type == "internal" || type == "exported") return absl::OkStatus();
  if (type == "existing" && allow_existing) return absl::OkStatus();
  if (type == "kms")
    return absl::InvalidArgumentError("managed keys (kms) are not supported by Coffer");
  return absl::InvalidArgumentError(Cat("unknown type \"", type, "\": use internal, exported",
                                        allow_existing ? " or existing" : ""));
}

// The key for a new CA: an existing one (type existing, key_ref) or a fresh one.
absl::StatusOr<std::pair<crypto::PKey, std::string>> KeyForCa(PkiBackend* b, Request& req,
                                                              std::string_view type) {
  if (type == "existing") {
    ASSIGN_OR_RETURN(auto k, b->ResolveKey(req.storage, GetString(req.data, "key_ref")));
    EVP_PKEY_up_ref(k->key.get());
    return std::make_pair(crypto::PKey(k->key.get()), k->id);
  }
  ASSIGN_OR_RETURN(auto bits, JsonInt(req.data, "key_bits"));
  ASSIGN_OR_RETURN(crypto::KeySpec spec,
                   crypto::ParseKeySpec(GetString(req.data, "key_type"), bits.value_or(0)));
  ASSIGN_OR_RETURN(crypto::PKey key, crypto::GenerateKey(spec));
  return std::make_pair(std::move(key), std::string());
}

absl::Status CaTemplate(const json::object& d, crypto::CertTemplate* t) {
  t->common_name = GetString(d, "common_name");
  if (t->common_name.empty())
    return absl::InvalidArgumentError("the common_name field is required for a CA certificate");
  RETURN_IF_ERROR(ApplySubjectFields(d, t));
  RETURN_IF_ERROR(ApplySanFields(d, t));
  AddCnToSans(t);
  ASSIGN_OR_RETURN(auto mpl, JsonInt(d, "max_path_length"));
  t->max_path_length = static_cast<int>(mpl.value_or(-1));
  if (t->max_path_length < -1)
    return absl::InvalidArgumentError("max_path_length must be -1 (no limit) or at least 0");
  ASSIGN_OR_RETURN(auto pdd, StringList(d, "permitted_dns_domains"));
  if (pdd) t->permitted_dns_domains = *pdd;
  ASSIGN_OR_RETURN(auto sb, JsonInt(d, "signature_bits"));
  t->signature_bits = static_cast<int>(sb.value_or(0));
  if (t->signature_bits != 0 && t->signature_bits != 256 && t->signature_bits != 384 &&
      t->signature_bits != 512)
    return absl::InvalidArgumentError("signature_bits must be 256, 384 or 512");
  ASSIGN_OR_RETURN(auto pss, JsonBool(d, "use_pss"));
  t->use_pss = pss.value_or(false);
  t->is_ca = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Response> PkiBackend::GenerateRoot(Request& req, std::string_view type,
                                                  bool rotate) {
  RETURN_IF_ERROR(CheckType(type, true));
  crypto::CertTemplate t;
  RETURN_IF_ERROR(CaTemplate(req.data, &t));
  const std::string issuer_name = GetString(req.data, "issuer_name");
  const std::string key_name = GetString(req.data, "key_name");
  if (!issuer_name.empty()) {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    for (const auto& is : all)
      if (is->name == issuer_name)
        return absl::InvalidArgumentError(
            Cat("issuer name \"", issuer_name, "\" is already in use"));
  }
  std::vector<std::string> warnings;
  const int64_t now = Now();
  ASSIGN_OR_RETURN(auto nbd, DurationField(req.data, "not_before_duration"));
  t.not_before = now - nbd.value_or(30);
  ASSIGN_OR_RETURN(t.not_after, ComputeNotAfter(req.data, now, req.mount_max_ttl, req.mount_max_ttl,
                                                nullptr, &warnings));
  ASSIGN_OR_RETURN(auto kp, KeyForCa(this, req, type));
  auto& [key, existing_key_id] = kp;
  ASSIGN_OR_RETURN(crypto::Cert cert, crypto::SignCertificate(t, key.get(), nullptr, key.get()));
  std::string key_id = existing_key_id;
  if (key_id.empty()) {
    ASSIGN_OR_RETURN(key_id, SaveKey(req.storage, key.get(), key_name));
  }
  ASSIGN_OR_RETURN(std::string issuer_id,
                   SaveIssuer(req.storage, cert.get(), key_id, issuer_name, !rotate));
  ASSIGN_OR_RETURN(auto issuer, ResolveIssuer(req.storage, issuer_id));

  json::object out;
  RETURN_IF_ERROR(
      FormatCertificate(out, cert.get(), issuer.get(), GetString(req.data, "format"), false));
  out.erase("ca_chain");
  out["issuer_id"] = issuer_id;
  out["issuer_name"] = issuer_name;
  out["key_id"] = key_id;
  out["key_name"] = key_name;
  if (type == "exported")
    RETURN_IF_ERROR(AddPrivateKey(out, key.get(), GetString(req.data, "format"),
                                  GetString(req.data, "private_key_format")));
  Response r = Response::Data(std::move(out));
  r.warnings = std::move(warnings);
  return r;
}

absl::StatusOr<Response> PkiBackend::GenerateIntermediate(Request& req, std::string_view type) {
  RETURN_IF_ERROR(CheckType(type, true));
  crypto::CertTemplate t;
  RETURN_IF_ERROR(CaTemplate(req.data, &t));
  ASSIGN_OR_RETURN(auto kp, KeyForCa(this, req, type));
  auto& [key, existing_key_id] = kp;
  crypto::CsrRequest q;
  q.common_name = t.common_name;
  q.organization = t.organization;
  q.ou = t.ou;
  q.country = t.country;
  q.locality = t.locality;
  q.province = t.province;
  q.street_address = t.street_address;
  q.postal_code = t.postal_code;
  q.serial_number = t.serial_number;
  q.dns_names = t.dns_names;
  q.ip_sans = t.ip_sans;
  q.uri_sans = t.uri_sans;
  q.emails = t.emails;
  ASSIGN_OR_RETURN(auto abc, JsonBool(req.data, "add_basic_constraints"));
  q.is_ca = abc.value_or(false);
  ASSIGN_OR_RETURN(std::string csr, crypto::MakeCsrPem(key.get(), q, t.signature_bits, t.use_pss));
  std::string key_id = existing_key_id;
  const std::string key_name = GetString(req.data, "key_name");
  if (key_id.empty()) {
    ASSIGN_OR_RETURN(key_id, SaveKey(req.storage, key.get(), key_name));
  }
  json::object out{{"csr", csr}, {"key_id", key_id}, {"key_name", key_name}};
  if (GetString(req.data, "format") == "der") {
    // The CSR as base64 DER.
    std::string body;
    for (std::string_view line : Split(csr, '\n'))
      if (!line.empty() && line[0] != '-') body.append(line);
    out["csr"] = body;
  }
  if (type == "exported")
    RETURN_IF_ERROR(AddPrivateKey(out, key.get(), GetString(req.data, "format"),
                                  GetString(req.data, "private_key_format")));
  return Response::Data(std::move(out));
}

absl::StatusOr<Response> PkiBackend::ImportBundle(Request& req, std::string_view field) {
  std::string pem = GetString(req.data, field);
  if (pem.empty())
    return absl::InvalidArgumentError(Cat("the ", field, " field is required (a PEM bundle)"));
  ASSIGN_OR_RETURN(crypto::PemBundle bundle, crypto::ParsePemBundle(pem));
  OPENSSL_cleanse(pem.data(), pem.size());
  std::vector<std::string> warnings;
  json::array imported_keys, existing_keys, imported_issuers, existing_issuers;
  json::object mapping;
  if (bundle.key) {
    ASSIGN_OR_RETURN(auto before, req.storage->List("key/"));
    ASSIGN_OR_RETURN(std::string kid, SaveKey(req.storage, bundle.key.get(), ""));
    if (std::find(before.begin(), before.end(), kid) != before.end())
      existing_keys.emplace_back(kid);
    else
      imported_keys.emplace_back(kid);
  }
  for (auto& c : bundle.certs) {
    if (!crypto::IsCa(c.get()))
      return absl::InvalidArgumentError(
          Cat("certificate \"", crypto::NameOneLine(X509_get_subject_name(c.get())),
              "\" is not a CA (basicConstraints cA=TRUE is missing); only CA certificates can "
              "be imported as issuers"));
  }
  for (auto& c : bundle.certs) {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    const std::string der = crypto::CertDer(c.get());
    std::string found;
    for (const auto& is : all)
      if (crypto::CertDer(is->cert.get()) == der) found = is->id;
    if (!found.empty()) {
      existing_issuers.emplace_back(found);
      continue;
    }
    // The key: whichever key of the mount matches the certificate's public key.
    std::string key_id;
    ASSIGN_OR_RETURN(auto key_ids, req.storage->List("key/"));
    for (const auto& kid : key_ids) {
      auto k = ResolveKey(req.storage, kid);
      if (k.ok() && crypto::SameKey((*k)->key.get(), X509_get0_pubkey(c.get()))) key_id = kid;
    }
    ASSIGN_OR_RETURN(std::string id, SaveIssuer(req.storage, c.get(), key_id, "", false));
    imported_issuers.emplace_back(id);
    mapping[id] = key_id;
    if (key_id.empty() && &c == &bundle.certs.front() && field == "certificate")
      warnings.push_back(
          "the mount holds no private key for this certificate: it can be read but cannot "
          "issue; generate the CSR with intermediate/generate/internal on this mount");
  }
  json::object out{
      {"imported_issuers", imported_issuers.empty() ? json::value(nullptr) : imported_issuers},
      {"imported_keys", imported_keys.empty() ? json::value(nullptr) : imported_keys},
      {"existing_issuers", existing_issuers.empty() ? json::value(nullptr) : existing_issuers},
      {"existing_keys", existing_keys.empty() ? json::value(nullptr) : existing_keys},
      {"mapping", mapping}};
  Response r = Response::Data(std::move(out));
  r.warnings = std::move(warnings);
  return r;
}

absl::StatusOr<Response> PkiBackend::ListIssuers(Request& req) {
  ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
  if (all.empty()) return absl::NotFoundError("");
  std::string def;
  if (auto d = ResolveIssuer(req.storage, "default"); d.ok()) def = (*d)->id;
  json::array keys;
  json::object info;
  for (const auto& is : all) {
    keys.emplace_back(is->id);
    info[is->id] = json::object{{"issuer_name", is->name},
                                {"is_default", is->id == def},
                                {"key_id", is->key_id},
                                {"serial_number", is->serial}};
  }
  return Response::Data(json::object{{"keys", keys}, {"key_info", info}});
}

absl::StatusOr<Response> PkiBackend::ListKeys(Request& req) {
  ASSIGN_OR_RETURN(auto ids, req.storage->List("key/"));
  if (ids.empty()) return absl::NotFoundError("");
  json::object info;
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, id));
    info[id] = json::object{{"key_name", k->name}};
  }
  return Response::Data(json::object{{"keys", ToArray(ids)}, {"key_info", info}});
}

absl::StatusOr<Response> PkiBackend::KeyPath(Request& req, std::string_view ref) {
  ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, ref));
  auto describe = [](const KeyEntry& e) {
    return json::object{{"key_id", e.id},
                        {"key_name", e.name},
                        {"key_type", std::string(crypto::KeyTypeName(e.spec.type))},
                        {"key_bits", e.spec.bits}};
  };
  switch (req.op) {
    case Operation::kRead:
      return Response::Data(describe(*k));
    case Operation::kCreate:
    case Operation::kUpdate: {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get("key/" + k->id));
      if (!raw) return absl::NotFoundError("");
      boost::system::error_code ec;
      auto v = json::parse(*raw, ec);
      if (ec || !v.is_object()) return absl::DataLossError("stored key is not JSON");
      std::string name = GetString(req.data, "key_name");
      v.as_object()["key_name"] = name;
      std::string body = json::serialize(v);
      absl::Status st = req.storage->Put("key/" + k->id, body);
      OPENSSL_cleanse(body.data(), body.size());
      RETURN_IF_ERROR(st);
      InvalidateCaches();
      ASSIGN_OR_RETURN(auto k2, ResolveKey(req.storage, k->id));
      return Response::Data(describe(*k2));
    }
    case Operation::kDelete: {
      ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
      for (const auto& is : all)
        if (is->key_id == k->id)
          return absl::InvalidArgumentError(
              Cat("key ", k->id, " is in use by issuer ", is->id, ": delete the issuer first"));
      RETURN_IF_ERROR(req.storage->Delete("key/" + k->id));
      ASSIGN_OR_RETURN(auto raw, req.storage->Get("config/keys"));
      if (raw && Contains(*raw, k->id)) RETURN_IF_ERROR(req.storage->Delete("config/keys"));
      InvalidateCaches();
      return Response::Empty();
    }
    default:
      return UnsupportedOperation();
  }
}

absl::StatusOr<Response> PkiBackend::IssuerPath(Request& req, std::string_view rest) {
  std::string_view ref = rest.substr(0, rest.find('/'));
  std::string_view sub =
      rest.find('/') == std::string_view::npos ? "" : rest.substr(rest.find('/') + 1);
  const bool write = req.op == Operation::kUpdate || req.op == Operation::kCreate;
  if (StartsWith(sub, "issue/") && write) return Issue(req, sub.substr(6), ref, false);
  if (StartsWith(sub, "sign/") && write) return Issue(req, sub.substr(5), ref, true);
  if ((sub == "sign-verbatim" || StartsWith(sub, "sign-verbatim/")) && write)
    return SignVerbatim(req, sub == "sign-verbatim" ? "" : sub.substr(14), ref);
  if (sub == "sign-intermediate" && write) return SignIntermediate(req, ref);
  if (sub == "sign-self-issued" && write) return SignSelfIssued(req, ref);
  if ((sub == "crl" || sub == "crl/der" || sub == "crl/pem") && req.op == Operation::kRead) {
    if (sub == "crl") {
      // Vault's JSON form: {"crl": PEM}.
      ASSIGN_OR_RETURN(auto r, CrlPath(req, ref, "pem"));
      return Response::Data(json::object{{"crl", r.raw_body}});
    }
    return CrlPath(req, ref, sub == "crl/pem" ? "pem" : "der");
  }

  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, ref));
  if (sub == "pem" || sub == "der" || sub == "json") {
    if (req.op != Operation::kRead) return UnsupportedOperation();
    if (sub == "pem") return RawBody(is->cert_pem + "\n", "application/pem-certificate-chain");
    if (sub == "der") return RawBody(crypto::CertDer(is->cert.get()), "application/pkix-cert");
    return Response::Data(json::object{{"certificate", is->cert_pem},
                                       {"ca_chain", ToArray(is->chain_pem)},
                                       {"issuer_id", is->id},
                                       {"issuer_name", is->name}});
  }
  if (!sub.empty()) return absl::NotFoundError(Cat("unsupported path \"issuer/", rest, "\""));

  switch (req.op) {
    case Operation::kRead:
      return Response::Data(is->ToJson());
    case Operation::kCreate:
    case Operation::kUpdate:
    case Operation::kPatch: {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get("issuer/" + is->id));
      if (!raw) return absl::NotFoundError("");
      boost::system::error_code ec;
      auto v = json::parse(*raw, ec);
      if (ec || !v.is_object()) return absl::DataLossError("stored issuer is not JSON");
      json::object& o = v.as_object();
      if (req.data.contains("issuer_name")) {
        std::string name = GetString(req.data, "issuer_name");
        ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
        for (const auto& other : all)
          if (other->id != is->id && !name.empty() && other->name == name)
            return absl::InvalidArgumentError(Cat("issuer name \"", name, "\" is already in use"));
        if (name == "default")
          return absl::InvalidArgumentError("\"default\" is reserved and cannot be an issuer name");
        o["issuer_name"] = name;
      }
      if (req.data.contains("leaf_not_after_behavior")) {
        std::string b = GetString(req.data, "leaf_not_after_behavior");
        if (b != "err" && b != "truncate" && b != "permit")
          return absl::InvalidArgumentError(
              Cat("leaf_not_after_behavior \"", b, "\" is not one of err, truncate, permit"));
        o["leaf_not_after_behavior"] = b;
      }
      if (req.data.contains("usage")) {
        ASSIGN_OR_RETURN(auto u, StringList(req.data, "usage"));
        std::string joined;
        for (const auto& s : *u) {
          if (s != "read-only" && s != "issuing-certificates" && s != "crl-signing" &&
              s != "ocsp-signing")
            return absl::InvalidArgumentError(
                Cat("usage \"", s,
                    "\" is not one of read-only, issuing-certificates, crl-signing, "
                    "ocsp-signing"));
          joined += (joined.empty() ? "" : ",") + s;
        }
        o["usage"] = joined;
      }
      RETURN_IF_ERROR(req.storage->Put("issuer/" + is->id, json::serialize(o)));
      InvalidateCaches();
      ASSIGN_OR_RETURN(auto updated, ResolveIssuer(req.storage, is->id));
      return Response::Data(updated->ToJson());
    }
    case Operation::kDelete: {
      std::vector<storage::WriteOp> ops{{storage::WriteOp::Kind::kDelete, "issuer/" + is->id, ""},
                                        {storage::WriteOp::Kind::kDelete, "crls/" + is->id, ""}};
      auto def = ResolveIssuer(req.storage, "default");
      Response r;
      if (def.ok() && (*def)->id == is->id) {
        ops.push_back({storage::WriteOp::Kind::kDelete, "config/issuers", ""});
        r.warnings.push_back(
            "the deleted issuer was the default: set a new default with config/issuers");
      }
      RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
      InvalidateCaches();
      return r;
    }
    default:
      return UnsupportedOperation();
  }
}

absl::StatusOr<Response> PkiBackend::ConfigIssuers(Request& req) {
  if (req.op == Operation::kRead) {
    auto def = ResolveIssuer(req.storage, "default");
    return Response::Data(json::object{{"default", def.ok() ? (*def)->id : ""},
                                       {"default_follows_latest_issuer", false}});
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return UnsupportedOperation();
  std::string ref = GetString(req.data, "default");
  if (ref.empty() || ref == "default")
    return absl::InvalidArgumentError("the default field must name an issuer (id or name)");
  if (ref == "next") {
    // root/replace without a reference: the most recently added root. Coffer has no order of
    // creation it can trust here, so it asks for an explicit reference.
    return absl::InvalidArgumentError(
        "give the new default issuer explicitly: root/replace default=<issuer id or name>");
  }
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, ref));
  RETURN_IF_ERROR(req.storage->Put(
      "config/issuers", json::serialize(json::object{{"default", is->id},
                                                     {"default_follows_latest_issuer", false}})));
  InvalidateCaches();
  return Response::Data(
      json::object{{"default", is->id}, {"default_follows_latest_issuer", false}});
}

absl::StatusOr<Response> PkiBackend::ConfigKeys(Request& req) {
  if (req.op == Operation::kRead) {
    auto def = ResolveKey(req.storage, "default");
    return Response::Data(json::object{{"default", def.ok() ? (*def)->id : ""}});
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return UnsupportedOperation();
  ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, GetString(req.data, "default")));
  RETURN_IF_ERROR(
      req.storage->Put("config/keys", json::serialize(json::object{{"default", k->id}})));
  InvalidateCaches();
  return Response::Data(json::object{{"default", k->id}});
}

absl::StatusOr<Response> PkiBackend::ConfigUrls(Request& req) {
  if (req.op == Operation::kRead) {
    ASSIGN_OR_RETURN(UrlConfig u, LoadUrls(req.storage));
    return Response::Data(
        json::object{{"issuing_certificates", ToArray(u.issuing_certificates)},
                     {"crl_distribution_points", ToArray(u.crl_distribution_points)},
                     {"ocsp_servers", ToArray(u.ocsp_servers)},
                     {"enable_templating", false}});
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return UnsupportedOperation();
  ASSIGN_OR_RETURN(UrlConfig u, LoadUrls(req.storage));
  auto set = [&](std::string_view key, std::vector<std::string>* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, StringList(req.data, key));
    if (!v) return absl::OkStatus();
    for (const auto& url : *v) {
      size_t colon = url.find("://");
      if (colon == std::string::npos || colon == 0 || url.size() <= colon + 3)
        return absl::InvalidArgumentError(
            Cat(key, ": \"", url, "\" is not a URL (expected scheme://host/path)"));
      for (unsigned char c : url)
        if (c <= 0x20 || c >= 0x7f)
          return absl::InvalidArgumentError(
              Cat(key, ": \"", url, "\" has spaces or non-ASCII characters"));
    }
    *dst = *v;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(set("issuing_certificates", &u.issuing_certificates));
  RETURN_IF_ERROR(set("crl_distribution_points", &u.crl_distribution_points));
  RETURN_IF_ERROR(set("ocsp_servers", &u.ocsp_servers));
  if (auto et = JsonBool(req.data, "enable_templating"); et.ok() && et->value_or(false))
    return absl::InvalidArgumentError("enable_templating is not supported by Coffer");
  RETURN_IF_ERROR(req.storage->Put(
      "config/urls",
      json::serialize(json::object{{"issuing_certificates", ToArray(u.issuing_certificates)},
                                   {"crl_distribution_points", ToArray(u.crl_distribution_points)},
                                   {"ocsp_servers", ToArray(u.ocsp_servers)}})));
  InvalidateCaches();
  return Response::Empty();
}

absl::StatusOr<Response> PkiBackend::CaCert(Request& req, std::string_view form) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
  if (form == "der") return RawBody(crypto::CertDer(is->cert.get()), "application/pkix-cert");
  return RawBody(is->cert_pem + "\n", "application/pem-certificate-chain");
}

absl::StatusOr<Response> PkiBackend::CaChain(Request& req) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
  std::string body;
  for (const auto& c : is->chain_pem) body += c + "\n";
  return RawBody(std::move(body), "application/pem-certificate-chain");
}

}  // namespace coffer::engines::pki
