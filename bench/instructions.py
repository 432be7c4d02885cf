#!/usr/bin/env python3
"""Instructions per request (`just bench --instructions`; see bench/README.md).

Python standard library only. The release server runs under
`valgrind --tool=callgrind` with one HTTP worker; for each scenario it is
started twice, once for N1 and once for N2 requests of that one kind, sent
one after the other over one keep-alive connection, and stopped with
SIGTERM (callgrind writes its totals at exit). The short run stays up, idle,
as long as the long one did, so that the background tasks (timers, the
ended-sessions poll) run as long in both. Everything but the requests
(start-up, migrations, the first database connection, background work,
shutdown) is then the same in both runs, so

    instructions per request = (I(N2) - I(N1)) / (N2 - N1)

counts the user-space instructions of one request in every thread of the
server. `--profile` adds where they go: the same difference taken per
function (callgrind_annotate's self cost), the costliest first. Unlike timings, that figure hardly moves from run to run, so it can
gate regressions in CI: `--check` fails when a scenario grows by more than
`--tolerance` percent over the committed baseline (bench/instructions-baseline.json).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the load bench's server, seeding and psql helpers)

BENCH_DIR = bench.BENCH_DIR
ROOT = bench.ROOT
BASELINE = BENCH_DIR / "instructions-baseline.json"
# One database per run: two runs on one PostgreSQL (several worktrees of a
# machine) must not drop each other's.
INSTR_DB = f"projects_instructions_{os.getpid()}"
USERS = 10
PROJECTS = 10_000

SCENARIOS = {
    "health": "GET /health/live",
    "get": "GET /api/v1/projects/{id} (authenticated, the owner's token)",
    "list": "GET /api/v1/projects?limit=20 (authenticated, 20 of the user's 1,000)",
    "create": "POST /api/v1/projects {name, description}",
    "patch": "PATCH /api/v1/projects/{id} {description}, If-Match: *",
}
# Where callgrind stops counting (see `measure`).
UNCOUNTED = "once_cell::imp::OnceCell*::initialize::{{closure}}"
# What production runs, over bench.py's environment (RUST_LOG=warn, metrics
# off): issue 16's goals hold "without weakening ... metrics, ... logs at
# info", so the count includes the access log line of every request and the
# request metrics. `--env RUST_LOG=warn --env METRICS_ADDR=off` counts
# without them.
PRODUCTION_ENV = {"RUST_LOG": "info", "METRICS_ADDR": "127.0.0.1:0"}
# How the counted server's glibc copies and clears memory. Its memcpy and
# memset use `rep movsb` / `rep stosb` for blocks of a few KiB and more (the
# thresholds depend on the CPU), and callgrind counts every byte such an
# instruction moves as one instruction executed, where the CPU runs the whole
# repetition as one instruction: clearing actix-http's two 3 KiB header
# tables for each request counted 6,100 "instructions" (a 3 KiB memset
# counts 3,073 with `rep stosb` and 170 as the vector loop). With these
# thresholds out of reach, glibc takes its vector loops, whose instructions
# are counted as the CPU runs them: the count then follows the work, not the
# bytes. Only the counted server gets this; production keeps glibc's choice.
# `--rep-strings` counts with glibc's own choice.
VECTOR_STRINGS_ENV = {"GLIBC_TUNABLES": "glibc.cpu.x86_rep_movsb_threshold=1073741824:"
                                        "glibc.cpu.x86_rep_stosb_threshold=1073741824"}
# Under --check, the share of bin/projects-api/symbol-order.txt that must
# name functions of the binary (all of it, when freshly generated).
LAYOUT_MIN_SHARE = 0.9
# Created projects would change what `list` returns: it runs before create.
ORDER = ["health", "get", "list", "patch", "create"]


def say(message: str) -> None:
    print(f"instructions: {message}", file=sys.stderr, flush=True)


class Driver:
    """Requests of one scenario, one after the other on one connection."""

    def __init__(self, scenario: str, token: str, project_ids: list[str]):
        self.scenario = scenario
        self.auth = {"Authorization": f"Bearer {token}"}
        self.ids = project_ids

    def request(self, k: int) -> tuple[str, str, bytes | None, dict[str, str], int]:
        pid = self.ids[k % len(self.ids)]
        if self.scenario == "health":
            return "GET", "/health/live", None, {}, 200
        if self.scenario == "get":
            return "GET", f"/api/v1/projects/{pid}", None, self.auth, 200
        if self.scenario == "list":
            return "GET", "/api/v1/projects?limit=20", None, self.auth, 200
        json_headers = {**self.auth, "Content-Type": "application/json"}
        if self.scenario == "patch":
            # Same length every time, so every response is the same size.
            body = {"description": f"Patched by the instruction count, round {k % 10}."}
            return ("PATCH", f"/api/v1/projects/{pid}", json.dumps(body).encode(),
                    {**json_headers, "If-Match": "*"}, 200)
        if self.scenario == "create":
            body = {"name": f"Counted project {k:06d}",
                    "description": "Created by the instruction count of bench/instructions.py."}
            return "POST", "/api/v1/projects", json.dumps(body).encode(), json_headers, 201
        raise ValueError(self.scenario)

    def run(self, port: int, count: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for k in range(count):
                method, path, body, headers, expected = self.request(k)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.status != expected:
                    raise RuntimeError(f"{self.scenario}: {method} {path} answered "
                                       f"{response.status}, expected {expected}: {data[:300]!r}")
                if response.getheader("Connection", "").lower() == "close":
                    raise RuntimeError(f"{self.scenario}: the server closed the connection")
        finally:
            conn.close()


def callgrind_total(path: Path) -> int:
    """The instruction total of a callgrind output file."""
    text = path.read_text(errors="replace")
    for key in ("totals", "summary"):
        found = re.search(rf"^{key}:\s+(\d+)", text, re.M)
        if found:
            return int(found.group(1))
    raise RuntimeError(f"no totals in {path}")


def function_costs(path: Path) -> dict[str, int]:
    """Self instructions per function of a callgrind output file."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                           "--auto=no", str(path)],
                          capture_output=True, text=True, check=True).stdout
    costs: dict[str, int] = {}
    table_started = False
    for line in text.splitlines():
        if not table_started:
            table_started = line.strip().startswith("Ir") and "function" in line
            continue
        # `1,234 ( 0.56%)  file:function [object]`: the file's lines of a
        # function (its own and what was inlined into it) add up.
        found = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?([^:]*):(\S.*)$", line)
        if found:
            name = re.sub(r"\s+\[[^\]]*\]$", "", found.group(3))
            costs[name] = costs.get(name, 0) + int(found.group(1).replace(",", ""))
    return costs


