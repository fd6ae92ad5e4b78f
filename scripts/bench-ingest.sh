#!/usr/bin/env bash
# The ingest benchmark: how many beacons per second one tally process takes on one core, at
# what latency and memory, next to the limit of its HTTP stack on the same core. In one go:
#   1. tally-bare (bench/: hyper 1 + hyper-util auto builder, tokio, answers 204 after reading
#      the body): closed loop at its maximum, then open loop at half of that;
#   2. tally serve, full processing (anonymization, country lookup in the DB-IP database,
#      user-agent classes, bot check, batched inserts into a dedicated local ClickHouse): open
#      loop at a steady 10,000 beacons/s (memory, whether ClickHouse keeps up), closed loop at
#      its maximum, open loop at half of that maximum;
#   3. the same tally built with `--features plain-alloc` (no zero-on-free allocator): maximum
#      and half of it, to show what wiping freed memory costs;
#   4. alternating maximum runs, bare then tally, three rounds of 10 s each (a fresh process
#      each time): the ratio tally/bare per round and its median. On a machine shared with
#      other work the load changes from minute to minute; a bare run and the tally run right
#      after it see much the same load, so their ratio is the figure that compares.
# Both servers run on CPU 1 with one tokio worker (TOKIO_WORKER_THREADS=1); the load generator
# (bench/ tally-load: real browser and bot user agents, addresses spread over the allocated
# address space in X-Forwarded-For, five sites, ~80 % pageviews / ~20 % engagement, fixed seed)
# and ClickHouse share CPU 0. It prints accepted/s, latency p50/p99/p99.9, errors, the server's
# CPU per 1,000 beacons and peak RSS, the ratio tally/bare, and whether ClickHouse's row count
# equals what tally accepted, and writes that into BENCHMARKS.md ("Ingest"). It measures; it
# never fails on a number.
#
#   scripts/bench-ingest.sh              the full run (about 4 minutes after the builds)
#   scripts/bench-ingest.sh --quick      5-second phases (about 1 minute): a smoke run
#   scripts/bench-ingest.sh --callgrind  instructions per beacon of tally's request path under
#                                        valgrind (20,000 beacons), instead of the timing
#   TALLY_BENCH_KEEP=1 ...               leave ClickHouse running afterwards
#   TALLY_BENCH_TALLY=path ...           measure that tally binary instead of the fresh build
#   TALLY_BENCH_PLAIN=0 ...              no plain-alloc build and phases (one release build less:
#                                        with the release profile's LTO that is minutes)
#   TALLY_BENCH_BUILD=0 ...              build nothing: measure TALLY_BENCH_TALLY (required) with
#                                        the tally-bare and tally-load already in target/release
#                                        (implies TALLY_BENCH_PLAIN=0)
#   TALLY_BENCH_SPIN=0 ...               alternating rounds with a generator that sleeps until
#                                        an answer comes, as the other phases always do (before
#                                        2026-12-04 the only way; its wake-ups are charged to the
#                                        server's core)
#   TALLY_BENCH_INGEST="k = v; k = v"    tally's [ingest] settings instead of the defaults, e.g.
#                                        "batch_size = 50000; flush_interval_ms = 5000" (fewer,
#                                        larger inserts: less ClickHouse CPU on CPU 0)
#   TALLY_BENCH_CH_NICE=10               ClickHouse's nice value in the open-loop phases, as root
#                                        (0: none; the maximum phases always run it at 0)
#   --no-markdown                        print only, leave BENCHMARKS.md alone
#   --report                             write the last full run's results into BENCHMARKS.md again
#
# Ports: ClickHouse HTTP 18126 / native 19003 (TALLY_BENCH_CH_HTTP / TALLY_BENCH_CH_TCP; the
# tests use 18123, the demo 18124, the reports benchmark 18125), tally 127.0.0.1:18986 and
# tally-bare 127.0.0.1:18987 (TALLY_BENCH_LISTEN / TALLY_BENCH_BARE_LISTEN).
# Data: .cache/clickhouse-bench-ingest (the database is dropped at each tally start);
# results in .cache/bench-ingest/ (TALLY_CACHE moves .cache).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
http_port="${TALLY_BENCH_CH_HTTP:-18126}"
tcp_port="${TALLY_BENCH_CH_TCP:-19003}"
listen="${TALLY_BENCH_LISTEN:-127.0.0.1:18986}"
bare_listen="${TALLY_BENCH_BARE_LISTEN:-127.0.0.1:18987}"
ch_dir="$cache/clickhouse-bench-ingest"
ch_url="http://127.0.0.1:$http_port"
work="$cache/bench-ingest"
command_line="scripts/bench-ingest.sh${*:+ $*}"

mode=full
markdown=1
for arg in "$@"; do
  case $arg in
    --quick) mode=quick ;;
    --callgrind) mode=callgrind ;;
    --no-markdown) markdown=0 ;;
    --report) mode=report ;;
    -h | --help) sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
# --quick and --callgrind are not the benchmark: they never touch BENCHMARKS.md.
[[ $mode == full || $mode == report ]] || markdown=0
if [[ $mode == report ]]; then
  # Render the last full run's results (.cache/bench-ingest/results.json) again, nothing else.
  export BENCH_MODE=report BENCH_MARKDOWN=$markdown BENCH_WORK=$work BENCH_CH_URL=$ch_url BENCH_CH_PID=0 \
    BENCH_LISTEN=$listen BENCH_BARE_LISTEN=$bare_listen BENCH_TESTDATA=x BENCH_BUILT_FROM=x
  export BENCH_COMMAND=scripts/bench-ingest.sh
