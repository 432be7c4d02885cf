#!/usr/bin/env python3
"""The projects-api load benchmark (`just bench`; see bench/README.md).

Python standard library only. It starts the release server against a fresh
database, seeds it through SQL, then for each scenario and concurrency runs
a warm-up and a fixed-duration wrk load while it samples the server's RSS and
CPU time from /proc, and runs the same SQL through `pgbench -M prepared` with
the same number of connections: the ceiling. It writes a table, JSON and an
SVG chart under bench/results/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SQL_DIR = BENCH_DIR / "sql"
LUA = BENCH_DIR / "wrk" / "scenario.lua"

# BENCH_DB_NAME: another name, so that runs from several checkouts against
# one PostgreSQL do not drop each other's database.
BENCH_DB = os.environ.get("BENCH_DB_NAME", "projects_bench")
# Strong enough for the zxcvbn check of the contract; public, bench-only.
PASSWORD = "Bench-only: amber falcon 7 trombone!"
DONOR_EMAIL = "bench-hash-donor@example.com"
# Stands in for the password hash when the API cannot register a user, so
# that seeding and the pgbench ceilings still run; no login can succeed.
PLACEHOLDER_HASH = "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2gtb25seQ$bm90LWEtcmVhbC1oYXNoLWJlbmNoLW9ubHk"

# scenario -> pgbench script (None: no database work to compare with).
SCENARIOS = {
    "health": None,
    "get": "get_by_id.sql",
    "list": "list.sql",
    "patch": "patch.sql",
    "create": "create.sql",
    "login": "login.sql",
    "get_during_login_flood": "get_by_id.sql",
}
DESCRIPTIONS = {
    "health": "GET /health/live",
    "get": "GET /api/v1/projects/{id}, random existing ids, owner's token",
    "list": "GET /api/v1/projects?limit=20, random user",
    "patch": "PATCH /api/v1/projects/{id} (description), random ids",
    "create": "POST /api/v1/projects",
    "login": "POST /api/v1/auth/login, each bench user in turn",
    "get_during_login_flood": "GET /api/v1/projects/{id} while a login flood runs beside it",
}
NEEDS_TOKENS = {"get", "list", "patch", "create", "get_during_login_flood"}
NEEDS_LOGIN = {"login", "get_during_login_flood"}


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- database


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def psql(url: str, sql: str | None = None, *, file: Path | None = None,
         variables: dict[str, str] | None = None) -> str:
    cmd = ["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1"]
    for key, value in (variables or {}).items():
        cmd += ["-v", f"{key}={value}"]
    cmd += ["-f", str(file)] if file else ["-c", sql or ""]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


# ---------------------------------------------------------------- HTTP


def http(base: str, method: str, path: str, body: dict | None = None,
         token: str | None = None, timeout: float = 30) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the server


class Server:
    """The release binary, with its /proc counters."""

    def __init__(self, binary: Path, database_url: str, workdir: Path, pool_size: int | None,
                 workers: int | None = None, *, wrapper: list[str] | None = None,
                 jwt_secret: str | None = None, log_name: str = "server.log",
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": database_url,
            "JWT_SECRET": jwt_secret or secrets.token_hex(32),
            "BIND_ADDR": f"127.0.0.1:{self.port}",
            "METRICS_ADDR": "off",
            "RATE_LIMIT_PER_SECOND": "0",
            "AUTH_RATE_LIMIT_PER_MINUTE": "0",
            "RUST_LOG": "warn",
            "LOG_FORMAT": "json",
            "MIGRATE_ON_START": "true",
            # Long enough that the tokens outlive a full run.
            "ACCESS_TOKEN_TTL_SECONDS": "14400",
        }
        env.update(extra_env or {})
        if pool_size:
            env["DATABASE_POOL_SIZE"] = str(pool_size)
        if workers:
            env["HTTP_WORKERS"] = str(workers)
        self.log_path = workdir / log_name
        self.log = open(self.log_path, "wb")
        # A directory with no .env above it: the bench sets every variable.
        self.cwd = tempfile.mkdtemp(prefix="projects-bench-")
        # `wrapper`: a command the server runs under (valgrind, for the
        # instruction counts of bench/instructions.py).
        self.process = subprocess.Popen([*(wrapper or []), str(binary), "serve"], env=env,
                                        cwd=self.cwd,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            try:
                if http(self.base, "GET", "/health/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {seconds}s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, seconds: float = 30) -> float:
        """Waits until the server uses under a tenth of a core (the work a
        finished wrk left behind is done: logins it abandoned mid-queue are
        still hashed); returns how long that took."""
        started = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - started < seconds:
            time.sleep(0.25)
            now = self.cpu_seconds()
            if now - before < 0.025:
                break
            before = now
        return time.monotonic() - started

    def status_kib(self, key: str, pid: int | None = None) -> int:
        for line in Path(f"/proc/{pid or self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def children_kib(self) -> int:
        """The peak RSS of the server's child processes alive now (each
        password-strength estimate runs in one), so that memory moved into
        a child is counted with the server's."""
        total = 0
        for children in Path(f"/proc/{self.pid}/task").glob("*/children"):
            for child in children.read_text().split():
                try:
                    total += self.status_kib("VmHWM", int(child))
                except (OSError, ValueError):
                    pass  # it exited meanwhile
        return total

    def reset_peak_rss(self) -> bool:
        # Writing 5 to clear_refs resets VmHWM (Linux 4.0+; needs ptrace rights).
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.cwd, ignore_errors=True)


