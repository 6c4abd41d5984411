# The policy the KMS plugin's token needs, for a Transit engine at transit/ and the key
# kube-secrets:  coffer policy write kms-plugin deploy/kms/kms-plugin-policy.hcl
path "transit/encrypt/kube-secrets" {
  capabilities = ["update"]
}
path "transit/decrypt/kube-secrets" {
  capabilities = ["update"]
}
# Status reads the key's latest version (its key_id changes when the key rotates).
path "transit/keys/kube-secrets" {
  capabilities = ["read"]
}
