#!/usr/bin/env bash
# Load harness: sysbench and the connection storm, direct vs through Sluice, in one run,
# on Oracle MySQL (what users run) and then MariaDB.
#   SLUICE_BENCH_DB="mysql mariadb"  the servers, in order (e.g. just "mysql")
#   SLUICE_BENCH_SECONDS=10          seconds per sysbench run
#   SLUICE_BENCH_THREADS=1,32,64     sysbench thread counts
#   SLUICE_BENCH_BINARY=path         measure another build of Sluice (a before figure)
#   SLUICE_BENCH_ONLY=storm          or sysbench, prepared, preamble, connect, latency, instructions, memory, flood, failover: one part
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
{ [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null; } || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v sysbench >/dev/null || missing+=(sysbench)
command -v callgrind_control >/dev/null || missing+=(valgrind)
{ [ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null; } || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
bash scripts/mysql-root.sh
for db in ${SLUICE_BENCH_DB:-mysql mariadb}; do
  echo "== benchmarks on $db"
  SLUICE_TEST_DB=$db cargo bench --bench load
done
