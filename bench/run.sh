#!/usr/bin/env bash
# The side-by-side benchmark of issue 5. Builds Release; starts the service (SQLite by default,
# --postgres for PostgreSQL), the peer (node oidc-provider) and the floor (bare minimal API) on
# loopback ports; measures the password hasher alone; drives every scenario from bench/LoadGen.
# Writes bench/results/results-<db>.{json,md} and prints the table.
#   bench/run.sh [--quick] [--postgres] [--tenants N] [--duration SECONDS] [--workers N] [--only 2,4] [--steps N]
#                [--prewarm SECONDS]   (the mixed warm-up before anything is measured: 60 s, 15 s with --quick;
#                                .NET's tiered JIT was seen recompiling for about 50 s under this load)
#                [--publish]    (run the service from a ReadyToRun `dotnet publish` output, not the build output)
#                [--peer-store redis]  (the peer keeps its grants in a Redis server of its own, started here on loopback,
#                                with an append-only file synced every second, as deployed, and that server's CPU is
#                                counted with the peer's; by default it keeps them in memory, in its own process)
#                [--data DIR]   (SQLite: keep the service's database in DIR and reuse it in the next run, so that
#                                10,000 tenants are created once, not on every run; creation figures then mean nothing)
# --only runs just the numbered scenarios (to profile one path: PROFILE=1 also records a dotnet-trace
# thread-time sample of the service while they run, into bench/results/trace.nettrace; PROFILE=perf a
# perf CPU profile into bench/results/perf.data; PROFILE=alloc a gc-verbose trace for bench/AllocProfile into
# bench/results/alloc.nettrace; PROFILE=memory the service's mappings and a heap dump's type statistics, summarized
# into bench/results/memory.txt by bench/memory.py). --steps N runs N sequential sign-ins on each target after the
# warm-up and prints the server CPU of each of a sign-in's requests, instead of the scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# dotnet-trace (PROFILE=1, PROFILE=alloc), dotnet-gcdump and dotnet-dump (PROFILE=memory) are global tools:
# `dotnet tool install -g dotnet-trace` (and so on).
export PATH="$PATH:$HOME/.dotnet/tools"

peer_store=memory r2r=0 keep_data="" steps=0 only="" quick=0 postgres=0 tenants=10000 duration=10 warmup=2 workers=16 signin_workers=4 prewarm=60
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; tenants=50; duration=2; warmup=1; workers=8; prewarm=15 ;;
    --postgres) postgres=1 ;;
    --tenants) tenants=$2; shift ;;
    --duration) duration=$2; shift ;;
    --workers) workers=$2; shift ;;
    --only) only=$2; shift ;;
    --steps) steps=$2; shift ;;
    --prewarm) prewarm=$2; shift ;;
    --data) keep_data=$2; shift ;;
    --publish) r2r=1 ;;
    --peer-store) peer_store=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

case "$peer_store" in
  memory) ;;
  redis) command -v redis-server > /dev/null || { echo "--peer-store redis needs redis-server (apt-get install redis-server)" >&2; exit 2; } ;;
  *) echo "unknown --peer-store $peer_store (memory or redis)" >&2; exit 2 ;;
esac

results=$root/bench/results
mkdir -p "$results"
label=sqlite; [ $postgres -eq 1 ] && label=postgresql
[ "$peer_store" = memory ] || label=$label-peer-$peer_store
log=$results/server-$label.log

ours_dir=$root/src/IdentityService ours_dll=bin/Release/net10.0/IdentityService.dll
if [ $r2r -eq 1 ]; then
  echo "== publish (Release, ReadyToRun)"
  ours_dir=$root/bench/results/ours-publish ours_dll=IdentityService.dll
  rm -rf "$ours_dir"
  dotnet publish src/IdentityService/IdentityService.csproj -c Release -r linux-x64 --self-contained false \
    -p:PublishReadyToRun=true -o "$ours_dir" -nologo -v q -clp:ErrorsOnly
else
  echo "== build (Release)"
  dotnet build src/IdentityService/IdentityService.csproj -c Release -nologo -v q -clp:ErrorsOnly
fi
for p in LoadGen Floor Hasher; do dotnet build bench/$p/$p.csproj -c Release -nologo -v q -clp:ErrorsOnly; done
if [ ! -d bench/peer/node_modules/oidc-provider ] || [ ! -d bench/peer/node_modules/ioredis ]; then (cd bench/peer && npm ci --no-audit --no-fund --silent); fi

echo "== password hasher alone"
if [ $quick -eq 1 ]; then
  dotnet bench/Hasher/bin/Release/net10.0/Hasher.dll --quick "$results/hasher.json"
