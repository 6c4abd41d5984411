#!/usr/bin/env bash
# Vault's tutorial "Build your own certificate authority (CA)" (developer.hashicorp.com,
# vault/tutorials/secrets-management/pki-engine), its commands as written, with a `vault` on
# PATH that is Coffer's binary. Run by tests/e2e/test_pki_walkthrough.py in an empty folder with
# VAULT_ADDR, VAULT_TOKEN and VAULT_CACERT set; it checks the results with openssl.
set -euo pipefail
set -x

# Step 1: generate the root CA
vault secrets enable pki
vault secrets tune -max-lease-ttl=87600h pki
vault write -field=certificate pki/root/generate/internal \
     common_name="example.com" \
     issuer_name="root-2023" \
     ttl=87600h > root_2023_ca.crt
vault list pki/issuers/
vault read pki/issuer/$(vault list -format=json pki/issuers/ | jq -r '.[]') | tail -n 6
vault write pki/roles/2023-servers allow_any_name=true
vault write pki/config/urls \
     issuing_certificates="$VAULT_ADDR/v1/pki/ca" \
     crl_distribution_points="$VAULT_ADDR/v1/pki/crl"

# Step 2: generate the intermediate CA
vault secrets enable -path=pki_int pki
vault secrets tune -max-lease-ttl=43800h pki_int
vault write -format=json pki_int/intermediate/generate/internal \
     common_name="example.com Intermediate Authority" \
     issuer_name="example-dot-com-intermediate" \
     | jq -r '.data.csr' > pki_intermediate.csr
vault write -format=json pki/root/sign-intermediate \
     issuer_ref="root-2023" \
     csr=@pki_intermediate.csr \
     format=pem_bundle ttl="43800h" \
     | jq -r '.data.certificate' > intermediate.cert.pem
vault write pki_int/intermediate/set-signed certificate=@intermediate.cert.pem

# Step 3: create a role
vault write pki_int/roles/example-dot-com \
     issuer_ref="$(vault read -field=default pki_int/config/issuers)" \
     allowed_domains="example.com" \
     allow_subdomains=true \
     max_ttl="720h"

# Step 4: request a certificate
vault write -format=json pki_int/issue/example-dot-com common_name="test.example.com" ttl="24h" \
     > leaf.json
jq -r '.data.certificate' leaf.json > leaf.pem
jq -r '.data.issuing_ca' leaf.json > leaf_issuing_ca.pem
serial=$(jq -r '.data.serial_number' leaf.json)

# Step 5: revoke it
vault write pki_int/revoke serial_number="$serial"

# Step 6: remove expired certificates
vault write pki_int/tidy tidy_cert_store=true tidy_revoked_certs=true

# Step 7: rotate the root CA
vault write pki/root/rotate/internal \
    common_name="example.com" \
    issuer_name="root-2024"
vault list -format=json pki/issuers/ | jq -r '.[]' > issuers.txt
vault write pki/roles/2024-servers allow_any_name=true

# Step 8: a cross-signed intermediate
vault write -format=json pki/intermediate/cross-sign \
      common_name="example.com" \
      key_ref="$(vault read pki/issuer/root-2024 \
      | grep -i key_id | awk '{print $2}')" \
      | jq -r '.data.csr' \
      | tee cross-signed-intermediate.csr
vault write -format=json pki/issuer/root-2023/sign-intermediate \
      common_name="example.com" \
      csr="@cross-signed-intermediate.csr" \
      | jq -r '.data.certificate' | tee cross-signed-intermediate.crt
vault write pki/intermediate/set-signed \
      certificate="@cross-signed-intermediate.crt"
vault read pki/issuer/root-2024 > root_2024_issuer.txt

# Step 9: make the new root the default
vault write pki/root/replace default=root-2024

# Step 10: sunset the old root
vault write pki/issuer/root-2023 \
      issuer_name="root-2023" \
      usage=read-only,crl-signing | tail -n 5
# The roles follow the default issuer, root-2024 since step 9; root-2023 itself issues nothing now.
vault write -format=json pki/issue/2023-servers common_name="test.example.com" ttl="5m" > default_leaf.json
if vault write pki/issuer/root-2023/issue/2023-servers common_name="test.example.com" ttl="5m" \
     2> old_root_error.txt; then
  echo "the sunset root still issues" >&2
  exit 1
fi
vault write -format=json pki/issue/2024-servers common_name="test.example.com" ttl="5m" > new_leaf.json
