#!/usr/bin/env bash
# Installs what test/integration/grpc-go-client.test.ts needs: Go and Debian's grpc-go and
# protobuf-go sources (GOPATH layout under /usr/share/gocode). Debian/Ubuntu only; idempotent:
# does nothing when the packages are already installed. Without them that test is skipped.
# The test builds test/grpc-go/kmsprobe offline in GOPATH mode; no Go module proxy is used.
set -euo pipefail

packages=(golang-go golang-google-grpc-dev golang-google-protobuf-dev)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  if ! command -v apt-get >/dev/null; then
    echo "install-grpc-go: apt-get not found (Debian/Ubuntu only); missing: ${missing[*]}" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y "${missing[@]}"; then
    # Usually stale or absent package lists (fresh containers): refresh once and retry.
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y "${missing[@]}"
  fi
fi

go version
grep -h 'const Version' /usr/share/gocode/src/google.golang.org/grpc/version.go
test -d /usr/share/gocode/src/google.golang.org/protobuf/encoding/protowire
echo "install-grpc-go: ready (npm test -- test/integration/grpc-go-client)"
