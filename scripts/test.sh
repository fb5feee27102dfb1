#!/usr/bin/env bash
# Installs what the tests need, then runs every test on both servers: Oracle MySQL (what
# Sluice's users run) and MariaDB.
#   - Debian packages: mariadb-server, mariadb-client (the harness starts private
#     instances; no system service is used), sysbench, curl, debootstrap.
#   - Oracle MySQL from Debian's sid suite, in a minimal debootstrap root made once
#     ($SLUICE_SID_ROOT, default /var/cache/sluice-test/sid, about a minute and 650 MB)
#     with a template datadir made with --initialize-insecure; the harness copies it per
#     test and runs mysqld there with chroot (so the MySQL tests need root).
#   - A Python venv in .venv with pymysql, mysql-connector-python, boto3 and moto[server].
#   - cargo-deny (scripts/deny.sh: installed once, then the advisory, license, ban and
#     source checks of deny.toml).
# Then cargo fmt --check, clippy -D warnings, the dependency checks, and
# `cargo test --all-targets` twice: SLUICE_TEST_DB=mysql, then SLUICE_TEST_DB=mariadb.
# Extra arguments go to cargo test.
# Works as root (or with sudo for the installs), on a fresh Debian machine with Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

missing=()
{ [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null; } || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v sysbench >/dev/null || missing+=(sysbench)
command -v curl >/dev/null || missing+=(curl)
{ [ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null; } || missing+=(debootstrap)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

bash scripts/mysql-root.sh

PY_PACKAGES=(pymysql cryptography mysql-connector-python boto3 "moto[server]")
if ! .venv/bin/python -c "import pymysql, mysql.connector, boto3, moto" 2>/dev/null; then
  echo "== creating .venv with ${PY_PACKAGES[*]}"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q "${PY_PACKAGES[@]}"
fi
export SLUICE_TEST_PYTHON="$PWD/.venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings
echo "== dependency checks (cargo deny)"
bash scripts/deny.sh

status=0
for db in mysql mariadb; do
  echo "== cargo test on $db"
  SLUICE_TEST_DB=$db cargo test --all-targets "$@" || status=$?
  [ "$status" -eq 0 ] || { echo "== tests FAILED on $db"; break; }
done
exit "$status"
