path "secret/*" { capabilities = ["read", "list"] }
path "secret/teams/+/config" { capabilities = ["update", "sudo"] }
path "sys/seal" { policy = "write" }
path "kv/exact" { capabilities = ["deny"] }
