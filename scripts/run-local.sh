#!/usr/bin/env bash
# Runs the whole system on one machine with its embedded defaults: builds
# the release binaries, starts `loghound serve` on 127.0.0.1:7700 (data in
# .loghound-local/), starts a local agent tailing /var/log/**/*.log, a
# bundled sample log and (where journalctl finds one) the systemd journal, and prints the web UI's URL and a token (read + admin). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${LOGHOUND_LISTEN:-127.0.0.1:7700}"
home="${LOGHOUND_LOCAL_DIR:-.loghound-local}"
data="$home/data"
mkdir -p "$data" "$home/agent-state" "$home/sample"

cargo build --release -p loghound-server -p loghound-agent
bin=target/release

[ -s "$home/ingest.token" ] || "$bin/loghound" token create --data-dir "$data" --scope ingest >"$home/ingest.token"
[ -s "$home/read.token" ] || "$bin/loghound" token create --data-dir "$data" --scope read --scope admin >"$home/read.token"
ingest_token=$(cat "$home/ingest.token")
read_token=$(cat "$home/read.token")

sample="$(cd "$home/sample" && pwd)/app.log"
if [ ! -s "$sample" ]; then
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for i in $(seq 1 20); do
    echo "$now INFO api request_id=$i GET /api/v1/items/$i 200 ${i}ms"
  done >"$sample"
  echo "$now ERROR api request_id=21 GET /api/v1/checkout 503 upstream timeout after 3000ms" >>"$sample"
fi

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$bin/loghound" serve --listen "$listen" --data-dir "$data" >"$home/server.out" 2>"$home/server.log" &
pids+=($!)
for _ in $(seq 1 600); do
  grep -q '^listening on ' "$home/server.out" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$home/server.log"; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$home/server.out" | head -n1)

# This host's journal too, where there is one to read.
journal_args=()
journal_note="no systemd journal here"
if command -v journalctl >/dev/null 2>&1 && [[ -n $(journalctl -q -n 1 2>/dev/null) ]]; then
  journal_args=(--journald)
  journal_note="and this host's systemd journal"
fi

"$bin/loghound-agent" --server "$url" --token "$ingest_token" --state-dir "$home/agent-state" \
  --path '/var/log/**/*.log' --path "$sample" "${journal_args[@]}" 2>"$home/agent.log" &
pids+=($!)

cat <<EOF2

Loghound is running.
  web UI:      $url/  (sign in with the token below)
  API:         $url
  token:       $read_token  (scopes read + admin: search, saved searches, alerts)
  search:      $bin/loghound search 'timeout' --server $url --token $read_token
  raw API:     curl -H 'Authorization: Bearer $read_token' '$url/api/v1/search?q=error&limit=5'
  logs:        $home/server.log, $home/agent.log
  shipping:    /var/log/**/*.log, $sample, $journal_note
Append to $sample (or any /var/log/**/*.log) and search again. Ctrl-C stops.
EOF2
wait