fi
if [[ $mode != report ]]; then

step() { printf '\n== %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust >= 1.89 (rustup) first" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "needs at least 2 CPUs (server and load generator on separate cores)" >&2; exit 1; }

step "installing system packages where missing"
scripts/install-deps.sh
if [[ $mode == callgrind ]] && ! command -v valgrind >/dev/null; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq valgrind >/dev/null
fi

step "test corpora (user agents, country database)"
scripts/testdata.sh >/dev/null
testdata="${TALLY_CACHE:-$repo/.cache}/testdata"

step "building tally (release; also with --features plain-alloc) and the load generator"
mkdir -p "$work"
rm -f "$work/tally-plain-alloc"
build=${TALLY_BENCH_BUILD:-1}
if [[ $build == 0 && -z ${TALLY_BENCH_TALLY:-} ]]; then
  echo "TALLY_BENCH_BUILD=0 needs TALLY_BENCH_TALLY=path (the tally binary to measure)" >&2
  exit 2
fi
if [[ $build != 0 && ${TALLY_BENCH_PLAIN:-1} != 0 ]]; then
  cargo build --release --quiet --bin tally --features plain-alloc
  cp target/release/tally "$work/tally-plain-alloc"
fi
[[ $build == 0 ]] || cargo build --release --quiet --bin tally
[[ $build == 0 ]] || cp target/release/tally "$work/tally"
if [[ -n ${TALLY_BENCH_TALLY:-} ]]; then
  # Measure another build (an older commit's, say) in place of the fresh one.
  cp "$TALLY_BENCH_TALLY" "$work/tally"
  built_note=" (measured: $TALLY_BENCH_TALLY)"
fi
if [[ $build == 0 ]]; then
  built_note+="; tally-bare and tally-load as found in target/release, built $(date -ur target/release/tally-bare '+%Y-%m-%d %H:%M UTC')"
else
  cargo build --release --quiet -p tally-bench
fi
built_from=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
if ! git diff --quiet HEAD -- src Cargo.toml Cargo.lock bench 2>/dev/null; then
  built_from+=" with uncommitted changes under src/ or bench/"
fi
built_from+=${built_note:-}

step "starting ClickHouse on 127.0.0.1:$http_port (data in $ch_dir)"
scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port"
cleanup() {
  if [[ ${TALLY_BENCH_KEEP:-} == 1 ]]; then
    echo "ClickHouse left running (TALLY_BENCH_KEEP=1): $ch_url; stop it with scripts/clickhouse.sh stop $ch_dir"
  else
    scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
# ClickHouse shares CPU 0 with the load generator; CPU 1 is the server's alone. Threads it
# starts later inherit the mask.
taskset -a -cp 0 "$(cat "$ch_dir/clickhouse.pid")" >/dev/null

fi  # (not --report)
[[ $mode == report ]] || export BENCH_MODE=$mode BENCH_MARKDOWN=$markdown BENCH_WORK=$work BENCH_CH_URL=$ch_url \
  BENCH_CH_PID="$(cat "$ch_dir/clickhouse.pid")" BENCH_LISTEN=$listen BENCH_BARE_LISTEN=$bare_listen \
  BENCH_TESTDATA=$testdata BENCH_COMMAND=$command_line BENCH_BUILT_FROM=$built_from
python3 - <<'PY'
"""Runs the phases, reads the counters, prints the results and writes the Markdown block."""
import datetime, json, os, platform, re, signal, socket, subprocess, sys, threading, time
import urllib.error, urllib.request

E = os.environ
MODE, WORK, CH_URL = E["BENCH_MODE"], E["BENCH_WORK"], E["BENCH_CH_URL"]
CH_PID = int(E["BENCH_CH_PID"])
LISTEN, BARE = E["BENCH_LISTEN"], E["BENCH_BARE_LISTEN"]
TESTDATA = E["BENCH_TESTDATA"]
DB = "tally_bench_ingest"
# The alternating rounds with a generator that polls instead of sleeping (tally-load --spin):
# an idle generator on the same machine is woken by each answer, and that wake-up runs in the
# server's send and is charged to the server (a generator on another host costs it nothing).
# Only there: a polling generator takes all of CPU 0 it can, and ClickHouse, which shares that
# CPU, falls behind with its merges, which the phases that measure latency and memory would
# then see.
SPIN = E.get("TALLY_BENCH_SPIN", "1") != "0"
# ClickHouse's nice value in the open-loop phases (0: as the maximum phases, always 0).
CH_NICE = int(E.get("TALLY_BENCH_CH_NICE", "10"))
QUICK = MODE == "quick"
WARMUP = 1 if QUICK else 3
MAX_SECONDS = 5 if QUICK else 20
STEADY_SECONDS = 5 if QUICK else 30
STEADY_RATE = 10_000
MAX_CONNECTIONS = 32   # closed loop: 32 keep-alive connections, one request in flight on each
RATE_CONNECTIONS = 64  # open loop: enough that a free connection is always there
CALLGRIND_BEACONS = 20_000
ALT_ROUNDS = 1 if QUICK else 3
ALT_SECONDS = 5 if QUICK else 10
SERVER_CPU, LOAD_CPU = "1", "0"
SITES = ["www.gemeente-noord.example", "www.provincie-west.example", "werkenbij.example",
         "www.museum-oost.example", "docs.dienst-zuid.example"]
LOAD = "target/release/tally-load"


def ch(sql):
    req = urllib.request.Request(CH_URL + "/", data=sql.encode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode().strip()


def http_get(addr, path, timeout=5):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=timeout) as r:
        return r.read().decode()


def metrics(addr):
    """tally's counters: {name{labels}: value}."""
    out = {}
    for line in http_get(addr, "/metrics").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def proc_cpu(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def machine_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields[:8])
    return total, total - fields[3] - fields[4]


def port_taken(addr):
    host, port = addr.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def start_server(argv, addr, env_extra=None, log=None):
    # Another server on the port would answer in ours' place (a shared machine): refuse.
    if port_taken(addr):
        sys.exit(f"{addr} is already in use by another process; choose another port "
                 "(TALLY_BENCH_LISTEN / TALLY_BENCH_BARE_LISTEN)")
    env = dict(E, TOKIO_WORKER_THREADS="1", **(env_extra or {}))
    out = open(log, "w") if log else subprocess.DEVNULL
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, env=env, stdout=out, stderr=out)
    for _ in range(300):
        if p.poll() is not None:
            sys.exit(f"{argv[0]} exited with {p.returncode}" + (f"; see {log}" if log else ""))
        try:
            http_get(addr, "/readyz", timeout=1)
        except urllib.error.HTTPError:
            pass  # tally-bare answers every path: it is up
        except Exception:  # not listening yet
            time.sleep(0.1)
            continue
        if p.poll() is None:
            return p
    p.kill()
    sys.exit(f"{argv[0]} did not come up on {addr}")


def stop_server(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def load(label, addr, server_pid, *mode_args, connections, watch=None, seconds=MAX_SECONDS,
         warmup=WARMUP, spin=False):
    """One phase: the generator against `addr`, with the server's and the machine's CPU."""
    out = f"{WORK}/{label}.json"
    if spin:
        mode_args = (*mode_args, "--spin")
    argv = ["taskset", "-c", LOAD_CPU, LOAD, "--target", addr, "--testdata", TESTDATA,
            "--connections", str(connections), "--duration", str(seconds), "--warmup", str(warmup),
            "--label", label, "--json", out, *mode_args]
    settled = settle_clickhouse()
    # Open loop: ClickHouse yields CPU 0 to the generator (see clickhouse_nice).
    niced = "--rate" in mode_args and clickhouse_nice(CH_NICE)
    cpu0, ch0, (t0, b0) = proc_cpu(server_pid), proc_cpu(CH_PID), machine_ticks()
    la0 = os.getloadavg()
    stop = threading.Event()
    samples = []
    if watch:
        def sample():
            while not stop.wait(1.0):
                try:
                    samples.append(watch())
                except Exception:
                    pass
        threading.Thread(target=sample, daemon=True).start()
    gen = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    gen_cpu = 0.0
    gen.wait()
    stop.set()
    if niced:
        clickhouse_nice(0)
    if gen.returncode != 0:
        sys.exit(f"tally-load failed in phase {label}")
    cpu1, ch1, (t1, b1) = proc_cpu(server_pid), proc_cpu(CH_PID), machine_ticks()
    with open(out) as f:
        r = json.load(f)
    gen_cpu = r["generator_cpu_s"]
    tick = os.sysconf("SC_CLK_TCK")
    wall_cpu = (t1 - t0) / tick  # CPU-seconds available on all cores during the phase
    busy = (b1 - b0) / tick
    ours = (cpu1 - cpu0) + (ch1 - ch0) + gen_cpu
    answered = sum(r["total"]["statuses"].values())
    r["server"] = {
        "cpu_s": cpu1 - cpu0,
        "cpu_ms_per_1k": (cpu1 - cpu0) / max(answered, 1) * 1e6,
        "core_share": (cpu1 - cpu0) / (wall_cpu / os.cpu_count()),
        "vm_hwm_mib": status_kib(server_pid, "VmHWM") / 1024,
        "vm_rss_mib": status_kib(server_pid, "VmRSS") / 1024,
    }
    r["clickhouse_cpu_s"] = ch1 - ch0
    r["clickhouse_settled_s"] = settled
    r["clickhouse_nice"] = CH_NICE if niced else 0
    r["machine"] = {"busy": busy / wall_cpu, "others": max(busy - ours, 0) / wall_cpu,
                    "loadavg_before": la0, "loadavg_after": os.getloadavg()}
    r["samples"] = samples
    s, m, l = r["server"], r["measured"], r["measured"]["latency_ms"]
    print(f"  {label}: {m['accepted_per_s']:,.0f} accepted/s, p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms, "
          f"p99.9 {l['p999']:.2f} ms, {m['errors']} errors {m['statuses']}; server {s['core_share']:.0%} of "
          f"a core, {s['cpu_ms_per_1k']:.0f} ms CPU per 1k, peak RSS {s['vm_hwm_mib']:.1f} MiB; generator "
          f"{r['generator_core_share']:.0%} of a core; other processes {r['machine']['others']:.0%} of the machine",
          flush=True)
    return r


def half_of(result):
    """Half of a closed-loop phase's accepted/s, the rate of the next phase."""
    rate = round(result["measured"]["accepted_per_s"] / 2)
    if rate < 1:
        sys.exit(f"phase {result['label']} accepted nothing ({result['measured']['statuses']}); see {WORK}")
    return rate


def write_config(path, listen):
    sites = "".join(f'\n[[sites]]\ndomain = "{d}"\n' for d in SITES)
    with open(path, "w") as f:
        f.write(f"""# Written by scripts/bench-ingest.sh; rewritten on every run.
[server]
listen = "{listen}"
# The load generator is the proxy: it sends each visitor's address in X-Forwarded-For.
trusted_proxies = ["127.0.0.1/32"]

[clickhouse]
url = "{CH_URL}"
database = "{DB}"

[privacy]
country_database = "{TESTDATA}/dbip-country.mmdb"

# Nothing to roll up in a benchmark of today's events; the job would only add noise.
[rollups]
enabled = false
{ingest_section()}{sites}""")


def ingest_settings():
    """TALLY_BENCH_INGEST's `key = value` lines (none: tally's defaults)."""
    return [x.strip() for x in E.get("TALLY_BENCH_INGEST", "").split(";") if x.strip()]


def ingest_section():
    lines = ingest_settings()
    return ("\n[ingest]\n" + "\n".join(lines) + "\n") if lines else ""


def ingest_text(lines):
    if not lines:
        return "default `[ingest]` settings (batches of 20,000 rows or 1 s, queue of 50,000)"
    return "`[ingest]` " + ", ".join(f"`{x}`" for x in lines) + " (`TALLY_BENCH_INGEST`; the rest default)"


def tally_phases(label, binary, phases):
    """A fresh database and a fresh tally process for `phases`; then reconciles the counts."""
    config = f"{WORK}/tally.toml"
    write_config(config, LISTEN)
    ch(f"DROP DATABASE IF EXISTS {DB}")
    p = start_server([binary, "serve", "--config", config], LISTEN,
                     {"TALLY_LOG": "warn"}, log=f"{WORK}/{label}.log")
    results = {}
    try:
        queue = lambda: metric_sum(metrics(LISTEN), "tally_queue_depth")
        for name, args, kw in phases(results):
            results[name] = load(f"{label}-{name}", LISTEN, p.pid, *args, watch=queue, **kw)
            results[name]["reconcile"] = reconcile(p.pid, settle=True)
        results["vm_hwm_mib"] = status_kib(p.pid, "VmHWM") / 1024
    finally:
        stop_server(p)
    # After the drain at shutdown, everything accepted must be in ClickHouse.
    results["final_rows"] = int(ch(f"SELECT count() FROM {DB}.events"))
    return results


def settle_clickhouse(limit=60):
    """Waits until ClickHouse merges nothing and is idle (at most `limit` s); returns the seconds.
    ClickHouse shares CPU 0 with the load generator: merges left over from one phase (a maximum
    phase writes a million rows) would take the generator's CPU in the next one, and a generator
    that runs late inflates every latency counted from the request's due time."""
    t0 = time.time()
    while time.time() - t0 < limit:
        c0 = proc_cpu(CH_PID)
        time.sleep(0.5)
        if int(ch("SELECT count() FROM system.merges")) == 0 and proc_cpu(CH_PID) - c0 < 0.025:
            break
    return time.time() - t0


def clickhouse_nice(value):
    """Sets the nice value of every ClickHouse thread; False where that is not allowed.
    In the open-loop phases the latency of each request counts from its due time, so a generator
    that sends late because ClickHouse holds CPU 0 (which the two share on this 2-core machine)
    adds its own delay to tally's p99: 6.2 of 8.4 ms in a run of 2026-12-05. At nice 10,
    ClickHouse gives way whenever the generator wakes, and still has the rest of CPU 0 (at half
    of tally's maximum the generator takes about two thirds). Lowering it back needs root; without
    it the phases run as before, and the Markdown says so."""
    if os.geteuid() != 0:
        return False
    try:
        for tid in os.listdir(f"/proc/{CH_PID}/task"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), value)
            except ProcessLookupError:
                pass  # a thread that ended meanwhile
    except PermissionError:
        return False
    return True


def reconcile(pid, settle):
    """Waits until ClickHouse holds what tally accepted (or 15 s: a flush interval and an insert
    are far less), then compares tally's counters, the generator's answers and the rows."""
    deadline = time.time() + 15
    while True:
        m = metrics(LISTEN)
        accepted = metric_sum(m, "tally_events_accepted_total")
        inserted = metric_sum(m, "tally_rows_inserted_total")
        dropped = metric_sum(m, "tally_events_dropped_total")
        rows = int(ch(f"SELECT count() FROM {DB}.events"))
        if not settle or rows >= accepted or time.time() > deadline:
            break
        time.sleep(0.2)
    return {
        "accepted": int(accepted), "inserted": int(inserted), "dropped": int(dropped),
        "bots": int(metric_sum(m, "tally_bot_beacons_total")),
        "not_tracked": int(metric_sum(m, "tally_beacons_not_tracked_total")),
        "rejected": int(metric_sum(m, "tally_beacons_rejected_total")),
        # Rows that went through the spool (a queue moved there while an insert was slow).
        "spooled": int(metric_sum(m, "tally_rows_spooled_total")),
        "spilled": int(metric_sum(m, "tally_rows_spilled_total")),
        "rows": rows,
    }


def callgrind_costs(path):
    """Self and inclusive instruction counts per function from a callgrind file (its own
    reader: callgrind_annotate 3.19 puts everything on `clone` for dumps of a running process)."""
    names, self_cost, calls = {}, {}, {}
    fn = cfn = None
    after_call = False
    def name(kind, v):
        m = re.match(r"\((\d+)\)(?: (.*))?", v)
        if not m:
            return v
        if m.group(2):
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), v)
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name("fn", line[3:])
            elif line.startswith("cfn="):
                cfn = name("fn", line[4:])
            elif line.startswith("calls="):
                after_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                if after_call:
                    calls[(fn, cfn)] = calls.get((fn, cfn), 0) + int(parts[1])
                    after_call = False
                else:
                    self_cost[fn] = self_cost.get(fn, 0) + int(parts[1])
    inclusive = dict(self_cost)
    for (f, _), c in calls.items():
        inclusive[f] = inclusive.get(f, 0) + c
    return self_cost, inclusive