else
  (cd "$results" && dotnet "$root/bench/Hasher/bin/Release/net10.0/Hasher.dll" "$results/hasher.json" > "$results/hasher-bdn.log" 2>&1) \
    || { tail -30 "$results/hasher-bdn.log"; exit 1; }
  tail -1 "$results/hasher-bdn.log"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ours_port=$(free_port); peer_port=$(free_port); floor_port=$(free_port); redis_port=$(free_port)
secret=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
pids=()
if [ -n "$keep_data" ]; then mkdir -p "$keep_data"; data=$(cd "$keep_data" && pwd); else data=$(mktemp -d "$results/data-XXXXXX"); fi
pg_db=""
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$keep_data" ] || rm -rf "$data"
  rm -rf "$data/peer-redis"
  if [ -n "$pg_db" ]; then as_root su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS $pg_db'" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

db_env=(Database__Provider=Sqlite "Database__DataDirectory=$data")
database_process=""
if [ $postgres -eq 1 ]; then
  # As test.sh does: the local server on loopback, a role whose password is made here and never stored.
  pg_password=$(scripts/start-postgres.sh identityservice_bench)
  pg_db=identityservice_bench_$$
  # Loopback: no TLS between the service and the database (Npgsql would negotiate it with Debian's default
  # self-signed certificate, and encrypt every query for nothing). The database server's CPU is measured too.
  db_env=(Database__Provider=PostgreSql "ConnectionStrings__Identity=Host=127.0.0.1;Port=5432;Username=identityservice_bench;Password=$pg_password;Database=$pg_db;SSL Mode=Disable${BENCH_PG_OPTIONS:+;$BENCH_PG_OPTIONS}")
  database_process=postgres
fi

echo "== starting the service ($label) on 127.0.0.1:$ours_port, the peer on :$peer_port, the floor on :$floor_port"
perf_map=(${BENCH_SERVER_ENV:-}); [ "${PROFILE:-0}" = perf ] && perf_map+=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
# Production, as deployed: behind a TLS-terminating proxy on loopback (the load generator sends the proxy's
# X-Forwarded-Proto: https, and the service trusts 127.0.0.1 for it), with its public https origin.
(cd "$ours_dir" && exec env "${perf_map[@]}" ASPNETCORE_ENVIRONMENT=Production "${db_env[@]}" \
  "Issuer__PublicOrigin=https://127.0.0.1:$ours_port" ForwardedHeaders__KnownProxies__0=127.0.0.1 \
  Bootstrap__AdminClientId=admin "Bootstrap__AdminClientSecret=$secret" Logging__LogLevel__Default=Warning \
  dotnet "$ours_dll" --urls "http://127.0.0.1:$ours_port" > "$log" 2>&1) &
pids+=($!); ours_pid=$!
iterations=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["iterations"])' "$results/hasher.json")
peer_env=() peer_database_pid=0
if [ "$peer_store" = redis ]; then
  # Loopback only, in the run's data directory, gone with it; appendfsync everysec: Redis's durable setting as
  # usually deployed (at most a second of writes lost on a crash), where the service's database syncs every commit.
  rm -rf "$data/peer-redis"; mkdir -p "$data/peer-redis"
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$data/peer-redis" --save "" --appendonly yes \
    --appendfsync everysec --daemonize no > "$results/peer-redis.log" 2>&1 &
  pids+=($!); peer_database_pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping > /dev/null 2>&1 && break; sleep 0.2; done
  redis-cli -p "$redis_port" ping > /dev/null 2>&1 || { echo "the peer's Redis did not start:" >&2; tail -5 "$results/peer-redis.log" >&2; exit 1; }
  peer_env=(PEER_REDIS="redis://127.0.0.1:$redis_port")
fi
(cd bench/peer && exec env "${peer_env[@]}" NODE_ENV=production PORT=$peer_port PBKDF2_ITERATIONS=$iterations node server.js > "$results/peer.log" 2>&1) &
pids+=($!); peer_pid=$!
(exec dotnet bench/Floor/bin/Release/net10.0/Floor.dll --urls "http://127.0.0.1:$floor_port" > "$results/floor.log" 2>&1) &
pids+=($!); floor_pid=$!

wait_for() {
  for _ in $(seq 1 120); do curl -fs -o /dev/null -H "X-Forwarded-Proto: https" "$1" && return 0; sleep 0.5; done
  echo "not ready: $1" >&2; tail -20 "$log" >&2; exit 1
}
wait_for "http://127.0.0.1:$ours_port/health/ready"
wait_for "http://127.0.0.1:$peer_port/.well-known/openid-configuration"
wait_for "http://127.0.0.1:$floor_port/health"

