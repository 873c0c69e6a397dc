#!/usr/bin/env bash
# Installs code-server 4.100.3 (the last line that runs on Node 20) and Debian's Chromium
# for the end-to-end suite, offline except for the npm registry and Debian apt.
# Usage: test/e2e/install-code-server.sh [DIR]   (default: .e2e/code-server)
# Idempotent: does nothing when DIR already holds a working code-server.
# apt waits up to 10 minutes for the dpkg lock (other jobs on the machine may hold it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/.e2e/code-server}
version=4.100.3
export DEBIAN_FRONTEND=noninteractive
bin="$dir/node_modules/.bin/code-server"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$version"; then
  echo "code-server $version already installed in $dir"
else
  need=()
  for p in libkrb5-dev ripgrep; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
  fi
  # @vscode/ripgrep looks for its release archive in a temp-dir cache before GitHub.
  cache="$(node -p 'require("os").tmpdir()')/vscode-ripgrep-cache-1.15.11"
  mkdir -p "$cache"
  asset="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  if [ ! -s "$asset" ]; then
    tmp=$(mktemp -d); cp "$(command -v rg)" "$tmp/rg"; tar -C "$tmp" -czf "$asset" rg; rm -rf "$tmp"
  fi
  mkdir -p "$dir"
  (cd "$dir"
   [ -f package.json ] || npm init -y >/dev/null
   npm install --ignore-scripts --no-audit --no-fund "code-server@$version" >/dev/null
   (cd node_modules/code-server &&
     npm_config_yes=true npm_config_unsafe_perm=true \
     npm_config_user_agent="npm/$(npm -v) node/$(node -v) linux x64" sh ./postinstall.sh >/dev/null)
   npm rebuild argon2 >/dev/null)
  echo "code-server $version installed in $dir"
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo missing)"
