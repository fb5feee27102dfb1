#!/usr/bin/env bash
# Makes, once, the Oracle MySQL the tests and benchmarks run: a minimal Debian sid root
# (debootstrap --variant=minbase, with mysql-server-core and mysql-client-core) at
# $SLUICE_SID_ROOT (default /var/cache/sluice-test/sid), and in it a template datadir
# (srv/template/data, made with --initialize-insecure) that each test copies. Reused on
# later runs. The mirror is the one this machine's own apt sources name. Needs root.
set -euo pipefail
ROOT=${SLUICE_SID_ROOT:-/var/cache/sluice-test/sid}
export PATH="$PATH:/usr/sbin:/sbin"

if [ ! -x "$ROOT/usr/sbin/mysqld" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "making the MySQL root at $ROOT needs root" >&2; exit 1; }
  mirror=""
  # deb822 sources (Debian 12), then one-line ones; the first that is not a security mirror.
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources) cand=$(sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n') ;;
      *) cand=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' "$f") ;;
    esac
    for uri in $cand; do
      case "$uri" in *security*) continue ;; esac
      mirror=$uri
      break 2
    done
  done
  if [ -z "$mirror" ]; then
    echo "cannot make the MySQL root: no Debian mirror found in /etc/apt/sources*" >&2
    exit 1
  fi
  echo "== making the MySQL root at $ROOT from $mirror (sid, about a minute)"
  rm -rf "$ROOT.tmp"
  mkdir -p "$(dirname "$ROOT")"
  if ! debootstrap --variant=minbase --include=mysql-server-core,mysql-client-core \
      sid "$ROOT.tmp" "$mirror" > "$ROOT.log" 2>&1; then
    echo "debootstrap of Debian sid from $mirror failed; the last lines of $ROOT.log:" >&2
    tail -20 "$ROOT.log" >&2
    exit 1
  fi
  rm -rf "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
fi

if [ ! -f "$ROOT/srv/template/data/mysql.ibd" ]; then
  echo "== initializing the MySQL template datadir"
  rm -rf "$ROOT/srv/template"
  mkdir -p "$ROOT/srv/template"
  # A small redo log keeps each test's copy small (about 95 MB instead of 190).
  if ! chroot "$ROOT" /usr/sbin/mysqld --no-defaults --initialize-insecure --user=root \
      --datadir=/srv/template/data --innodb-redo-log-capacity=8M \
      > "$ROOT/srv/template.log" 2>&1; then
    echo "mysqld --initialize-insecure failed:" >&2
    tail -20 "$ROOT/srv/template.log" >&2
    rm -rf "$ROOT/srv/template"
    exit 1
  fi
fi

# Datadirs of test servers that were killed before they could clean up.
mkdir -p "$ROOT/srv/run"
find "$ROOT/srv/run" -mindepth 1 -maxdepth 1 -mmin +180 -exec rm -rf {} + 2>/dev/null || true
echo "== MySQL: $(chroot "$ROOT" /usr/sbin/mysqld --version)"
