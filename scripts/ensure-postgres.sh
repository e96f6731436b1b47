#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers and prints its base URL (without a
# database name) on stdout, e.g. postgres://postgres@127.0.0.1:5432
#
# In order: a server already answering on 127.0.0.1:5432; the system cluster,
# started; a private cluster under .herald/pg on port 5433, created with the
# PostgreSQL binaries, which are installed from Debian's packages when running
# as root and missing. Everything it says goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "ensure-postgres: $*" >&2; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do answers "$1" && return 0; sleep 0.5; done; return 1; }

if answers 5432; then
  echo "postgres://postgres@127.0.0.1:5432"; exit 0
fi

if command -v pg_lsclusters >/dev/null 2>&1 && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
  read -r version cluster _ < <(pg_lsclusters -h | head -n1)
  say "starting the system cluster $version/$cluster"
  if [ "$(id -u)" = 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 || true
  else
    pg_ctlcluster "$version" "$cluster" start >&2 || true
  fi
  if wait_for 5432; then echo "postgres://postgres@127.0.0.1:5432"; exit 0; fi
  say "the system cluster did not come up on 5432; using a private cluster"
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "no PostgreSQL found. Install it (apt-get install postgresql) or set HERALD_DATABASE_URL."; exit 1
  fi
  say "installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  # The package creates and starts a system cluster where it can.
  if answers 5432; then echo "postgres://postgres@127.0.0.1:5432"; exit 0; fi
fi

data="$PWD/.herald/pg"
port=5433
if ! answers $port; then
  mkdir -p "$data"
  runas=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$data" postgres
    chown -R postgres "$data"; chmod 700 "$data"
    runas=(runuser -u postgres --)
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private cluster in $data"
    "${runas[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  say "starting the private cluster on port $port"
  "${runas[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >&2
fi
wait_for $port || { say "PostgreSQL did not start; see $data/server.log"; exit 1; }
echo "postgres://postgres@127.0.0.1:$port"
