#!/usr/bin/env bash
# Makes sure the system tools the tests drive are installed: age, zstd, the PostgreSQL client tools (pg_dump,
# pg_restore, psql) and the MariaDB client tools. On Debian as root it installs what is missing; elsewhere it names
# the packages and stops, so a missing tool is a clear message rather than a confusing test failure.
set -euo pipefail
missing=()
command -v age >/dev/null 2>&1 || missing+=(age)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v pg_dump >/dev/null 2>&1 && command -v pg_restore >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
{ command -v mariadb-dump >/dev/null 2>&1 || command -v mysqldump >/dev/null 2>&1; } || missing+=(mariadb-client)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing missing system tools: ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing system tools for the tests: ${missing[*]}" >&2
echo "hint: install them with your package manager, e.g. sudo apt-get install ${missing[*]}" >&2
exit 1