def profile(scenario: str, workdir: Path, n1: int, n2: int, top: int) -> str:
    """The `top` functions by self instructions per request (the N2 run's
    minus the N1 run's, over N2 - N1), as a Markdown table."""
    long = function_costs(workdir / f"callgrind.{scenario}.{n2}.out")
    short = function_costs(workdir / f"callgrind.{scenario}.{n1}.out")
    per = {name: (cost - short.get(name, 0)) / (n2 - n1) for name, cost in long.items()}
    rows = sorted(per.items(), key=lambda item: -item[1])[:top]
    crates: dict[str, float] = {}
    for name, cost in per.items():
        crates[crate_of(name)] = crates.get(crate_of(name), 0) + cost
    lines = [f"Self instructions per request by function, {scenario} "
             f"(top {top}; total {sum(per.values()):,.0f}):", "",
             "| instructions | function |", "| ---: | --- |"]
    for name, cost in rows:
        shown = name if len(name) <= 160 else name[:157] + "..."
        lines.append(f"| {cost:,.0f} | `{shown.replace('|', '/')}` |")
    lines += ["", f"By crate ({scenario}):", "", "| instructions | crate |", "| ---: | --- |"]
    for crate, cost in sorted(crates.items(), key=lambda item: -item[1]):
        if abs(cost) >= 100:
            lines.append(f"| {cost:,.0f} | {crate} |")
    return "\n".join(lines) + "\n"