class Sampler:
    """Peak RSS and CPU seconds of the server over one measured window."""

    def __init__(self, server: Server, smaps: Path | None = None):
        self.server = server
        self.peak_kib = 0
        # Where to keep /proc/PID/smaps as of the highest sample
        # (BENCH_SMAPS_DIR): what the peak was made of, mapping by mapping.
        self.smaps = smaps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.server.status_kib("VmRSS") + self.server.children_kib()
                if rss > self.peak_kib and self.smaps:
                    self.smaps.write_text(Path(f"/proc/{self.server.pid}/smaps").read_text())
                self.peak_kib = max(self.peak_kib, rss)
            except OSError:
                return
            self._stop.wait(0.05)

    def __enter__(self) -> "Sampler":
        self.hwm_reset = self.server.reset_peak_rss()
        self.cpu_start = self.server.cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = self.server.cpu_seconds() - self.cpu_start
        if self.hwm_reset:
            # VmHWM also sees spikes shorter than the sampling interval.
            self.peak_kib = max(self.peak_kib, self.server.status_kib("VmHWM"))


# ---------------------------------------------------------------- load


def wrk(base: str, scenario: str, workdir: Path, connections: int, seconds: float,
        threads: int = 2) -> dict:
    threads = max(1, min(threads, connections))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(LUA), base, "--", scenario, str(workdir),
           str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT "):])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["error_count"] = sum(result["errors"].values())
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}): "
                       f"{done.stderr.strip() or done.stdout.strip()}")


