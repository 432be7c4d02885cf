#!/usr/bin/env bash
# `just bench [--quick] [bench.py options]`, or `just bench --instructions
# [--check] [instructions.py options]`, or `just bench --layout` (the
# linker's symbol order, bench/layout.py): installs what the bench needs
# when it is missing (wrk from Debian, pgbench and psql from the PostgreSQL
# client), builds the release server, finds or starts a PostgreSQL through
# scripts/db, and hands over to bench/bench.py. See bench/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { echo "bench: $*" >&2; }

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "$1 is missing and there is no apt-get: install $2 yourself"
        exit 1
    fi
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    say "installing $2 with apt-get"
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$2" >&2
}

# `--instructions` anywhere: the callgrind count of bench/instructions.py;
# `--layout`: the functions the server runs, for the linker (bench/layout.py).
instructions=""
layout=""
args=()
for arg in "$@"; do
    case $arg in
        --instructions) instructions=1 ;;
        --layout) layout=1 ;;
        *) args+=("$arg") ;;
    esac
done

if [[ -n $instructions || -n $layout ]]; then
    command -v valgrind >/dev/null 2>&1 || apt_install valgrind valgrind
else
    command -v wrk >/dev/null 2>&1 || apt_install wrk wrk
fi
command -v pgbench >/dev/null 2>&1 || apt_install pgbench postgresql
command -v psql >/dev/null 2>&1 || apt_install psql postgresql-client
command -v python3 >/dev/null 2>&1 || apt_install python3 python3

# Where cargo puts the binary (CARGO_TARGET_DIR or the workspace's target/).
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    say "building the release server (fat LTO: a few minutes from cold)"
    cargo build --release -p projects-api
fi
binary="$target_dir/release/projects-api"
[[ -x $binary ]] || { say "no release binary at $binary"; exit 1; }

# BENCH_DATABASE_URL wins; else scripts/db finds or starts a server.
database_url="${BENCH_DATABASE_URL:-$(scripts/db up)}"
if [[ -n $layout ]]; then
    exec python3 bench/layout.py --binary "$binary" --database-url "$database_url" \
        ${args[@]+"${args[@]}"}
fi
if [[ -n $instructions ]]; then
    exec python3 bench/instructions.py --binary "$binary" --database-url "$database_url" \
        ${args[@]+"${args[@]}"}
fi
exec python3 bench/bench.py --binary "$binary" --database-url "$database_url" "$@"
