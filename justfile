# Developer tasks for projects-api; `just --list` shows them.
# PostgreSQL and Redis come from scripts/db and scripts/redis: your
# DATABASE_URL / REDIS_URL if they answer, else docker compose, else
# throwaway local servers under .dev/.

set shell := ["bash", "-euo", "pipefail", "-c"]
# Recipe arguments reach the scripts as "$@", so they keep their quoting.
set positional-arguments := true

# Bash that exports the KEY=value lines of .env (else .env.example) that the
# environment does not already set, as dotenvy does: # comments, optional
# `export` and quotes. Kept free of bash-4-isms for macOS's bash 3.2.
load_env := '''
env_file=.env
[ -f "$env_file" ] || env_file=.env.example
echo "env: reading $env_file (variables already set win)" >&2
while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    case "$line" in ''|'#'*) continue ;; esac
    line="${line#export }"
    key="${line%%=*}"
    value="${line#*=}"
    if ! [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ "$key" = "$line" ]; then
        echo "env: skipping a malformed line in $env_file: $line" >&2
        continue
    fi
    case "$value" in
        \"*\") value="${value:1:${#value}-2}" ;;
        \'*\') value="${value:1:${#value}-2}" ;;
        *) value="${value%%[[:space:]]#*}" ;;
    esac
    [ -n "${!key+set}" ] || export "$key=$value"
done <"$env_file"
'''

# List the recipes
default:
    @just --list

# Run the API on 127.0.0.1:8080 against the development database, after migrating it
dev:
    #!/usr/bin/env bash
    set -euo pipefail
    # A fresh clone has no .env: start it from the example, with a random
    # JWT_SECRET (the server refuses published or weak ones).
    [ -f .env ] || cp .env.example .env
    if ! grep -Eq '^[[:space:]]*(export[[:space:]]+)?JWT_SECRET=[^[:space:]]' .env; then
        echo "JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >>.env
        echo "dev: wrote a random JWT_SECRET into .env" >&2
    fi
    # The env file first, so a DATABASE_URL in .env is tried by scripts/db;
    # the URL scripts/db settles on is the one used.
    {{ load_env }}
    DATABASE_URL="$(scripts/db up)"
    export DATABASE_URL
    # Mail: your SMTP_URL if set; else Mailpit when Docker answers; else
    # .eml files in MAIL_DIR.
    if [ -z "${SMTP_URL:-}" ]; then
        if command -v docker >/dev/null && docker info >/dev/null 2>&1 \
            && docker compose up -d --wait mailpit >&2; then
            export SMTP_URL=smtp://127.0.0.1:51025
            echo "dev: mail goes to Mailpit; read it at http://127.0.0.1:58025" >&2
        else
            echo "dev: no Docker for Mailpit: mail is written as .eml files into $(pwd)/${MAIL_DIR:-mail-outbox}/" >&2
        fi
    fi
    cargo run -p projects-api -- migrate
    exec cargo run -p projects-api -- serve

# Run every crate's tests (nextest if installed) and the doc tests; Redis and PgBouncer tests run when both are available
test *args:
    #!/usr/bin/env bash
    set -euo pipefail
    DATABASE_URL="$(scripts/db up)"
    export DATABASE_URL
    # Tests that need Redis are #[ignore]d; run the ignored ones when we have a Redis.
    with_redis=""
    if REDIS_URL="$(scripts/redis up)"; then
        export REDIS_URL
        with_redis=1
    else
        unset REDIS_URL
        echo "test: no Redis available: the tests that need it stay ignored" >&2
    fi
    # So do the tests that need a PgBouncer (they start their own from the binary).
    if PGBOUNCER_BIN="$(scripts/pgbouncer bin)"; then
        export PGBOUNCER_BIN
    else
        with_redis=""
        echo "test: no pgbouncer available: the ignored tests (Redis, PgBouncer) stay ignored" >&2
    fi
    # The mail tests deliver to a real SMTP server (Debian's aiosmtpd).
    if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd
        else
            echo "test: the mail tests need aiosmtpd: apt-get install python3-aiosmtpd" >&2
        fi
    fi
    leftovers() {
        command -v psql >/dev/null || return 0
        psql "$DATABASE_URL" -XAtqc "select datname from pg_database where datname like 'pa\_test\_%' order by 1"
    }
    drop_hint="psql \"\$DATABASE_URL\" -XAtc \"select format('drop database %I;', datname) from pg_database where datname like 'pa\\_test\\_%'\" | psql \"\$DATABASE_URL\""
    if [ -n "$(leftovers)" ]; then
        echo "test: WARNING: test databases from an earlier run exist; the final check will fail. Drop them with:" >&2
        echo "  $drop_hint" >&2
    fi

    if cargo nextest --version >/dev/null 2>&1; then
        # Flags before "$@": whatever follows a `--` in the arguments goes to the test binaries.
        cargo nextest run --workspace ${with_redis:+--run-ignored all} "$@"
        cargo test --workspace --doc
    else
        echo "test: cargo-nextest not installed; using cargo test (which runs the doc tests too)" >&2
        # libtest flags go after `--`; add one unless the arguments already have it.
        harness=()
        if [ -n "$with_redis" ]; then
            case " $* " in *" -- "*) harness=(--include-ignored) ;; *) harness=(-- --include-ignored) ;; esac
        fi
        cargo test --workspace "$@" ${harness[@]+"${harness[@]}"}
    fi

    # Every test database (pa_test_*) must be dropped by the testkit; templates may stay.
    if ! command -v psql >/dev/null; then
        echo "test: psql not found; skipped the check for leftover test databases" >&2
        exit 0
    fi
    left="$(leftovers)"
    if [ -n "$left" ]; then
        echo "test: FAILED: $(wc -l <<<"$left") test database(s) were left behind:" >&2
        sed 's/^/  /' <<<"$left" >&2
        echo "test: drop them with: $drop_hint" >&2
        exit 1
    fi
    echo "test: no test databases left behind" >&2