def crate_of(function: str) -> str:
    """The crate a demangled function name starts with (`<actix_http::h1::Codec
    as ...>::encode` is actix_http's); C functions (malloc, memcpy) are libc's.
    Generic code is named after where it was defined (`core::ptr::drop_in_place<T>`
    is core's), not after T."""
    found = re.match(r"^[<&\s]*(?:mut\s+|dyn\s+)?([A-Za-z_][A-Za-z0-9_]*)::", function)
    return found.group(1) if found else "libc and other C"


def measure(args, db_url: str, secret: str, scenario: str, count: int, token: str,
            ids: list[str], workdir: Path, serve_for: float = 0) -> tuple[int, float]:
    """Instructions of a server that answered `count` requests, and how long
    it served. `serve_for`: keep it up at least that long after it was
    ready, so that its background tasks (timers, the ended-sessions poll)
    run as long as in the other run and cancel out of the difference."""
    out = workdir / f"callgrind.{scenario}.{count}.out"
    out.unlink(missing_ok=True)
    wrapper = ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}",
               # Not counted: the metrics recorder's clock calibration
               # (quanta's, at start, inside a once_cell initialisation),
               # which loops for a wall-clock time, so for 6-19 million
               # instructions under valgrind: up to 25,000 per request of
               # noise between the two runs. Only one-time initialisations
               # match; nothing of a request does.
               f"--toggle-collect={UNCOUNTED}", "--collect-atstart=yes"]
    server = bench.Server(args.binary.resolve(), db_url, workdir, None, workers=1,
                          wrapper=wrapper, jwt_secret=secret,
                          log_name=f"server.{scenario}.{count}.log", extra_env=args.env_vars)
    try:
        server.wait_ready(seconds=300)
        ready = time.monotonic()
        Driver(scenario, token, ids).run(server.port, count)
        time.sleep(max(0.0, serve_for - (time.monotonic() - ready)))
        served = time.monotonic() - ready
    finally:
        server.stop()
    if server.process.returncode != 0:
        raise RuntimeError(f"the server under valgrind exited with {server.process.returncode}; "
                           f"see {server.log_path}")
    return callgrind_total(out), served


FLOOR_EXAMPLE = "actix_floor"


