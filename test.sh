#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs and starts what the tests need
# (PostgreSQL, Redis, Chromium, npm for the IP-to-country database), then runs every test on SQLite and
# again on PostgreSQL, both times with the Redis tests on a loopback redis-server.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL on loopback, with a throwaway role whose password is made here and never stored.
pg_password=$(scripts/start-postgres.sh identityservice_test)
postgres="Host=127.0.0.1;Port=5432;Username=identityservice_test;Password=$pg_password;Database=postgres"

# Redis on loopback, in memory only; one already answering there is used as it is.
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
  || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null
for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
export TEST_REDIS=127.0.0.1:6379

# A free IP-to-country database (not in the repository): the country tests read it and take their
# test addresses from it.
echo "== IP-to-country database"
TEST_GEOIP_DB=$(scripts/fetch-geoip.sh)
export TEST_GEOIP_DB

echo "== build"
dotnet build IdentityService.sln -c Release -nologo -v q

log=$(mktemp)
status=0
echo "== tests on SQLite"
env -u TEST_POSTGRES dotnet test IdentityService.sln -c Release --no-build -nologo 2>&1 | tee -a "$log" || status=1
echo "== tests on PostgreSQL"
TEST_POSTGRES="$postgres" dotnet test IdentityService.sln -c Release --no-build -nologo 2>&1 | tee -a "$log" || status=1

passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$passed" -eq 0 ]; then status=1; fi
echo "tests: $passed passed, $failed failed"
exit $status
