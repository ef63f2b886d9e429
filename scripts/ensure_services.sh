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
exit 0
