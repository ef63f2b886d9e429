#!/usr/bin/env bash
# Start the database servers the storage tests use, where they are installed but not running.
# Best effort: tests that need a server skip with a reason when it is still unreachable.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! up 3306 && [ -x /usr/sbin/mariadbd ]; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
for _ in $(seq 1 30); do
  { up 5432 || ! command -v pg_ctlcluster >/dev/null 2>&1; } && { up 3306 || [ ! -x /usr/sbin/mariadbd ]; } && break
  sleep 1
done
# The storage tests use a database named `test` (PostgreSQL: user postgres or root, trust auth;
# MariaDB: root, empty password).  Create it where the server is up but the database is missing.
if up 5432 && command -v psql >/dev/null 2>&1; then
  for u in postgres root; do
    if psql -h 127.0.0.1 -U "$u" -d postgres -Atc "SELECT 1" >/dev/null 2>&1; then
      psql -h 127.0.0.1 -U "$u" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null \
        | grep -q 1 || psql -h 127.0.0.1 -U "$u" -d postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
      break
    fi
  done
fi
if up 3306 && command -v mysql >/dev/null 2>&1; then
  mysql -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true
fi
exit 0
