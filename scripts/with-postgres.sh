#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster on 127.0.0.1.
#   scripts/with-postgres.sh pytest -q
# Uses TEST_DATABASE_URL as is when set. Otherwise starts a private cluster (initdb in a
# temporary folder, a free port, trust auth on loopback), exports TEST_DATABASE_URL, runs the
# command and removes the cluster. Exits 99 when no PostgreSQL server is installed.
set -euo pipefail

if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
  exec "$@"
fi

bindir=""
if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/postgres" ]]; then
  bindir="$(pg_config --bindir)"
fi
if [[ -z "$bindir" ]]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [[ -x "$candidate/postgres" ]] && bindir="$candidate"
  done
fi
if [[ -z "$bindir" ]]; then
  echo "with-postgres: no PostgreSQL server installed (apt-get install postgresql)" >&2
  exit 99
fi

workdir="$(mktemp -d /tmp/pgtest.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
as_pg=()
if [[ "$(id -u)" == "0" ]]; then
  # PostgreSQL refuses to run as root: run the cluster as the postgres system user.
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$workdir" postgres
  chown postgres "$workdir"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$workdir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$workdir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $workdir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
"$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres app_test
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/app_test"
"$@"