rm -f "$results/loadgen.log"
dotnet bench/LoadGen/bin/Release/net10.0/LoadGen.dll \
  --ours "http://127.0.0.1:$ours_port" --ours-pid "$ours_pid" --ours-forwarded-proto https \
  --peer "http://127.0.0.1:$peer_port" --peer-pid "$peer_pid" --peer-store "$peer_store" --peer-database-pid "$peer_database_pid" \
  --floor "http://127.0.0.1:$floor_port" --floor-pid "$floor_pid" \
  --admin-id admin --admin-secret "$secret" --tenants "$tenants" --duration "$duration" --warmup "$warmup" \
  --workers "$workers" --signin-workers "$signin_workers" --clk-tck "$(getconf CLK_TCK)" \
  --prewarm-seconds "$prewarm" --hasher "$results/hasher.json" --hasher-dll "$root/bench/Hasher/bin/Release/net10.0/Hasher.dll" --label "$label" --out "$results" --only "$only" --steps "$steps" \
  --database-process "$database_process" \
  > >(tee "$results/loadgen.log") &
loadgen=$!
# A profile starts once the first measured window on the service opens (PROFILE_DELAY seconds later).
profile_start() {
  until grep -q "measuring .* on ours" "$results/loadgen.log" 2>/dev/null; do sleep 0.2; done
  sleep "${PROFILE_DELAY:-1}"
}
if [ "${PROFILE:-0}" = perf ]; then
  profile_start
  perf record -F 499 -g -p "$ours_pid" -o "$results/perf.data" -- sleep "${PROFILE_SECONDS:-10}" > "$results/trace.log" 2>&1 || true
elif [ "${PROFILE:-0}" = alloc ]; then
  profile_start
  dotnet-trace collect -p "$ours_pid" --profile gc-verbose --duration "00:00:00:${PROFILE_SECONDS:-5}" \
    -o "$results/alloc.nettrace" > "$results/trace.log" 2>&1 || true
elif [ "${PROFILE:-0}" = memory ]; then
  # The service's mappings and a heap dump, 5 s into the window named by PROFILE_AT (a regex; by default the
  # client_credentials run over every tenant, the one with the most tenants in use), summarized by bench/memory.py.
  # The dumps stop the service for a few seconds and raise its peak RSS: that window's figures mean nothing then.
  rm -f "$results/memory.txt"
  seen=0
  while [ $seen -eq 0 ] && kill -0 "$loadgen" 2>/dev/null; do
    if grep -Eq "measuring ${PROFILE_AT:-5 client_credentials ES256, [0-9]+ tenants} on ours" "$results/loadgen.log" 2>/dev/null; then seen=1; else sleep 0.5; fi
  done
  if [ $seen -eq 0 ]; then echo "PROFILE=memory: no measured window matched; nothing recorded" >&2; else sleep 5; fi
  if [ $seen -eq 1 ] && kill -0 "$ours_pid" 2>/dev/null; then
    cat "/proc/$ours_pid/smaps" > "$results/memory-smaps.txt"
    rm -f "$results/memory.dump" "$results/memory.gcdump" "$results/memory-heap.txt" "$results/memory-strings.txt"
    # A gcdump first, for the full collection it makes: the heap dump just after it holds little that is dead (SOS's
    # `dumpheap -live` was seen to crash dotnet-dump on such a dump).
    { dotnet-gcdump collect -p "$ours_pid" -o "$results/memory.gcdump" \
      && dotnet-dump collect -p "$ours_pid" --type Heap -o "$results/memory.dump" \
      && dotnet-dump analyze "$results/memory.dump" -c "dumpheap -stat" -c "eeheap -loader" -c exit > "$results/memory-heap.txt" \
      && dotnet-dump analyze "$results/memory.dump" -c "dumpheap -strings" -c exit > "$results/memory-strings.txt"; } > "$results/trace.log" 2>&1 || true
    # PROFILE_KEEP=1 keeps the heap dump, to look further with `dotnet-dump analyze bench/results/memory.dump`.
    rm -f "$results/memory.gcdump"; [ "${PROFILE_KEEP:-0}" = 1 ] || rm -f "$results/memory.dump"
    python3 bench/memory.py "$results/memory-smaps.txt" "$results/memory-heap.txt" "$results/memory-strings.txt" > "$results/memory.txt" || true
  fi
elif [ "${PROFILE:-0}" = 1 ]; then
  profile_start
  dotnet-trace collect -p "$ours_pid" --profile dotnet-sampled-thread-time --format Speedscope --duration "00:00:00:${PROFILE_SECONDS:-10}" \
    -o "$results/trace.nettrace" > "$results/trace.log" 2>&1 || true
fi
wait $loadgen
if [ "${PROFILE:-0}" = memory ] && [ -f "$results/memory.txt" ]; then cat "$results/memory.txt"; fi
