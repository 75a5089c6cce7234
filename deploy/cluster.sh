#!/usr/bin/env bash
# Start a real cluster on loopback: nginx in front of 2 `manage.py serve`
# processes sharing Redis and PostgreSQL. Foreground; Ctrl-C stops everything.
#
#   REDIS_URL=redis://127.0.0.1:6379/0 \
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/recsite \
#   deploy/cluster.sh
#
# Environment (all optional except the first two):
#   REDIS_URL, DATABASE_URL   required: what every process shares
#   CLUSTER_PORT              nginx port (default 8080)
#   SERVE_PORTS               daphne ports, space-separated (default "8001 8002";
#                             give more ports for more processes)
#   PY                        Python of the project (default .venv/bin/python)
#   NGINX                     nginx binary (default: from PATH or /usr/sbin/nginx)
#   DJANGO_*                  as for `manage.py serve`; without DJANGO_SECRET_KEY
#                             the cluster runs with DJANGO_DEBUG=1 like `make demo`
#
# nginx runs deploy/nginx.conf itself: only the upstream server lines and the
# listen address are rewritten for loopback (see the markers in that file).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${REDIS_URL:?set REDIS_URL (e.g. redis://127.0.0.1:6379/0): the processes share it}"
: "${DATABASE_URL:?set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/recsite): the processes share it}"
PY=${PY:-.venv/bin/python}
CLUSTER_PORT=${CLUSTER_PORT:-8080}
SERVE_PORTS=${SERVE_PORTS:-"8001 8002"}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

if [ ! -x "$NGINX" ]; then
  echo "nginx not found: sudo apt-get install -y nginx (or set NGINX=/path/to/nginx)" >&2
  exit 1
fi
if [ ! -x "$PY" ]; then
  echo "$PY not found: run 'make venv' first (or set PY)" >&2
  exit 1
fi

export REDIS_URL DATABASE_URL
export DJANGO_BEHIND_PROXY=${DJANGO_BEHIND_PROXY:-1}
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-127.0.0.1,localhost}
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/recsite-cluster.XXXXXX")
# nginx workers may run as another user (root starts them as nobody).
chmod 755 "$RUN_DIR"
pids=()

stop_all() {
  trap - INT TERM EXIT
  echo
  echo "Stopping the cluster…"
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN_DIR"
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

wait_healthy() {  # URL PID
  "$PY" - "$1" "$2" <<'PYEOF'
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"{url}: the process exited")
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(f"{url} did not become healthy in 60 s")
PYEOF
}

echo "Migrating and collecting static files once…"
"$PY" manage.py migrate --verbosity 0
"$PY" manage.py collectstatic --noinput --verbosity 0

for port in $SERVE_PORTS; do
  "$PY" manage.py serve --host 127.0.0.1 --port "$port" --proxy-headers --no-collectstatic &
  pids+=("$!")
done
i=0
for port in $SERVE_PORTS; do
  wait_healthy "http://127.0.0.1:$port" "${pids[$i]}"
  i=$((i + 1))
done

servers=""
for port in $SERVE_PORTS; do
  servers+="    server 127.0.0.1:$port max_fails=1 fail_timeout=5s;\n"
done
awk -v servers="$servers" -v listen="    listen 127.0.0.1:$CLUSTER_PORT;" '
  /# BEGIN upstream servers/ { printf "%s", servers; skip = 1; next }
  /# END upstream servers/   { skip = 0; next }
  skip                       { next }
  /^[[:space:]]*listen \[::\]:80;/ { next }
  /^[[:space:]]*listen 80;/  { print listen; next }
  { print }
' deploy/nginx.conf >"$RUN_DIR/recsite.conf"

cat >"$RUN_DIR/nginx.conf" <<NGINXEOF
worker_processes 1;
pid $RUN_DIR/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $RUN_DIR/client_body;
    proxy_temp_path $RUN_DIR/proxy;
    fastcgi_temp_path $RUN_DIR/fastcgi;
    uwsgi_temp_path $RUN_DIR/uwsgi;
    scgi_temp_path $RUN_DIR/scgi;
    include $RUN_DIR/recsite.conf;
}
NGINXEOF

"$NGINX" -t -q -c "$RUN_DIR/nginx.conf" -p "$RUN_DIR" -e stderr
"$NGINX" -c "$RUN_DIR/nginx.conf" -p "$RUN_DIR" -e stderr -g 'daemon off;' &
pids+=("$!")
wait_healthy "http://127.0.0.1:$CLUSTER_PORT" "${pids[-1]}"

echo
echo "recsite cluster: http://127.0.0.1:$CLUSTER_PORT/  (nginx → daphne on ports $SERVE_PORTS)"
echo "  admin: http://127.0.0.1:$CLUSTER_PORT/admin/   health: http://127.0.0.1:$CLUSTER_PORT/healthz"
echo "  Ctrl-C stops nginx and every server process."

# Run until Ctrl-C or until any process dies (then stop the rest).
set +e
wait -n "${pids[@]}"
status=$?
echo "a cluster process stopped (status $status); stopping the others" >&2
exit "$status"
