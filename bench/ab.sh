#!/usr/bin/env bash
# A/B of two configurations (or two builds) of the service on a noisy machine: both run side by side on
# SQLite (AB_POSTGRES=1: on the local PostgreSQL server, a database each), and bench/LoadGen is pointed at
# one, then the other, for ROUNDS rounds, so that the machine's drift falls on both alike. Prints each
# round's rows and each one's peak RSS; compare A with B round by round.
#   EA="DOTNET_GCgen0size=0x1000000" EB="" ONLY=1,2 ROUNDS=3 bench/ab.sh
#   DLL_A=/path/to/other/IdentityService.dll ONLY=2 bench/ab.sh    (a build against the current one)
#   AB_POSTGRES=1 DLL_A=... ONLY=2 bench/ab.sh                       (the same on PostgreSQL)
# EA/EB: environment of A and B; DLL_A/DLL_B: the service's dll (default: the Release build output);
# ONLY: scenarios (LoadGen --only); PREWARM: the first round's mixed warm-up (60 s; later rounds 10 s);
# DURATION: seconds per scenario (10). Builds nothing: run bench/run.sh --quick (or dotnet build -c Release) first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secret=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
work=$(mktemp -d)
pids=()
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
pg_dbs=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for db in "${pg_dbs[@]}"; do as_root su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS $db'" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
if [ "${AB_POSTGRES:-0}" = 1 ]; then
  # As bench/run.sh --postgres does: loopback, no TLS, a role whose password is made here and never stored.
  pg_password=$(scripts/start-postgres.sh identityservice_bench)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name port environment dll
  mkdir -p "$work/$1"
  local database=(Database__Provider=Sqlite "Database__DataDirectory=$work/$1")
  if [ "${AB_POSTGRES:-0}" = 1 ]; then
    pg_dbs+=("identityservice_ab_${1,,}_$$")
    database=(Database__Provider=PostgreSql "ConnectionStrings__Identity=Host=127.0.0.1;Port=5432;Username=identityservice_bench;Password=$pg_password;Database=identityservice_ab_${1,,}_$$;SSL Mode=Disable")
  fi
  (cd src/IdentityService && exec env $3 ASPNETCORE_ENVIRONMENT=Production "${database[@]}" \
    "Issuer__PublicOrigin=https://127.0.0.1:$2" ForwardedHeaders__KnownProxies__0=127.0.0.1 \
    Bootstrap__AdminClientId=admin "Bootstrap__AdminClientSecret=$secret" Logging__LogLevel__Default=Warning \
    dotnet "$4" --urls "http://127.0.0.1:$2" > "$work/$1/server.log" 2>&1) &
  pids+=($!)
}

dll=$root/src/IdentityService/bin/Release/net10.0/IdentityService.dll
port_a=$(free_port); port_b=$(free_port)
start A "$port_a" "${EA:-}" "${DLL_A:-$dll}"; pid_a=${pids[0]}
start B "$port_b" "${EB:-}" "${DLL_B:-$dll}"; pid_b=${pids[1]}
for port in "$port_a" "$port_b"; do
  for _ in $(seq 1 120); do curl -fs -o /dev/null -H "X-Forwarded-Proto: https" "http://127.0.0.1:$port/health/ready" && break; sleep 0.5; done
done

for round in $(seq 1 "${ROUNDS:-3}"); do
  for side in A B; do
    if [ $side = A ]; then port=$port_a pid=$pid_a; else port=$port_b pid=$pid_b; fi
    prewarm=10; [ "$round" -eq 1 ] && prewarm=${PREWARM:-60}
    dotnet bench/LoadGen/bin/Release/net10.0/LoadGen.dll --ours "http://127.0.0.1:$port" --ours-pid "$pid" --ours-forwarded-proto https \
      --admin-id admin --admin-secret "$secret" --tenants 10 --duration "${DURATION:-10}" --warmup 2 --workers 16 \
      --clk-tck "$(getconf CLK_TCK)" --prewarm-seconds "$prewarm" --label "ab-$side" --out "$work/out-$side" --only "${ONLY:-1,2}" \
      | grep -E '^ +[0-9] .* ours ' | sed "s/^/round $round $side/" || true
  done
done
echo "A peak RSS: $(grep VmHWM /proc/$pid_a/status | awk '{print $2, $3}')   B peak RSS: $(grep VmHWM /proc/$pid_b/status | awk '{print $2, $3}')"
