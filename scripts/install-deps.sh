#!/usr/bin/env bash
# Installs every Debian 12 package Coffer's build, tests and benchmarks need. Idempotent: when
# everything is present it changes nothing and does not touch the network.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config clang libclang-rt-14-dev clang-tidy
  # libraries (DESIGN.md)
  libssl-dev libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libabsl-dev
  libsqlite3-dev libcli11-dev libspdlog-dev
  # the KMS plugin (src/kms): gRPC and protobuf, the .proto compiled at build time
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 python3-hvac openssl curl wrk sqlite3 procps
  gnutls-bin golang-go etcd-server etcd-client jq python3-grpcio python3-grpc-tools
  python3-cryptography valgrind
  # auto seals: SoftHSM2 for the PKCS#11 seal tests, p11-kit for the standard pkcs11.h header
  softhsm2 libp11-kit-dev
  # the Debian package (scripts/package_test.sh): dpkg-shlibdeps computes its Depends; the
  # maintainer scripts use adduser and deb-systemd-helper
  dpkg-dev adduser init-system-helpers
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: run as root or install sudo" >&2; exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