def callgrind_run(label, argv, addr, ready_path, env_extra):
    out = f"{WORK}/callgrind-{label}.out"
    for f in os.listdir(WORK):
        if f.startswith(f"callgrind-{label}.out"):
            os.remove(f"{WORK}/{f}")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
                         env=dict(E, TOKIO_WORKER_THREADS="1", **env_extra),
                         stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/callgrind-{label}.log", "w"))
    for _ in range(600):
        try:
            http_get(addr, ready_path, timeout=2)
            break
        except urllib.error.HTTPError:
            break
        except Exception:
            time.sleep(0.5)
    gen = [LOAD, "--target", addr, "--testdata", TESTDATA, "--connections", "4", "--duration", "900"]
    # One untimed round first: lazy initialisation (regex compilation, first buffers, the
    # user-agent verdicts of the pool's first agents) is not the steady per-beacon cost.
    subprocess.run(gen + ["--requests", "5000"], stdout=subprocess.DEVNULL, check=True)
    subprocess.run(["callgrind_control", "--zero", str(p.pid)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(gen + ["--requests", str(CALLGRIND_BEACONS), "--json", f"{WORK}/callgrind-{label}-load.json"],
                   stdout=subprocess.DEVNULL, check=True)
    subprocess.run(["callgrind_control", "--dump=beacons", str(p.pid)], check=True, stdout=subprocess.DEVNULL)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=300)
    dump = f"{out}.1"
    self_cost, inclusive = callgrind_costs(dump)
    total = sum(self_cost.values())
    return total / CALLGRIND_BEACONS, self_cost, inclusive, dump


def callgrind():
    """Instructions per request: tally-bare and tally under callgrind, counters zeroed after
    start-up and a warm-up round, dumped after exactly CALLGRIND_BEACONS requests."""
    config = f"{WORK}/tally.toml"
    write_config(config, LISTEN)
    ch(f"DROP DATABASE IF EXISTS {DB}")
    bare, _, _, _ = callgrind_run("bare", ["target/release/tally-bare", "--listen", BARE], BARE, "/", {})
    per, self_cost, inclusive, dump = callgrind_run(
        "tally", [f"{WORK}/tally", "serve", "--config", config], LISTEN, "/readyz", {"TALLY_LOG": "warn"})
    print(f"\ninstructions per request (user space, all threads; {CALLGRIND_BEACONS:,} requests after a "
          f"5,000-request warm-up): tally-bare {bare:,.0f}, tally {per:,.0f} (bare/tally = {bare / per:.0%})")
    print(f"dump: {dump}\n\nself cost per beacon, top 30:")
    for f, c in sorted(self_cost.items(), key=lambda x: -x[1])[:30]:
        print(f"  {c / CALLGRIND_BEACONS:9,.0f}  {f[:140]}")
    print("\ninclusive cost per beacon of tally's own steps and the stack's:")
    keys = ["Ingest::accept", "Classifier::inspect", "Visitors::id", "reduce_page", "reduce_referrer",
            "Beacon::parse", "TrustedProxies::client_ip", "CountryDb::country", "source::source",
            "http::allowed_origin", "writer::", "Http1Transaction>::parse", "Http1Transaction>::encode",
            "zeroizing_alloc", "__rust_dealloc", "__rust_alloc"]
    for k in keys:
        best = max(((c, f) for f, c in inclusive.items() if f and k in f), default=None)
        if best:
            print(f"  {best[0] / CALLGRIND_BEACONS:9,.0f}  {best[1][:140]}")


def fmt_row(name, r):
    m, l, s = r["measured"], r["measured"]["latency_ms"], r["server"]
    rate = f"{r['target_rate']:,.0f}/s" if r.get("target_rate") else "max"
    other = {k: v for k, v in m["statuses"].items() if not 200 <= int(k) < 300}
    errors = f"{m['errors']:,}" + (f" ({', '.join(f'{v:,}× {k}' for k, v in other.items())})" if other else "")
    return (f"| {name} | {rate} | {m['accepted_per_s']:,.0f} | {l['p50']:.2f} | {l['p99']:.2f} | "
            f"{l['p999']:.2f} | {errors} | {s['core_share']:.0%} | {s['cpu_ms_per_1k']:.0f} | "
            f"{s['vm_hwm_mib']:.1f} | {r['machine']['others']:.0%} |")


def machine():
    def lscpu(field):
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(rf"^{field}:\s*(.+)$", out, re.M)
        return m.group(1).strip() if m else "?"
    with open("/proc/meminfo") as f:
        mem = next((f"{int(l.split()[1]) / 1024 / 1024:.1f} GiB" for l in f if l.startswith("MemTotal:")), "?")
    with open("/etc/os-release") as f:
        m = re.search(r'^PRETTY_NAME="?([^"\n]+)', f.read(), re.M)
    hv = lscpu("Hypervisor vendor")
    return (f"{lscpu('Model name')}, {os.cpu_count()} cores{' (' + hv + ' VM)' if hv != '?' else ''}, "
            f"{mem} RAM, {m.group(1) if m else '?'}, kernel {platform.release()}")


def main():
    if MODE == "callgrind":
        callgrind()
        return
    if MODE == "report":
        with open(f"{WORK}/results.json") as f:
            res = json.load(f)
        md = markdown(res)
        print(md)
        if E["BENCH_MARKDOWN"] == "1":
            write_markdown(md)
        return
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {}
    print("\n== tally-bare (the HTTP stack's limit) on CPU 1", flush=True)
    bare = start_server(["target/release/tally-bare", "--listen", BARE], BARE)
    try:
        res["bare_max"] = load("bare-max", BARE, bare.pid, "--max", connections=MAX_CONNECTIONS)
        half = half_of(res["bare_max"])
        res["bare_half"] = load("bare-half", BARE, bare.pid, "--rate", str(half), connections=RATE_CONNECTIONS)
    finally:
        stop_server(bare)

    def full_phases(results):
        yield "steady", ("--rate", str(STEADY_RATE)), dict(connections=RATE_CONNECTIONS, seconds=STEADY_SECONDS)
        results["steady_hwm_mib"] = results["steady"]["server"]["vm_hwm_mib"]
        yield "max", ("--max",), dict(connections=MAX_CONNECTIONS)
        half = half_of(results["max"])
        yield "half", ("--rate", str(half)), dict(connections=RATE_CONNECTIONS)

    def short_phases(results):
        yield "max", ("--max",), dict(connections=MAX_CONNECTIONS)
        half = half_of(results["max"])
        yield "half", ("--rate", str(half)), dict(connections=RATE_CONNECTIONS)

    print("\n== tally serve (zero-on-free allocator, as shipped) on CPU 1", flush=True)
    res["tally"] = tally_phases("tally", f"{WORK}/tally", full_phases)
    if os.path.exists(f"{WORK}/tally-plain-alloc"):
        print("\n== tally serve built with --features plain-alloc on CPU 1", flush=True)
        res["plain"] = tally_phases("tally-plain-alloc", f"{WORK}/tally-plain-alloc", short_phases)
    res["alternating"] = alternating()
    res["started"] = started.strftime("%Y-%m-%d %H:%M UTC")
    res["spin"] = SPIN
    res["ingest"] = ingest_settings()
    res["clickhouse_version"] = ch("SELECT version()")
    res["command"], res["built_from"], res["machine_text"] = E["BENCH_COMMAND"], E["BENCH_BUILT_FROM"], machine()
    with open(f"{WORK}/results.json", "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    print("\n" + md)
    if E["BENCH_MARKDOWN"] == "1":
        write_markdown(md)
        print("\n(written into BENCHMARKS.md, section Ingest)")


def alternating():
    """Bare, then tally, ALT_ROUNDS times, each at its maximum for ALT_SECONDS in a fresh process:
    the pairs that the ratio is read from."""
    rounds = []
    for i in range(1, ALT_ROUNDS + 1):
        print(f"\n== alternating round {i} of {ALT_ROUNDS}: tally-bare, then tally, at maximum", flush=True)
        bare = start_server(["target/release/tally-bare", "--listen", BARE], BARE)
        try:
            b = load(f"alt{i}-bare", BARE, bare.pid, "--max", connections=MAX_CONNECTIONS, seconds=ALT_SECONDS,
                     spin=SPIN)
        finally:
            stop_server(bare)
        one = lambda results: iter([("max", ("--max",),
                                     dict(connections=MAX_CONNECTIONS, seconds=ALT_SECONDS, spin=SPIN))])
        t = tally_phases(f"alt{i}-tally", f"{WORK}/tally", one)
        rounds.append({"bare": b, "tally": t["max"], "final_rows": t["final_rows"]})
    return rounds


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def alternating_text(rounds, spin=None):
    """The rounds' table, their median ratios, and whether each round's rows match."""
    lines = ["", f"Alternating maximum runs ({len(rounds)} rounds; in each, tally-bare then tally, "
             f"{ALT_SECONDS} s measured after {WARMUP} s warm-up, each in a fresh process and tally on a "
             "fresh database; the same connections and traffic as above"
             + ("; the generator polls its sockets instead of sleeping until an answer comes (`--spin`), "
                "so that waking it is not charged to the server" if spin else
                "; the generator sleeps until an answer comes (`TALLY_BENCH_SPIN=0`)" if spin is False else "")
             + "):", "",
             "| round | bare accepted/s | tally accepted/s | tally / bare | bare CPU ms per 1k | "
             "tally CPU ms per 1k | tally / bare by CPU | tally p99 ms | generator's share of CPU 0 (bare, tally) | "
             "ClickHouse CPU (tally's round) | others' CPU (bare, tally) | rows = accepted |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |"]
    thr, cpu, ok_all = [], [], True
    for i, r in enumerate(rounds, 1):
        b, t = r["bare"], r["tally"]
        bm, tm = b["measured"]["accepted_per_s"], t["measured"]["accepted_per_s"]
        bc, tc = b["server"]["cpu_ms_per_1k"], t["server"]["cpu_ms_per_1k"]
        thr.append(tm / bm)
        cpu.append(bc / tc if tc else 0)
        gen_ok = sum(v for k, v in t["total"]["statuses"].items() if 200 <= int(k) < 300)
        ok, _ = reconcile_text("", t["reconcile"], gen_ok)
        ok = ok and r["final_rows"] == t["reconcile"]["accepted"]
        ok_all &= ok
        lines.append(f"| {i} | {bm:,.0f} | {tm:,.0f} | {tm / bm:.0%} | {bc:.1f} | {tc:.1f} | {cpu[-1]:.0%} | "
                     f"{t['measured']['latency_ms']['p99']:.2f} | {b['generator_core_share']:.0%}, "
                     f"{t['generator_core_share']:.0%} | {t['clickhouse_cpu_s'] / (ALT_SECONDS + WARMUP):.0%} "
                     f"of a core | {b['machine']['others']:.0%}, "
                     f"{t['machine']['others']:.0%} | {'yes' if ok else 'NO'} ({t['reconcile']['rows']:,} rows) |")
    lines.append("")
    lines.append(f"**Median tally / bare over the alternating rounds: {median(thr):.0%} by throughput "
                 f"(rounds {', '.join(f'{x:.0%}' for x in thr)}), {median(cpu):.0%} by CPU per request "
                 f"(rounds {', '.join(f'{x:.0%}' for x in cpu)}).**  ")
    return lines, median(thr), median(cpu), ok_all


def reconcile_text(name, r, gen_total):
    """Generator's 2xx answers = accepted + bots + not tracked; rows = accepted."""
    c = r
    answered_ok = c["accepted"] + c["bots"] + c["not_tracked"]
    ok = c["rows"] == c["accepted"] and c["dropped"] == 0 and answered_ok == gen_total
    return ok, (f"{name}: the generator got {gen_total:,} answers 2xx = {c['accepted']:,} events accepted + "
                f"{c['bots']:,} bots + {c['not_tracked']:,} not tracked; ClickHouse holds {c['rows']:,} rows "
                f"({c['dropped']:,} dropped"
                + (f"; {c['spooled']:,} of them through the spool" if c.get("spooled") else "")
                + f"): {'match' if ok else 'MISMATCH'}")


def markdown(res):
    t, p, b = res["tally"], res.get("plain"), res["bare_max"]
    tm, bm = t["max"]["measured"]["accepted_per_s"], b["measured"]["accepted_per_s"]
    steady, half = t["steady"], t["half"]
    machines = [x["machine"] for x in (b, res["bare_half"], steady, t["max"], half)]
    if p:
        machines += [p["max"]["machine"], p["half"]["machine"]]
    pool = b["pool"]
    lines = []
    lines.append(f"Run of {res['started']}: `{res.get('command', E['BENCH_COMMAND'])}`  ")
    lines.append(f"Machine: {res.get('machine_text') or machine()}. Other processes used {min(m['others'] for m in machines):.0%}–"
                 f"{max(m['others'] for m in machines):.0%} of the machine's CPU time during the phases "
                 f"(last column).  ")
    lines.append(f"tally `{res.get('built_from', E['BENCH_BUILT_FROM'])}`, release build; ClickHouse {res['clickhouse_version']} "
                 f"(`scripts/clickhouse.sh` settings), {ingest_text(res.get('ingest', []))}, DB-IP country database.  ")
    lines.append(f"Each server on CPU 1 with `TOKIO_WORKER_THREADS=1`; load generator and ClickHouse on "
                 f"CPU 0. Traffic: a pool of {pool['requests']:,} requests (seed 1) cycled: "
                 f"{pool['pageviews']:,} pageviews, {pool['engagements']:,} engagements, {pool['bots']:,} "
                 f"bot beacons, {pool['with_query']:,} URLs with a query string ({pool['with_utm']:,} with "
                 f"`utm_`), {pool['ipv6']:,} from IPv6 addresses, {pool['distinct_user_agents']:,} distinct "
                 f"user agents, five sites, {pool['mean_request_bytes']} bytes per request on average. "
                 f"Closed loop (max): {MAX_CONNECTIONS} keep-alive connections; open loop (rate): "
                 f"{RATE_CONNECTIONS} connections, latency from each request's due time. "
                 f"{WARMUP} s warm-up, then {MAX_SECONDS} s measured ({STEADY_SECONDS} s at 10k/s).")
    nices = {x.get("clickhouse_nice", 0) for x in (res["bare_half"], steady, half)}
    lines[-1] += (f" In the open-loop phases ClickHouse ran at nice {max(nices)}, so that it gives CPU 0 "
                  "to the generator whenever a request is due; the maximum phases and rounds run it at 0."
                  if nices != {0} else " ClickHouse at its normal priority in every phase.")
    lines.append("")
    lines.append("| server | load | accepted/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU | "
                 "CPU ms per 1k | peak RSS MiB | others' CPU |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    lines.append(fmt_row("tally-bare (204)", b))
    lines.append(fmt_row("tally-bare (204), half of its max", res["bare_half"]))
    lines.append(fmt_row("tally, steady 10k/s", steady))
    lines.append(fmt_row("tally", t["max"]))
    lines.append(fmt_row("tally, half of its max", half))
    if p:
        lines.append(fmt_row("tally `plain-alloc`", p["max"]))
        lines.append(fmt_row("tally `plain-alloc`, half of its max", p["half"]))
    lines.append("")
    lines.append("Peak RSS is the process's high-water mark (`VmHWM`) at the end of each phase (tally's "
                 "phases run in one process, in the order of the table). CPU ms per 1k: the server's "
                 "user + system CPU over the phase (warm-up included) per 1,000 requests answered.  ")
    if p:
        pm = p["max"]["measured"]["accepted_per_s"]
        lines.append(f"**tally / bare: {tm / bm:.0%}** of the stack's maximum ({tm:,.0f} vs {bm:,.0f} "
                     f"accepted/s); built with `plain-alloc` (no zero-on-free) {pm / bm:.0%} ({pm:,.0f}/s): "
                     f"the shipped allocator's throughput is {tm / pm:.0%} of the plain one's, at "
                     f"{t['max']['server']['cpu_ms_per_1k']:.0f} vs {p['max']['server']['cpu_ms_per_1k']:.0f} "
                     f"ms CPU per 1k beacons.  ")
    else:
        lines.append(f"**tally / bare: {tm / bm:.0%}** of the stack's maximum ({tm:,.0f} vs {bm:,.0f} "
                     f"accepted/s); no `plain-alloc` build in this run (`TALLY_BENCH_PLAIN=0`).  ")
    # What each would take with a core to itself: the measured CPU per request, inverted. On a
    # machine where other processes take part of the server's core, this is the figure that
    # compares; accepted/s above is what the server got done with the share it was given.
    cap = lambda r: 1e6 / r["server"]["cpu_ms_per_1k"] if r["server"]["cpu_ms_per_1k"] else 0
    tc, bc = cap(t["max"]), cap(b)
    plain_cap = f", `plain-alloc` {cap(p['max']):,.0f}" if p else ""
    lines.append(f"Per core-second of the server's own CPU at maximum load (1,000 ÷ CPU ms per 1k): "
                 f"tally-bare {bc:,.0f}, tally {tc:,.0f}{plain_cap} requests: **tally / bare "
                 f"{tc / bc:.0%} by CPU cost**; the server's share of its core in that phase was "
                 f"{b['server']['core_share']:.0%} (bare) and {t['max']['server']['core_share']:.0%} (tally).  ")
    qmax = max(steady.get("samples") or [0])
    ok_all = True
    rec = []
    gen = 0
    for name in ("steady", "max", "half"):
        gen += sum(v for k, v in t[name]["total"]["statuses"].items() if 200 <= int(k) < 300)
        ok, text = reconcile_text(f"after {name}", t[name]["reconcile"], gen)
        ok_all &= ok
        rec.append(text)
    lines.append(f"ClickHouse kept up at 10k/s: largest queue depth sampled each second {qmax:,.0f} "
                 f"(of 50,000); ClickHouse used {steady['clickhouse_cpu_s']:.1f} s CPU in that phase "
                 f"({steady['clickhouse_cpu_s'] / (STEADY_SECONDS + WARMUP):.0%} of a core).  ")
    lines.append("Reconciliation (tally's `/metrics` against the generator and `SELECT count()`), "
                 "cumulative over tally's phases: " + "; ".join(rec) +
                 f"; after shutdown {t['final_rows']:,} rows.  ")
    alt = res.get("alternating")
    if alt:
        alt_lines, thr, cpu, alt_ok = alternating_text(alt, res.get("spin"))
        lines.extend(alt_lines)
        ok_all &= alt_ok
        goal_thr = [(f"throughput ≥ 70 % of bare (median of the alternating rounds): {thr:.0%}", thr >= 0.7),
                    (f"CPU per request ≥ 70 % of bare's rate (median): {cpu:.0%}", cpu >= 0.7)]
    else:  # a results.json from before the alternating rounds
        goal_thr = [(f"throughput ≥ 70 % of bare: {tm / bm:.0%}", tm / bm >= 0.7)]
    goals = goal_thr + [
        (f"p99 < 5 ms at half of tally's max ({half['target_rate']:,.0f}/s): "
         f"{half['measured']['latency_ms']['p99']:.2f} ms (of which the generator's own delay before sending, p99: "
         f"{half['measured']['send_delay_ms']['p99']:.2f} ms)", half["measured"]["latency_ms"]["p99"] < 5),
        (f"RSS < 64 MiB at 10k/s: {t['steady_hwm_mib']:.1f} MiB", t["steady_hwm_mib"] < 64),
        (f"rows written = beacons accepted: {'yes' if ok_all else 'no'}", ok_all),
    ]
    lines.append("Goals: " + "; ".join(f"{g} ({'reached' if ok else 'missed'})" for g, ok in goals) + ".")
    return "\n".join(lines)


BEGIN = "<!-- bench-ingest:begin (written by scripts/bench-ingest.sh; edits here are overwritten) -->"
END = "<!-- bench-ingest:end -->"


def write_markdown(md):
    with open("BENCHMARKS.md") as f:
        text = f.read()
    block = f"{BEGIN}\n{md}\n{END}"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Ingest\n\n" + block + "\n"
    with open("BENCHMARKS.md", "w") as f:
        f.write(text)


main()
PY