def count_floor(args, workdir: Path) -> dict:
    """`GET /health/live` on actix-web alone (bin/projects-api/examples/
    actix_floor.rs: one worker, one route, the same body), counted like a
    scenario: what the framework costs before the server adds anything."""
    say(f"building the {FLOOR_EXAMPLE} example (release)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "projects-api", "--example",
                    FLOOR_EXAMPLE], cwd=ROOT, check=True)
    binary = args.binary.resolve().parent / "examples" / FLOOR_EXAMPLE
    totals = {}
    for count in (args.n2, args.n1):
        out = workdir / f"callgrind.floor.{count}.out"
        out.unlink(missing_ok=True)
        port = bench.free_port()
        env = {**os.environ, **args.env_vars, "BIND_ADDR": f"127.0.0.1:{port}"}
        process = subprocess.Popen(["valgrind", "--tool=callgrind", "--quiet",
                                    f"--callgrind-out-file={out}", str(binary)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    bench.http(f"http://127.0.0.1:{port}", "GET", "/health/live", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"{FLOOR_EXAMPLE} did not answer")
                    time.sleep(0.2)
            Driver("health", "", ["-"]).run(port, count)
        finally:
            process.send_signal(15)
            process.wait(timeout=60)
        totals[count] = callgrind_total(out)
    per = round((totals[args.n2] - totals[args.n1]) / (args.n2 - args.n1))
    say(f"floor (actix-web alone): {per:,} instructions per request")
    return {"per_request": per, "total_n1": totals[args.n1], "total_n2": totals[args.n2]}


def seed(args, db_url: str, secret: str, workdir: Path) -> tuple[str, list[str]]:
    """Migrates and seeds the database through a native server (argon2 under
    valgrind would take minutes); returns user 0's token and project ids."""
    server = bench.Server(args.binary.resolve(), db_url, workdir, None, workers=1,
                          jwt_secret=secret, log_name="server.seed.log",
                          extra_env=args.env_vars)
    try:
        server.wait_ready()
        status, _ = bench.http(server.base, "POST", "/api/v1/auth/register",
                               {"email": bench.DONOR_EMAIL, "password": bench.PASSWORD,
                                "name": "Bench hash donor"})
        if status != 201:
            raise RuntimeError(f"register answered {status}")
        hash_ = bench.psql(db_url, "SELECT password_hash FROM users "
                                   f"WHERE lower(email) = '{bench.DONOR_EMAIL}'")
        bench.psql(db_url, f"DELETE FROM users WHERE lower(email) = '{bench.DONOR_EMAIL}'")
        bench.psql(db_url, file=bench.SQL_DIR / "seed.sql",
                   variables={"nusers": str(USERS), "nprojects": str(PROJECTS), "hash": hash_})
        status, body = bench.http(server.base, "POST", "/api/v1/auth/login",
                                  {"email": "bench-0@example.com", "password": bench.PASSWORD})
        token = ((body or {}).get("tokens") or {}).get("access_token")
        if status != 200 or not token:
            raise RuntimeError(f"login answered {status}")
    finally:
        server.stop()
    # User 0's projects, in a fixed order: ids of one length, so every
    # request and answer of a scenario has the same size.
    rows = bench.psql(db_url, f"SELECT bench_project_id(n) FROM generate_series(1, {PROJECTS}) "
                              f"AS n WHERE n % {USERS} = 0 ORDER BY n LIMIT 200")
    return token, rows.split()


def table(results: dict[str, dict], baseline: dict | None, tolerance: float) -> str:
    lines = ["| scenario | request | instructions / request | baseline | change |",
             "| --- | --- | ---: | ---: | ---: |"]
    for scenario, r in results.items():
        base = (baseline or {}).get("scenarios", {}).get(scenario)
        if base:
            change = (r["per_request"] - base["per_request"]) / base["per_request"] * 100
            flag = " **over**" if change > tolerance else ""
            cells = f"{base['per_request']:,} | {change:+.1f} %{flag}"
        else:
            cells = "— | —"
        lines.append(f"| {scenario} | {SCENARIOS[scenario]} | {r['per_request']:,} | {cells} |")
    return "\n".join(lines) + "\n"


def count_scenario(args, db_url: str, secret: str, scenario: str, token: str,
                   ids: list[str], workdir: Path) -> dict:
    """(I(n2) - I(n1)) / (n2 - n1) of one scenario, with both totals."""
    totals = {}
    # The long run first: the short one then stays up as long, idle after
    # its requests.
    served = 0.0
    for count in (args.n2, args.n1):
        t0 = time.monotonic()
        totals[count], took = measure(args, db_url, secret, scenario, count, token, ids,
                                      workdir, serve_for=served)
        served = max(served, took)
        say(f"{scenario}: {count} requests, {totals[count]:,} instructions "
            f"({time.monotonic() - t0:.0f} s)")
    per = round((totals[args.n2] - totals[args.n1]) / (args.n2 - args.n1))
    say(f"{scenario}: {per:,} instructions per request")
    return {"per_request": per, "total_n1": totals[args.n1], "total_n2": totals[args.n2]}


def over_baseline(result: dict, scenario: str, baseline: dict | None, tolerance: float) -> bool:
    base = (baseline or {}).get("scenarios", {}).get(scenario)
    return bool(base) and result["per_request"] > base["per_request"] * (1 + tolerance / 100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, type=Path, help="the release projects-api")
    parser.add_argument("--database-url", required=True,
                        help="a PostgreSQL server; a throwaway database is made there")
    parser.add_argument("--n1", type=int, default=100, help="requests in the short run (100)")
    parser.add_argument("--n2", type=int, default=600, help="requests in the long run (600)")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ", ".join(ORDER))
    parser.add_argument("--check", action="store_true",
                        help="fail when a scenario is over the baseline by more than --tolerance")
    parser.add_argument("--tolerance", type=float, default=5.0, help="percent (5)")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run as the new baseline")
    parser.add_argument("--name", help="results file name (default instructions-DATE-COMMIT)")
    parser.add_argument("--commit", help="the commit the binary was built from (default: this "
                                         "checkout's HEAD, +dirty when its sources changed)")
    parser.add_argument("--floor", action="store_true",
                        help="also count GET /health/live on actix-web alone (the "
                             f"{FLOOR_EXAMPLE} example): the framework's floor")
    parser.add_argument("--rep-strings", action="store_true",
                        help="count with glibc's rep movsb/stosb (callgrind counts those per byte)")
    parser.add_argument("--profile", type=int, nargs="?", const=40, default=0, metavar="TOP",
                        help="print each scenario's TOP (40) costliest functions per request")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a server variable over the counted environment (RUST_LOG=info, "
                             "METRICS_ADDR=127.0.0.1:0, else bench.py's), e.g. RUST_LOG=warn")
    args = parser.parse_args()
    method_env = {} if args.rep_strings else VECTOR_STRINGS_ENV
    args.env_vars = {**PRODUCTION_ENV, **method_env,
                     **dict(item.split("=", 1) for item in args.env)}
    scenarios = args.scenarios.split(",") if args.scenarios else ORDER
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    scenarios = [s for s in ORDER if s in scenarios]
    if args.n2 <= args.n1:
        parser.error("--n2 must be larger than --n1")

    workdir = BENCH_DIR / ".work"
    workdir.mkdir(exist_ok=True)
    db_url = bench.with_database(args.database_url, INSTR_DB)
    bench.psql(args.database_url, f'DROP DATABASE IF EXISTS "{INSTR_DB}" WITH (FORCE)')
    bench.psql(args.database_url, f'CREATE DATABASE "{INSTR_DB}"')
    secret = secrets.token_hex(32)
    results: dict[str, dict] = {}
    floor: dict = {}
    started = time.monotonic()
    try:
        token, ids = seed(args, db_url, secret, workdir)
        baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
        for scenario in scenarios:
            results[scenario] = count_scenario(args, db_url, secret, scenario, token, ids, workdir)
            if args.profile:
                print(profile(scenario, workdir, args.n1, args.n2, args.profile), flush=True)
            # Under --check, a scenario over the line is counted once more
            # and the lower count judged: a regression shows in both runs,
            # while the one-off extra work of a run (actix reading a request
            # in two pieces when its bytes arrive late) rarely repeats.
            if args.check and over_baseline(results[scenario], scenario, baseline,
                                            args.tolerance):
                say(f"{scenario}: over the baseline; counting it once more")
                again = count_scenario(args, db_url, secret, scenario, token, ids, workdir)
                if again["per_request"] < results[scenario]["per_request"]:
                    results[scenario] = again
        if args.floor:
            floor = count_floor(args, workdir)
            if args.profile:
                print(profile("floor", workdir, args.n1, args.n2, args.profile), flush=True)
    finally:
        bench.psql(args.database_url, f'DROP DATABASE IF EXISTS "{INSTR_DB}" WITH (FORCE)')

    commit = args.commit or subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True).stdout.strip()
    dirty = not args.commit and subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "crates", "bin", "Cargo.lock",
         "Cargo.toml"], capture_output=True, text=True).stdout.strip()
    report = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit + ("+dirty" if dirty else ""),
        "method": {"n1": args.n1, "n2": args.n2, "http_workers": 1,
                   "tool": bench.tool_version(["valgrind", "--version"]),
                   "server_env": "bench.py's (limits off, JSON logs) with "
                                 + ", ".join(f"{k}={v}" for k, v in args.env_vars.items()),
                   "seed": f"{USERS} users, {PROJECTS} projects"},
        "machine": {"kernel": platform.release(), "arch": platform.machine()},
        "seconds": round(time.monotonic() - started),
        "scenarios": results,
    }
    text = table(results, baseline, args.tolerance)
    # The linker's symbol order (bench/layout.py): a toolchain or dependency
    # update renames the functions, and the order silently stops working.
    import layout  # noqa: E402  (it imports this module)
    link = layout.applied(args.binary)
    report["link"] = {"symbol_order_listed": link.listed, "in_binary": link.found,
                      "laid_out_first": link.order_applied(),
                      "packed_relocations": link.packed_relocations}
    text += (f"\nSymbol order (bin/projects-api/symbol-order.txt): {link.found:,} of the "
             f"{link.listed:,} functions listed are in this binary; laid out first: "
             f"{'yes' if link.order_applied() else 'no'}. Packed relocations: "
             f"{'yes' if link.packed_relocations else 'no'}.\n")
    if args.floor:
        report["floor"] = floor
        text += (f"\nThe floor: `GET /health/live` on actix-web alone (`{FLOOR_EXAMPLE}` "
                 f"example, no middleware, logs or metrics): {floor['per_request']:,} "
                 "instructions per request.\n")
    print(text)
    if args.check:
        name = None
    else:
        date = datetime.date.today().isoformat()
        name = args.name or f"instructions-{date}-{report['commit']}"
    if name:
        results_dir = BENCH_DIR / "results"
        (results_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (results_dir / f"{name}.md").write_text(
            f"Instructions per request at {report['commit']} ({report['generated_at']}): "
            f"callgrind, release build, one HTTP worker, (I({args.n2}) - I({args.n1})) / "
            f"{args.n2 - args.n1}, one keep-alive connection.\n\n{text}")
        say(f"wrote bench/results/{name}.json and .md")
    if args.update_baseline:
        args.baseline.write_text(json.dumps(report, indent=2) + "\n")
        say(f"wrote the baseline {args.baseline}")
    if args.check:
        if not baseline:
            say(f"FAILED: no baseline at {args.baseline}")
            return 1
        over = [f"{scenario} {r['per_request']:,} vs {baseline['scenarios'][scenario]['per_request']:,}"
                for scenario, r in results.items()
                if over_baseline(r, scenario, baseline, args.tolerance)]
        if link.found < link.listed * LAYOUT_MIN_SHARE:
            say(f"FAILED: only {link.found:,} of the {link.listed:,} functions in "
                "bin/projects-api/symbol-order.txt are in this binary (a toolchain or dependency "
                "update renamed them, or this is not `cargo build --release -p projects-api`): "
                "regenerate it with `just bench --layout`, rebuild, commit")
            return 1
        if link.listed and not link.order_applied():
            say("FAILED: the release link did not lay out bin/projects-api/symbol-order.txt "
                f"first ({link.in_front:,} of the first {link.found:,} functions are listed): "
                "is the linker rust-lld? (bin/projects-api/build.rs)")
            return 1
        if over:
            say(f"FAILED: more than {args.tolerance:g} % over the baseline "
                f"({baseline.get('commit')}): {'; '.join(over)}")
            return 1
        say(f"every scenario within {args.tolerance:g} % of the baseline ({baseline.get('commit')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