# Fuzz every parser of client bytes (proptest on stable Rust): FUZZ_CASES cases per target, default 50000
fuzz:
    #!/usr/bin/env bash
    set -euo pipefail
    # The targets are the `fuzz_*` property tests beside each parser (JSON
    # bodies, cursors, If-Match, X-Request-Id, e-mail addresses,
    # X-Forwarded-For and TRUSTED_PROXIES); `just test` runs them with
    # proptest's default 256 cases. A failure is saved under
    # proptest-regressions/ and replayed first on every later run: commit it.
    PROPTEST_CASES="${FUZZ_CASES:-50000}" cargo test -p projects-domain -p projects-http --lib fuzz_

# Check formatting and lints, as CI does
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format all the code
fmt:
    cargo fmt --all

# Start (or find) PostgreSQL and Redis for development; prints their URLs
db-up:
    scripts/db up
    scripts/redis up || test $? -eq 3

# Stop the local PostgreSQL and Redis (or docker compose services) that the scripts started
db-down:
    scripts/redis down
    scripts/db down

# Apply the database migrations to the development database
migrate:
    #!/usr/bin/env bash
    set -euo pipefail
    {{ load_env }}
    DATABASE_URL="$(scripts/db up)"
    export DATABASE_URL
    cargo run -p projects-api -- migrate

# Load benchmark against pgbench ceilings (release build; `--quick` for a smoke run; `--instructions [--check]`: instructions per request under callgrind; `--layout`: the linker's symbol order); see bench/README.md
bench *args:
    bench/run.sh "$@"

# The production topology without Docker (HAProxy -> 3 release instances -> PgBouncer -> its own PostgreSQL, Redis) and its checks: walkthrough, timeout, outage, rolling restart under load, shared limit, idempotency
fleet:
    scripts/fleet
# Browser test of /docs: headless Chromium (Debian's) against a server on a throwaway database; saves e2e/screenshots/docs.png
test-e2e:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x /usr/bin/chromium ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
        else
            echo "test-e2e: /usr/bin/chromium is missing: apt-get install chromium" >&2; exit 1
        fi
    fi
    (cd e2e && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi)
    scripts/with-server bash -c 'cd e2e && node --test docs.test.mjs'

# Run the README's curl walkthrough (register → … → logout) against a server on a throwaway database
walkthrough:
    scripts/with-server scripts/walkthrough

# Lint openapi.json with Spectral (tools/spectral, .spectral.yaml): no finding allowed
lint-openapi:
    scripts/lint-openapi

# Typed clients from openapi.json (openapi-typescript + openapi-fetch, openapi-python-client): tsc/mypy --strict on a flow, then run against a server on a throwaway database
typed-clients:
    scripts/with-server scripts/typed-clients

# Conformance: schemathesis (in .venv) against /openapi.json of a server on a throwaway database, authenticated, stateful phase included
conformance *args:
    #!/usr/bin/env bash
    set -euo pipefail
    version=4.32.5
    if [ "$(.venv/bin/st --version 2>/dev/null | awk '{print $NF}')" != "$version" ]; then
        python3 -m venv .venv
        .venv/bin/pip install -q "schemathesis==$version"
    fi
    scripts/with-server scripts/conformance "$@"
