#!/usr/bin/env bash
# Dependency checks with cargo-deny (config: deny.toml): advisories (vulnerable,
# unmaintained, unsound or yanked crates), licenses, banned crates, sources.
# Installs cargo-deny once (cargo install --locked, cached in ~/.cargo/bin).
# The RustSec advisory database is fetched from GitHub; where GitHub cannot be reached,
# a copy at $SLUICE_ADVISORY_DB (a git clone of github.com/rustsec/advisory-db, default
# /var/cache/sluice-test/advisory-db) is used instead, and its date is printed. With
# neither, the advisory check cannot run: that is said loudly, and the other checks
# still gate.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$DENY_VERSION"; then
  echo "== installing cargo-deny $DENY_VERSION (once; a few minutes)"
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
fi

URL=https://github.com/rustsec/advisory-db
LOCAL_DB="${SLUICE_ADVISORY_DB:-/var/cache/sluice-test/advisory-db}"
# cargo-deny's own clone of the default database (its default db-path; the directory
# is named after a hash of the URL).
DB_CLONE="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
CHECK=(check --hide-inclusion-graph)

if timeout 20 git ls-remote --exit-code "$URL" HEAD >/dev/null 2>&1; then
  cargo deny "${CHECK[@]}"
elif git -C "$LOCAL_DB" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  echo "== advisory database: $URL unreachable; using the copy at $LOCAL_DB" \
    "($(git -C "$LOCAL_DB" log -1 --format=%cs))"
  rm -rf "$DB_CLONE"
  mkdir -p "$(dirname "$DB_CLONE")"
  git clone --quiet "$LOCAL_DB" "$DB_CLONE"
  # --offline also keeps cargo-deny's `cargo metadata` off the network: every crate of
  # Cargo.lock (those of other platforms too, which no build here downloads) must be in
  # cargo's cache first. crates.io itself is reachable where GitHub is not.
  cargo fetch --quiet
  cargo deny --offline "${CHECK[@]}"
else
  echo "!! ADVISORY CHECK NOT RUN: $URL cannot be reached and no copy is at $LOCAL_DB."
  echo "!! Seed one with: git clone $URL $LOCAL_DB"
  cargo fetch --quiet
  cargo deny --offline "${CHECK[@]}" bans licenses sources
fi
