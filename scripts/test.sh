#!/usr/bin/env bash
# Installs what the tests need, then runs them: `cargo test --all-targets`.
#   - Debian packages: mariadb-server, mariadb-client (the harness starts private
#     instances; no system service is used), sysbench (benchmarks).
#   - A Python venv in .venv with pymysql, mysql-connector-python, boto3 and moto[server].
# Works as root or with sudo, on a fresh Debian machine with the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

missing=()
{ [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null; } || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v sysbench >/dev/null || missing+=(sysbench)
command -v curl >/dev/null || missing+=(curl)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY_PACKAGES=(pymysql cryptography mysql-connector-python boto3 "moto[server]")
if ! .venv/bin/python -c "import pymysql, mysql.connector, boto3, moto" 2>/dev/null; then
  echo "== creating .venv with ${PY_PACKAGES[*]}"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q "${PY_PACKAGES[@]}"
fi
export SLUICE_TEST_PYTHON="$PWD/.venv/bin/python"
export PATH="$PATH:/usr/sbin"

echo "== cargo test"
cargo test --all-targets "$@"
