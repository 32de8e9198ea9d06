#!/usr/bin/env bash
# Run a command against a throwaway Redis on 127.0.0.1.
#   scripts/with-redis.sh pytest -q tests/redis
# Uses REDIS_URL as is when set. Otherwise starts a private redis-server (a free loopback
# port, no persistence: no RDB snapshots, no append-only file, in a temporary folder),
# exports REDIS_URL, runs the command and stops the server. Exits 99 when no Redis server is
# installed (apt-get install redis-server).
set -euo pipefail

if [[ -n "${REDIS_URL:-}" ]]; then
  exec "$@"
fi

# REDIS_SERVER names the binary (default: redis-server on PATH, else Debian's).
server="${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
if [[ ! -x "$server" ]]; then
  echo "with-redis: no Redis server installed (apt-get install redis-server)" >&2
  exit 99
fi

workdir="$(mktemp -d /tmp/redistest.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
pid=""

cleanup() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

"$server" --bind 127.0.0.1 --port "$port" --dir "$workdir" --save '' --appendonly no \
  --protected-mode yes --daemonize no --logfile "$workdir/redis.log" &
pid=$!
for _ in $(seq 1 100); do
  if python3 - "$port" <<'EOF' 2>/dev/null; then break; fi
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
EOF
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-redis: redis-server exited:" >&2
    cat "$workdir/redis.log" >&2 || true
    exit 1
  fi
  sleep 0.05
done
echo "with-redis: Redis $("$server" --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$port"
export REDIS_URL="redis://127.0.0.1:$port/0"
"$@"
