#!/usr/bin/env bash
# Demo: starts a throwaway database on 127.0.0.1:13306 (Oracle MySQL 9 from the sid root
# that scripts/mysql-root.sh makes once, or MariaDB with SLUICE_DEMO_DB=mariadb), starts
# Sluice in front of it on the embedded default config (config/local.toml: listen
# 127.0.0.1:3307, user app), runs a client through it, shows the metrics, then cleans
# everything up.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${SLUICE_DEMO_DB:-mysql}
case "$DB" in mysql|mariadb) ;; *) echo "SLUICE_DEMO_DB=$DB: mysql or mariadb" >&2; exit 1 ;; esac
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

missing=()
{ command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v curl >/dev/null || missing+=(curl)
if [ "$DB" = mysql ]; then
  { [ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null; } || missing+=(debootstrap)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH="$PATH:/usr/sbin"

ROOT=${SLUICE_SID_ROOT:-/var/cache/sluice-test/sid}
if [ "$DB" = mysql ]; then
  $SUDO env SLUICE_SID_ROOT="$ROOT" bash scripts/mysql-root.sh
  # Inside the sid root, where mysqld runs under chroot; IN is the same path as mysqld
  # and the root's own CLI see it.
  WORK="$($SUDO mktemp -d "$ROOT/srv/run/demo.XXXXXX")"
  IN="/${WORK#"$ROOT"/}"
else
  WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
  IN="$WORK"
fi
cleanup() {
  [ -n "${SLUICE_PID:-}" ] && kill "$SLUICE_PID" 2>/dev/null || true
  [ -f "$WORK/db.pid" ] && $SUDO kill "$(cat "$WORK/db.pid")" 2>/dev/null || true
  sleep 1
  $SUDO rm -rf "$WORK"
}
trap cleanup EXIT
# The server's own CLI as root over its socket, and the CLI clients use through Sluice.
db_root() {
  if [ "$DB" = mysql ]; then
    $SUDO chroot "$ROOT" mysql --socket="$IN/db.sock" -uroot --default-character-set=utf8mb4 "$@"
  else
    mariadb --socket="$WORK/db.sock" -uroot --default-character-set=utf8mb4 "$@"
  fi
}
client() {
  if [ "$DB" = mysql ]; then
    # MySQL 9's own CLI (no mysql_native_password); its password warning is noise here.
    $SUDO chroot "$ROOT" mysql "$@" 2> >(grep -v "Using a password" >&2)
  else
    mariadb "$@"
  fi
}

echo "== building sluice"
cargo build --release --quiet

for port in 13306 3307 9104; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use on 127.0.0.1; the demo needs 13306 ($DB), 3307 and 9104 (Sluice)" >&2
    exit 1
  fi
done

echo "== starting a throwaway $DB on 127.0.0.1:13306 (max_connections=65)"
SERVER_OPTS=(--no-defaults --datadir="$IN/data" --port=13306
  --bind-address=127.0.0.1 --socket="$IN/db.sock" --pid-file="$IN/db.pid"
  --max-connections=65 --skip-name-resolve --log-error="$IN/db.err")
if [ "$DB" = mysql ]; then
  $SUDO cp -a --sparse=always "$ROOT/srv/template/data" "$WORK/data"
  # chroot runs as root (directly or through sudo), so mysqld is told to stay root.
  $SUDO chroot "$ROOT" /usr/sbin/mysqld "${SERVER_OPTS[@]}" --user=root --mysqlx=OFF \
    --secure-file-priv= &
else
  USER_OPT=(); [ "$(id -u)" -eq 0 ] && USER_OPT=(--user=root)
  mariadb-install-db --no-defaults --datadir="$WORK/data" "${USER_OPT[@]}" \
    --auth-root-authentication-method=normal --skip-test-db >"$WORK/install.log" 2>&1
  mariadbd "${SERVER_OPTS[@]}" "${USER_OPT[@]}" &
fi
for _ in $(seq 1 300); do
  db_root -e "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
if ! db_root -e "SELECT 1" >/dev/null 2>&1; then
  echo "$DB did not start:" >&2
  $SUDO cat "$WORK/db.err" >&2
  exit 1
fi
db_root <<'SQL'
CREATE USER 'app'@'%' IDENTIFIED BY 'app-password';
GRANT ALL ON *.* TO 'app'@'%';
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.menus (id INT PRIMARY KEY, name VARCHAR(64), price INT,
  image_prefix VARCHAR(32), takeout TINYINT) CHARACTER SET utf8mb4;
INSERT INTO shop.menus VALUES (1,'目玉焼き定食',500,'menu_med',0), (2,'唐揚げ定食',750,'menu_kar',0),
  (3,'カツ丼',650,'menu_kat',1), (4,'ラーメン',600,'menu_ram',1), (5,'チャーハン',400,'menu_cha',1),
  (6,'生姜焼き定食',800,'menu_sho',1), (7,'うどん',300,'menu_udo',1), (8,'牛丼',380,'menu_gyu',1),
  (9,'カレーライス',450,'menu_cur',1);
SQL

echo "== starting sluice on the embedded default config (127.0.0.1:3307)"
./target/release/sluice &
SLUICE_PID=$!
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:9104/readyz >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== a client through sluice: SELECT * FROM menus"
client -h127.0.0.1 -P3307 -uapp -papp-password --default-character-set=utf8mb4 shop \
  -e "SELECT * FROM menus; SELECT VERSION(), CONNECTION_ID() AS backend_thread;"

echo "== 20 clients in parallel, each a new connection"
(
  for _ in $(seq 1 20); do
    client -h127.0.0.1 -P3307 -uapp -papp-password shop -N -e "SELECT COUNT(*) AS menus FROM menus" &
  done
  wait
) | sort | uniq -c

echo "== metrics (excerpt)"
curl -s http://127.0.0.1:9104/metrics | grep -E '^sluice_(client_connections_received|database_connections|database_connections_max_allowed|queries)_total|^sluice_database_connections(_max_allowed)? ' || true
