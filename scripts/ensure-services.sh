#!/usr/bin/env bash
# Starts the local PostgreSQL and MariaDB the integration tests use, if they are installed but not running.
# In CI a missing service is a failure, never a skip: this script exits non-zero when one cannot be reached.
set -uo pipefail
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
my_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1 || mysqladmin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  for v in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true; done
fi
if ! my_up && [ -x /usr/sbin/mariadbd ]; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd 2>/dev/null || true
fi
ok=0
for _ in $(seq 1 30); do
  if pg_up && my_up; then ok=1; break; fi
  sleep 1
done
if [ $ok = 0 ]; then
  pg_up || echo "PostgreSQL is not reachable on 127.0.0.1:5432 (user postgres, trust auth)" >&2
  my_up || echo "MariaDB is not reachable on 127.0.0.1:3306 (root, no password)" >&2
  exit 1
fi
