#!/usr/bin/env bash
# Installs what strata needs to build and test on Debian 12 (run as root or through sudo),
# and the npm packages of the integration tests (the real OpenTelemetry JS SDK).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl
  protobuf-c-compiler libprotobuf-c-dev   # OTLP messages
  libgrpc-dev                             # OTLP/gRPC server and client (gRPC C core)
  libmicrohttpd-dev                       # OTLP/HTTP receiver, /metrics, /healthz
  libcurl4-openssl-dev                    # HTTP clients (k8s, ECS, CloudWatch, AWS): loaded at run time
  openssl                                 # tests: a CA and certificates for the fake Kubernetes API
  libyaml-dev libjson-c-dev zlib1g-dev libssl-dev
  libcmocka-dev                           # unit tests
  clang bpftool libbpf-dev libelf-dev     # ebpf receiver: BPF programs, skeletons, loader
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# STRATA_SKIP_NPM=1 (the image's build stage): no Node.js, no npm packages for the tests.
SKIP_NPM="${STRATA_SKIP_NPM:-0}"
if [ "$SKIP_NPM" != 1 ] && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libmicrohttpd without HTTPS (GnuTLS), static, into .deps/: ~2.5 MiB less RSS. Optional: the
# build uses the system library when this fails.
if ! ./scripts/build-mhd.sh; then
  echo "install-deps: could not build libmicrohttpd without HTTPS (see above), ignoring: the build uses the system's" >&2
fi

if [ "$SKIP_NPM" != 1 ] && [ -f tests/integration/package-lock.json ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: done"