def pgbench(url: str, script: str, clients: int, seconds: float, users: int,
            projects: int) -> dict:
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(2, clients)),
           "-T", str(max(1, round(seconds))), "-D", f"nusers={users}",
           "-D", f"nprojects={projects}", "-f", str(SQL_DIR / script), url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    out = done.stdout + done.stderr
    tps = re.search(r"^tps = ([\d.]+)", out, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", out, re.M)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if done.returncode != 0 or not tps:
        raise RuntimeError(f"pgbench {script} failed (exit {done.returncode}): {out.strip()[-600:]}")
    return {
        "clients": clients,
        "tps": float(tps.group(1)),
        "latency_ms_mean": float(latency.group(1)) if latency else None,
        "transactions": int(processed.group(1)) if processed else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


# ---------------------------------------------------------------- the run


@dataclass
class Plan:
    quick: bool
    concurrencies: list[int]
    login_concurrencies: list[int]
    flood_concurrency: int
    flood_login_connections: int
    duration: float
    warmup: float
    users: int
    projects: int
    scenarios: list[str]


@dataclass
class Context:
    server: Server
    workdir: Path
    db_url: str
    plan: Plan
    pg_clients_cap: int
    tokens: list[str] = field(default_factory=list)
    ids: list[tuple[str, int]] = field(default_factory=list)
    auth_missing: str | None = None


def prepare(ctx: Context) -> None:
    """Seeds users and projects, and logs every bench user in."""
    base, plan = ctx.server.base, ctx.plan
    started = time.monotonic()
    status, _ = http(base, "POST", "/api/v1/auth/register",
                     {"email": DONOR_EMAIL, "password": PASSWORD, "name": "Bench hash donor"})
    if status == 201:
        # One real hash, made by the server with its own argon2 parameters,
        # shared by every bench user (they all have the same password).
        hash_ = psql(ctx.db_url, f"SELECT password_hash FROM users WHERE lower(email) = '{DONOR_EMAIL}'")
        psql(ctx.db_url, f"DELETE FROM users WHERE lower(email) = '{DONOR_EMAIL}'")
    else:
        ctx.auth_missing = f"endpoint missing: POST /api/v1/auth/register answered {status}"
        say(f"{ctx.auth_missing}; seeding with a placeholder hash (no login can succeed)")
        hash_ = PLACEHOLDER_HASH
    psql(ctx.db_url, file=SQL_DIR / "seed.sql",
         variables={"nusers": str(plan.users), "nprojects": str(plan.projects), "hash": hash_})
    rows = psql(ctx.db_url, f"SELECT bench_project_id(n) || ' ' || n % {plan.users} "
                            f"FROM generate_series(1, {plan.projects}) AS n")
    (ctx.workdir / "ids.txt").write_text(rows + "\n")
    ctx.ids = [(line.split()[0], int(line.split()[1])) for line in rows.splitlines()]
    # One login body per bench user: wrk's threads walk them in turn, so no
    # account sees more than a couple of logins at once (the per-account
    # password-check throttle answers 429 past three at once, as it should).
    (ctx.workdir / "logins.txt").write_text("".join(
        json.dumps({"email": f"bench-{k}@example.com", "password": PASSWORD}) + "\n"
        for k in range(plan.users)))
    say(f"seeded {plan.users} users and {plan.projects} projects in {time.monotonic() - started:.1f}s")
    if ctx.auth_missing:
        return

    def login(k: int) -> str | None:
        status, body = http(base, "POST", "/api/v1/auth/login",
                            {"email": f"bench-{k}@example.com", "password": PASSWORD})
        if status != 200 or not body:
            return None
        return (body.get("tokens") or {}).get("access_token")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        tokens = list(pool.map(login, range(plan.users)))
    if not all(tokens):
        ctx.auth_missing = "endpoint missing or failing: POST /api/v1/auth/login gave no access token"
        say(ctx.auth_missing)
        return
    ctx.tokens = tokens
    (ctx.workdir / "tokens.txt").write_text("\n".join(tokens) + "\n")
    say(f"logged in {len(tokens)} users")


def probe(ctx: Context, scenario: str) -> str | None:
    """Why the scenario cannot run (an endpoint is missing), or None."""
    if scenario in NEEDS_TOKENS | NEEDS_LOGIN and ctx.auth_missing:
        return ctx.auth_missing
    base = ctx.server.base
    token = ctx.tokens[0] if ctx.tokens else None
    project = next(p for p, owner in ctx.ids if owner == 0)
    checks = {
        "health": ("GET", "/health/live", None, None, 200),
        "get": ("GET", f"/api/v1/projects/{project}", None, token, 200),
        "get_during_login_flood": ("GET", f"/api/v1/projects/{project}", None, token, 200),
        "list": ("GET", "/api/v1/projects?limit=20", None, token, 200),
        "patch": ("PATCH", f"/api/v1/projects/{project}",
                  {"description": "Patched by the bench probe."}, token, 200),
        "create": ("POST", "/api/v1/projects", {"name": "Bench probe"}, token, 201),
        "login": ("POST", "/api/v1/auth/login",
                  json.loads((ctx.workdir / "logins.txt").read_text().splitlines()[0]), None, 200),
    }
    method, path, body, tok, expected = checks[scenario]
    status, _ = http(base, method, path, body, tok)
    if status == expected:
        return None
    if status in (404, 405):
        return f"endpoint missing: {method} {path.split('?')[0]} answered {status}"
    # Any other answer: run it anyway, so that the errors are counted and shown.
    say(f"{scenario}: probe answered {status}, expected {expected}")
    return None


def measure(ctx: Context, scenario: str, connections: int) -> dict:
    plan, server = ctx.plan, ctx.server
    say(f"{scenario} c={connections}: warm-up {plan.warmup:g}s, load {plan.duration:g}s")
    if scenario == "get_during_login_flood":
        return measure_flood(ctx, connections)
    if plan.warmup > 0:
        wrk(server.base, scenario, ctx.workdir, connections, plan.warmup)
        # wrk exits with requests in flight; the server still finishes them
        # (a login queued for the hasher is hashed). Measured at once, the
        # next run would find the password queue full of the warm-up's
        # leftovers and be refused (503) until they drain.
        settled = server.wait_idle()
        if settled > 1:
            say(f"{scenario} c={connections}: the warm-up's leftovers took {settled:.1f}s")
    with Sampler(server, smaps_path(scenario, connections)) as sampler:
        result = wrk(server.base, scenario, ctx.workdir, connections, plan.duration)
    return row(scenario, connections, result, sampler)


def smaps_path(scenario: str, connections: int) -> Path | None:
    """Where the smaps of a window's peak go, when BENCH_SMAPS_DIR is set
    (bench/README.md, *Memory*)."""
    directory = os.environ.get("BENCH_SMAPS_DIR")
    if not directory:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return Path(directory) / f"{scenario}-c{connections}.smaps"


def measure_flood(ctx: Context, connections: int) -> dict:
    """GET by id while a login flood runs beside it, from a second wrk."""
    plan, server = ctx.plan, ctx.server
    flood_seconds = plan.warmup + plan.duration + 1
    flood_result: dict = {}

    def flood() -> None:
        flood_result.update(wrk(server.base, "login", ctx.workdir,
                                plan.flood_login_connections, flood_seconds, threads=1))

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        if plan.warmup > 0:
            wrk(server.base, "get", ctx.workdir, connections, plan.warmup)
        with Sampler(server) as sampler:
            result = wrk(server.base, "get", ctx.workdir, connections, plan.duration)
    finally:
        flooder.join()
    out = row("get_during_login_flood", connections, result, sampler)
    out["flood"] = {
        "connections": plan.flood_login_connections,
        "rps": round(flood_result.get("rps", 0), 1),
        "errors": flood_result.get("error_count"),
        "error_detail": flood_result.get("errors"),
        "p50_ms": flood_result.get("latency_us", {}).get("p50", 0) / 1000,
        "p99_ms": flood_result.get("latency_us", {}).get("p99", 0) / 1000,
    }
    say(f"get_during_login_flood c={connections}: the flood made {out['flood']['rps']:.1f} "
        f"logins/s, p50 {out['flood']['p50_ms']:.0f} ms, errors {out['flood']['error_detail']}")
    # Flood errors count against the scenario too.
    out["errors"] += flood_result.get("error_count", 0) or 0
    return out


def row(scenario: str, connections: int, result: dict, sampler: Sampler) -> dict:
    requests = result["requests"]
    return {
        "scenario": scenario,
        "connections": connections,
        "requests": requests,
        "rps": round(result["rps"], 1),
        "latency_ms": {k: round(v / 1000, 3) for k, v in result["latency_us"].items()},
        "errors": result["error_count"],
        "error_detail": result["errors"] | (
            {"statuses": result["failed_statuses"]} if result.get("failed_statuses") else {}),
        "peak_rss_mib": round(sampler.peak_kib / 1024, 1),
        "cpu_seconds": round(sampler.cpu, 2),
        "cpu_seconds_per_1k": round(sampler.cpu / requests * 1000, 4) if requests else None,
    }


def ceiling(ctx: Context, scenario: str, connections: int) -> dict | None:
    script = SCENARIOS[scenario]
    if script is None:
        return None
    clients = min(connections, ctx.pg_clients_cap)
    if clients < connections:
        say(f"pgbench capped at {clients} clients (max_connections of the server is too low)")
    return pgbench(ctx.db_url, script, clients, ctx.plan.duration, ctx.plan.users, ctx.plan.projects)


def run(ctx: Context) -> tuple[list[dict], dict[str, str]]:
    rows: list[dict] = []
    missing: dict[str, str] = {}
    plan = ctx.plan
    for scenario in plan.scenarios:
        reason = probe(ctx, scenario)
        if scenario == "login":
            concurrencies = plan.login_concurrencies
        elif scenario == "get_during_login_flood":
            concurrencies = [plan.flood_concurrency]
        else:
            concurrencies = plan.concurrencies
        for connections in concurrencies:
            if reason:
                missing[scenario] = reason
                say(f"{scenario} c={connections}: SKIPPED, {reason}")
                entry = {"scenario": scenario, "connections": connections, "missing": reason}
            else:
                entry = measure(ctx, scenario, connections)
                say(f"{scenario} c={connections}: {entry['rps']:.0f} req/s, "
                    f"p99 {entry['latency_ms']['p99']:.2f} ms, {entry['errors']} errors")
            ceiling_result = ceiling(ctx, scenario, connections)
            if ceiling_result:
                entry["pgbench"] = ceiling_result
                say(f"{scenario} c={connections}: pgbench {ceiling_result['tps']:.0f} tps "
                    f"({ceiling_result['clients']} clients)")
                if "rps" in entry and ceiling_result["tps"]:
                    entry["ratio"] = round(entry["rps"] / ceiling_result["tps"], 3)
            rows.append(entry)
    add_ratio_bounds(rows)
    return rows, missing


def add_ratio_bounds(rows: list[dict]) -> None:
    """The best ratio to pgbench that any server could reach on this machine.

    A request that runs a statement costs at least one HTTP exchange (as
    cheap as `/health/live` at best: wrk, the server's HTTP path, the
    loopback hop) plus what pgbench's transaction costs (a client's side of
    the statement, the backend, the other loopback hop). When the CPU is the
    only resource (both cores busy in each measurement), CPU time per
    request is cores / rate, so the times add: the request rate is at most
    1 / (1/health + 1/pgbench) and its ratio to pgbench at most
    health / (health + pgbench), measured at the same concurrency.
    """
    health = {r["connections"]: r["rps"] for r in rows
              if r["scenario"] == "health" and "rps" in r}
    for r in rows:
        tps = r.get("pgbench", {}).get("tps")
        h = health.get(r["connections"])
        # A login is bound by argon2, and the flood shares the CPU with it.
        if r["scenario"] in ("get", "list", "create", "patch") and "ratio" in r and tps and h:
            r["ratio_bound"] = round(h / (h + tps), 3)


# ---------------------------------------------------------------- targets


def targets(rows: list[dict], cores: int) -> list[dict]:
    """The targets of issue 7, each met, not met, or not measured."""
    def find(scenario: str, connections: int | None = None) -> list[dict]:
        return [r for r in rows if r["scenario"] == scenario and "rps" in r
                and (connections is None or r["connections"] == connections)]

    out: list[dict] = []

    def add(name: str, goal: str, measured: str | None, met: bool | None) -> None:
        out.append({"target": name, "goal": goal, "measured": measured or "not measured",
                    "met": met})

    for scenario, floor in (("get", 0.6), ("list", 0.5), ("create", 0.5), ("patch", 0.5)):
        found = [r for r in find(scenario) if "ratio" in r]
        measured = ", ".join(
            f"c={r['connections']}: {r['ratio']:.2f}"
            + (f" (bound {r['ratio_bound']:.2f})" if "ratio_bound" in r else "")
            for r in found)
        add(f"{scenario} / pgbench", f">= {floor}", measured or None,
            all(r["ratio"] >= floor for r in found) if found else None)
    got = find("get", 32)
    add("get p99 at c=32", "<= 5 ms", f"{got[0]['latency_ms']['p99']:.2f} ms" if got else None,
        got[0]["latency_ms"]["p99"] <= 5 if got else None)
    ran = [r for r in rows if "rps" in r]
    skipped = sorted({r["scenario"] for r in rows if "missing" in r})
    errors = sum(r["errors"] for r in ran)
    measured = f"{errors} in {len(ran)} runs" if ran else None
    if measured and skipped:
        measured += f"; did not run: {', '.join(skipped)}"
    # Zero errors in the runs made is not zero errors in every scenario.
    add("errors in every scenario", "0", measured,
        (False if errors else None if skipped else True) if ran else None)
    reads = find("get") + find("list")
    peak = max((r["peak_rss_mib"] for r in reads), default=None)
    add("peak RSS under read load", "<= 32 MiB", f"{peak} MiB" if peak is not None else None,
        peak <= 32 if peak is not None else None)
    single = find("login", 1)
    busy = [r for r in find("login") if r["connections"] >= cores]
    if single and busy:
        hash_seconds = single[0]["latency_ms"]["mean"] / 1000
        expected = cores / hash_seconds
        best = max(r["rps"] for r in busy)
        add("login throughput", "within 20% of cores / single-hash time",
            f"{best:.1f}/s vs {expected:.1f}/s ({cores} cores / {hash_seconds * 1000:.1f} ms "
            f"at c=1): {best / expected:.2f}", best >= 0.8 * expected)
    else:
        add("login throughput", "within 20% of cores / single-hash time", None, None)
    flood = find("get_during_login_flood")
    alone = find("get", flood[0]["connections"]) if flood else []
    if flood and alone:
        share = flood[0]["rps"] / alone[0]["rps"]
        p99 = flood[0]["latency_ms"]["p99"]
        add("get during login flood: throughput", ">= 70% of get alone", f"{share:.2f}", share >= 0.7)
        add("get during login flood: p99", "< 20 ms", f"{p99:.2f} ms", p99 < 20)
    else:
        add("get during login flood: throughput", ">= 70% of get alone", None, None)
        add("get during login flood: p99", "< 20 ms", None, None)
    return out


# ---------------------------------------------------------------- output


def markdown(rows: list[dict], target_rows: list[dict] | None) -> str:
    lines = [
        "| scenario | conc. | req/s | p50 ms | p99 ms | errors | peak RSS MiB | CPU-s / 1k req "
        "| pgbench TPS (clients) | ratio | bound |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        pg = r.get("pgbench")
        pg_cell = f"{pg['tps']:.0f} ({pg['clients']})" if pg else "—"
        if "missing" in r:
            lines.append(f"| {r['scenario']} | {r['connections']} | {r['missing']} | | | | | "
                         f"| {pg_cell} | | |")
            continue
        lat = r["latency_ms"]
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "—"
        bound = f"{r['ratio_bound']:.2f}" if "ratio_bound" in r else "—"
        lines.append(
            f"| {r['scenario']} | {r['connections']} | {r['rps']:.0f} | {lat['p50']:.2f} "
            f"| {lat['p99']:.2f} | {r['errors']} | {r['peak_rss_mib']:.1f} "
            f"| {r['cpu_seconds_per_1k']:.3f} | {pg_cell} | {ratio} | {bound} |")
    if target_rows:
        lines += ["", "| target | goal | measured | met |", "| --- | --- | --- | --- |"]
        for t in target_rows:
            met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
            lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def svg_chart(rows: list[dict], title: str) -> str:
    """Grouped bars on a log scale: the server's req/s beside pgbench's TPS."""
    groups = [r for r in rows if "rps" in r or "pgbench" in r]
    width_per = 56
    left, top, bottom, right = 120, 70, 150, 20
    plot_h = 320
    width = max(660, left + right + max(1, len(groups)) * width_per)
    height = top + plot_h + bottom
    values = [v for r in groups for v in (r.get("rps"), (r.get("pgbench") or {}).get("tps")) if v]
    import math
    lo = 10 ** math.floor(math.log10(max(1.0, min(values, default=1))))
    hi = 10 ** math.ceil(math.log10(max(values, default=10) * 1.01))
    hi = max(hi, lo * 10)

    def y(v: float) -> float:
        return top + plot_h * (1 - (math.log10(max(v, lo)) - math.log10(lo))
                               / (math.log10(hi) - math.log10(lo)))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{esc(title)}</text>',
           f'<rect x="{left}" y="30" width="10" height="10" fill="#3b6fb6"/>'
           f'<text x="{left + 14}" y="39">server req/s</text>',
           f'<rect x="{left + 110}" y="30" width="10" height="10" fill="#b0b0b0"/>'
           f'<text x="{left + 124}" y="39">pgbench TPS, same SQL and connections (ceiling)</text>',
           f'<text x="{left}" y="56">the number above a pair is the ratio server / pgbench</text>']
    decade = lo
    while decade <= hi:
        yy = y(decade)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="#ddd"/><text x="{left - 6}" y="{yy + 4:.1f}" '
                   f'text-anchor="end">{decade:g}</text>')
        decade *= 10
    base_y = top + plot_h
    for i, r in enumerate(groups):
        x = left + i * width_per + 8
        bar = 18
        if "rps" in r:
            out.append(f'<rect x="{x}" y="{y(r["rps"]):.1f}" width="{bar}" '
                       f'height="{base_y - y(r["rps"]):.1f}" fill="#3b6fb6"><title>'
                       f'{esc(r["scenario"])} c={r["connections"]}: {r["rps"]:.0f} req/s</title></rect>')
        else:
            mx, my = x + bar / 2 + 3, base_y - 6
            out.append(f'<text x="{mx}" y="{my}" font-size="10" fill="#b00" '
                       f'transform="rotate(-90 {mx} {my})">endpoint missing</text>')
        pg = r.get("pgbench")
        if pg:
            out.append(f'<rect x="{x + bar}" y="{y(pg["tps"]):.1f}" width="{bar}" '
                       f'height="{base_y - y(pg["tps"]):.1f}" fill="#b0b0b0"><title>pgbench '
                       f'{pg["tps"]:.0f} TPS ({pg["clients"]} clients)</title></rect>')
        if "ratio" in r:
            top_y = min(y(r["rps"]), y(pg["tps"])) - 4
            out.append(f'<text x="{x + bar}" y="{top_y:.1f}" text-anchor="middle" '
                       f'font-size="10">{r["ratio"]:.2f}</text>')
        label = f'{r["scenario"]} c={r["connections"]}'
        lx, ly = x + bar, base_y + 8
        out.append(f'<text x="{lx}" y="{ly}" text-anchor="end" '
                   f'transform="rotate(-50 {lx} {ly})">{esc(label)}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{base_y}" y2="{base_y}" stroke="#333"/>')
    out.append(f'<text x="60" y="{top + plot_h / 2}" transform="rotate(-90 60 {top + plot_h / 2})" '
               f'text-anchor="middle">requests or transactions per second (log)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def update_readme(table: str) -> None:
    """Replaces the table between the markers in bench/README.md."""
    readme = BENCH_DIR / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    begin, end = "<!-- bench:latest:begin -->", "<!-- bench:latest:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{begin}\n{table}{end}{tail}")


def tool_version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def start_pooler(admin_url: str) -> tuple[str, str, bool]:
    """A PgBouncer (transaction pooling, default settings) in front of the
    server of `admin_url`, from scripts/pgbouncer: the server's URL through
    it, its version, and whether this run started it (and stops it)."""
    script = str(ROOT / "scripts" / "pgbouncer")
    env = {**os.environ, "DATABASE_URL": admin_url}
    was_up = subprocess.run([script, "url"], env=env, capture_output=True).returncode == 0
    done = subprocess.run([script, "up"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/pgbouncer up failed: {done.stderr.strip()[-600:]}")
    url = with_database(done.stdout.strip().splitlines()[-1], BENCH_DB)
    binary = subprocess.run([script, "bin"], capture_output=True, text=True).stdout.strip()
    version = tool_version([binary.splitlines()[-1], "--version"]) if binary else "pgbouncer"
    say(f"the server goes through {version} at {url} (transaction pooling, unnamed statements)")
    return url, f"{version}, pool_mode=transaction", not was_up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="short smoke run: one concurrency, 2 s each; checks only for errors")
    parser.add_argument("--allow-missing", action="store_true",
                        help="exit 0 even when some endpoints do not exist yet")
    parser.add_argument("--binary", required=True, type=Path, help="the release projects-api")
    parser.add_argument("--database-url", required=True,
                        help="a PostgreSQL server; the bench creates and drops its own database there")
    parser.add_argument("--concurrency", help="comma-separated, default 8,32,128 (quick: 32)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10, quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up (default 3, quick 1)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--pool-size", type=int, help="DATABASE_POOL_SIZE for the server")
    parser.add_argument("--workers", type=int,
                        help="HTTP_WORKERS for the server (default: its own, one per core)")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ", ".join(SCENARIOS))
    parser.add_argument("--name", help="results file name (default latest, quick: quick)")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="one more variable for the server (repeatable), e.g. "
                             "MALLOC_ARENA_MAX=2 to measure an allocator setting")
    parser.add_argument("--pooler", action="store_true",
                        help="the server goes through a PgBouncer in transaction mode "
                             "(scripts/pgbouncer) with DATABASE_PREPARED_STATEMENTS=false; "
                             "seeding and pgbench stay direct")
    parser.add_argument("--unnamed-statements", action="store_true",
                        help="DATABASE_PREPARED_STATEMENTS=false without a pooler (what --pooler "
                             "costs besides the pooler itself)")
    args = parser.parse_args()

    quick = args.quick
    concurrencies = ([int(c) for c in args.concurrency.split(",")] if args.concurrency
                     else [32] if quick else [8, 32, 128])
    cores = os.cpu_count() or 1
    flood_c = 32 if 32 in concurrencies else concurrencies[len(concurrencies) // 2]
    plan = Plan(
        quick=quick,
        concurrencies=concurrencies,
        # c=1 gives the single-hash time that the login target divides by.
        login_concurrencies=concurrencies if quick else sorted({1, cores, *concurrencies}),
        flood_concurrency=flood_c,
        flood_login_connections=32,
        duration=args.duration or (2 if quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
        users=args.users,
        projects=args.projects,
        scenarios=args.scenarios.split(",") if args.scenarios else list(SCENARIOS),
    )
    unknown = [s for s in plan.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    name = args.name or ("quick" if quick else "pooler" if args.pooler else "latest")
    workdir = BENCH_DIR / ".work"
    workdir.mkdir(exist_ok=True)
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)

    load = Path("/proc/loadavg").read_text().split()[0]
    if float(load) > 0.5 * cores:
        say(f"WARNING: load average {load} on {cores} cores: other work will skew the figures")

    db_url = with_database(args.database_url, BENCH_DB)
    psql(args.database_url, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    psql(args.database_url, f'CREATE DATABASE "{BENCH_DB}"')
    server_url, pooler, stop_pooler = db_url, None, False
    if args.pooler:
        server_url, pooler, stop_pooler = start_pooler(args.database_url)
    extra_env = {}
    if args.pooler or args.unnamed_statements:
        extra_env = {"DATABASE_PREPARED_STATEMENTS": "false", "DATABASE_MIGRATION_URL": db_url}
    extra_env.update(dict(item.split("=", 1) for item in args.env))
    server = Server(args.binary.resolve(), server_url, workdir, args.pool_size, args.workers,
                    extra_env=extra_env)
    rows: list[dict] = []
    missing: dict[str, str] = {}
    ctx: Context | None = None
    try:
        server.wait_ready()
        say(f"server pid {server.pid} ready at {server.base}")
        max_conn = int(psql(db_url, "SHOW max_connections"))
        in_use = int(psql(db_url, "SELECT count(*) FROM pg_stat_activity"))
        reserved = int(psql(db_url, "SHOW superuser_reserved_connections"))
        pool = args.pool_size or 16
        # Room for pgbench beside the server's whole pool and a little slack.
        cap = max(1, max_conn - reserved - in_use - pool - 5)
        ctx = Context(server=server, workdir=workdir, db_url=db_url, plan=plan,
                      pg_clients_cap=cap)
        prepare(ctx)
        rows, missing = run(ctx)
    finally:
        server.stop()
        if stop_pooler:
            subprocess.run([str(ROOT / "scripts" / "pgbouncer"), "down"], check=False)
        if not args.keep_db:
            psql(args.database_url, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')

    target_rows = None if quick else targets(rows, cores)
    table = markdown(rows, target_rows)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    report = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "mode": "quick" if quick else "full",
        "machine": {"cores": cores, "load_average_at_start": float(load),
                    "kernel": platform.release()},
        "tools": {"wrk": tool_version(["wrk", "--version"]),
                  "pgbench": tool_version(["pgbench", "--version"]),
                  "postgres": psql(args.database_url, "SHOW server_version")},
        "settings": {**plan.__dict__, "pool_size": args.pool_size or 16,
                     "http_workers": args.workers or "one per core",
                     "pooler": pooler,
                     "prepared_statements": not (args.pooler or args.unnamed_statements),
                     "pgbench_clients_cap": ctx.pg_clients_cap if ctx else None},
        "rows": rows,
        "missing": missing,
        "targets": target_rows,
    }
    (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"{name}.md").write_text(
        f"Run of {report['generated_at']} at {commit} ({report['mode']}, "
        f"{plan.duration:g} s per point, {cores} cores, load {load} at start).\n\n{table}")
    (results / f"{name}.svg").write_text(
        svg_chart(rows, f"projects-api vs pgbench ({report['mode']} run, {commit})"))
    if name == "latest":
        update_readme(f"Run of {report['generated_at']} at {commit}, {plan.duration:g} s per "
                      f"point, load {load} at start.\n\n{table}")
    print(table)
    say(f"wrote {results / name}.json, .md and .svg")

    failed = [r for r in rows if r.get("errors")]
    failed_pg = [r for r in rows if (r.get("pgbench") or {}).get("failed")]
    status = 0
    for r in failed:
        say(f"FAILED: {r['scenario']} c={r['connections']} had {r['errors']} errors {r['error_detail']}")
        status = 1
    for r in failed_pg:
        say(f"FAILED: pgbench for {r['scenario']} c={r['connections']} had failed transactions")
        status = 1
    for scenario, reason in missing.items():
        say(f"{'NOTE' if args.allow_missing else 'FAILED'}: {scenario} did not run: {reason}")
        if not args.allow_missing:
            status = 1
    if status == 0:
        say("every scenario that ran had zero errors")
    return status


if __name__ == "__main__":
    sys.exit(main())
