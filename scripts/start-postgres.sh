#!/usr/bin/env bash
# Starts the local PostgreSQL cluster on loopback (if it is not running) and gives the role named by $1
# LOGIN and CREATEDB with a new random password, which it prints: the password is made here and never stored.
#   password=$(scripts/start-postgres.sh identityservice_test)
set -euo pipefail
role=${1:?usage: start-postgres.sh ROLE}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
as_root pg_ctlcluster "$pg_version" main start -- -o "-c listen_addresses=127.0.0.1" >/dev/null 2>&1 \
  || as_root pg_ctlcluster "$pg_version" main status >/dev/null
password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
as_root su postgres -c "psql -v ON_ERROR_STOP=1 -q" >/dev/null <<SQL
DO \$\$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
    ALTER ROLE $role WITH LOGIN CREATEDB PASSWORD '$password';
  ELSE
    CREATE ROLE $role WITH LOGIN CREATEDB PASSWORD '$password';
  END IF;
END \$\$;
SQL
echo "$password"
