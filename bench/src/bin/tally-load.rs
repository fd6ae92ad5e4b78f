//! `tally-load`: sends realistic beacons (see `tally_bench::traffic`) over keep-alive
//! connections and reports accepted/s, latency percentiles and errors, as text and JSON.
//!
//! Modes: `--max` (closed loop: each connection sends its next request when the previous answer
//! is in), `--rate R` (open loop: request i is due at start + i/R whatever the server does, a
//! free connection sends it, and its latency is measured from when it was due, so a stalled
//! server shows up in the percentiles instead of slowing the generator: no coordinated
//! omission), `--requests N` (closed loop, exactly N requests, for profiling). Every run is
//! bounded by `--warmup` + `--duration` (plus a grace for answers still due), and only requests
//! due (or, closed loop, sent) after the warm-up are measured. The generator runs on one thread.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use serde::Serialize;
use tally_bench::client::Connection;
use tally_bench::traffic::{self, PoolStats, Request, TrafficConfig};
use tokio::sync::{mpsc, Mutex};

/// How long one request may take before it counts as an error and the connection is replaced.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After the run's end, answers to requests already due are awaited this long.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "tally-load",
    about = "Realistic beacon load for tally (or tally-bare)"
)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Folder with the user-agent corpora (scripts/testdata.sh).
    #[arg(long, default_value = ".cache/testdata")]
    testdata: PathBuf,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Open loop at this many requests per second.
    #[arg(long, conflicts_with_all = ["max", "requests"])]
    rate: Option<f64>,
    /// Closed loop, as fast as the server answers.
    #[arg(long, conflicts_with = "requests")]
    max: bool,
    /// Closed loop, exactly this many requests (no warm-up).
    #[arg(long)]
    requests: Option<u64>,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct requests built up front; the run cycles through them.
    #[arg(long, default_value_t = 50_000)]
    pool: usize,
    /// Share of visits by bots.
    #[arg(long, default_value_t = 0.05)]
    bot_share: f64,
    /// Chance of an engagement beacon after a pageview.
    #[arg(long, default_value_t = 0.25)]
    engagement_share: f64,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A name for this run in the output.
    #[arg(long, default_value = "run")]
    label: String,
    /// Never sleep waiting for answers: poll the sockets in a loop instead. On one machine
    /// an idle generator is woken by the server's answer, and on loopback that wake-up
    /// (a cross-CPU interrupt, costly in a VM) runs in the server's send and is charged to
    /// the server; a generator on another host would cost the server nothing of it.
    #[arg(long)]
    spin: bool,
}

#[derive(Clone, Copy)]
enum Mode {
    Max,
    Rate(f64),
    Requests(u64),
}

/// One connection task's counts.
struct Counts {
    latency_us: Histogram<u64>,
    /// Open loop: how late the generator itself sent (from due to the write), a check on it.
    send_delay_us: Histogram<u64>,
    measured_statuses: BTreeMap<u16, u64>,
    measured_errors: u64,
    statuses: BTreeMap<u16, u64>,
    ok_bots: u64,
    ok_engagements: u64,
    errors: u64,
    reconnects: u64,
}

impl Counts {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            send_delay_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            measured_statuses: BTreeMap::new(),
            measured_errors: 0,
            statuses: BTreeMap::new(),
            ok_bots: 0,
            ok_engagements: 0,
            errors: 0,
            reconnects: 0,
        }
    }

    fn merge(&mut self, o: Counts) {
        self.latency_us.add(&o.latency_us).expect("same bounds");
        self.send_delay_us
            .add(&o.send_delay_us)
            .expect("same bounds");
        for (k, v) in o.measured_statuses {
            *self.measured_statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.measured_errors += o.measured_errors;
        self.ok_bots += o.ok_bots;
        self.ok_engagements += o.ok_engagements;
        self.errors += o.errors;
        self.reconnects += o.reconnects;
    }
}

/// What all connection tasks share (one thread: `Rc`).
struct Shared {
    pool: Vec<Request>,
    target: SocketAddr,
    mode: Mode,
    /// Start of the measurement (end of the warm-up) and of the run's end.
    measure_from: Instant,
    end: Instant,
    next: std::cell::Cell<u64>,
    /// Open loop: due times, from the pacer thread.
    due: Mutex<mpsc::UnboundedReceiver<(u64, Instant)>>,
    unsent: std::cell::Cell<u64>,
}

impl Shared {
    /// The next request to send and the instant its latency counts from.
    async fn next(&self) -> Option<(u64, Instant)> {
        match self.mode {
            Mode::Rate(_) => {
                let mut rx = self.due.lock().await;
                let (i, due) = rx.recv().await?;
                if Instant::now() > self.end + GRACE {
                    // The server fell so far behind that this request is still waiting for a
                    // connection after the run: not sent, counted.
                    self.unsent.set(self.unsent.get() + 1 + rx.len() as u64);
                    rx.close();
                    while rx.try_recv().is_ok() {}
                    return None;
                }
                Some((i, due))
            }
            Mode::Max => {
                let now = Instant::now();
                if now >= self.end {
                    return None;
                }
                let i = self.next.get();
                self.next.set(i + 1);
                Some((i, now))
            }
            Mode::Requests(n) => {
                let i = self.next.get();
                if i >= n || Instant::now() >= self.end {
                    return None;
                }
                self.next.set(i + 1);
                Some((i, Instant::now()))
            }
        }
    }
}

async fn connection_task(shared: Rc<Shared>) -> Counts {
    let mut counts = Counts::new();
    let mut conn: Option<Connection> = None;
    while let Some((i, from)) = shared.next().await {
        let request = &shared.pool[(i % shared.pool.len() as u64) as usize];
        if conn.is_none() {
            match Connection::open(shared.target).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    counts.errors += 1;
                    if from >= shared.measure_from {
                        counts.measured_errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let measured = from >= shared.measure_from && from < shared.end;
        if measured {
            counts
                .send_delay_us
                .saturating_record(from.elapsed().as_micros().max(1) as u64);
        }
        let result = tokio::time::timeout(REQUEST_TIMEOUT, c.send(&request.bytes)).await;
        match result {
            Ok(Ok(response)) => {
                *counts.statuses.entry(response.status).or_default() += 1;
                if (200..300).contains(&response.status) {
                    counts.ok_bots += u64::from(request.bot);
                    counts.ok_engagements += u64::from(request.engagement);
                }
                if measured {
                    let us = from.elapsed().as_micros().max(1) as u64;
                    counts.latency_us.saturating_record(us);
                    *counts.measured_statuses.entry(response.status).or_default() += 1;
                }
                if response.close {
                    conn = None;
                    counts.reconnects += 1;
                }
            }
            Ok(Err(_)) | Err(_) => {
                counts.errors += 1;
                if measured {
                    counts.measured_errors += 1;
                }
                conn = None;
                counts.reconnects += 1;
            }
        }
    }
    counts
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

#[derive(Serialize)]
struct Measured {
    seconds: f64,
    requests: u64,
    accepted: u64,
    accepted_per_s: f64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    /// Milliseconds; open loop: from when the request was due.
    latency_ms: Latency,
    /// Milliseconds from due (or, closed loop, from the request's turn) to the generator's
    /// write: the generator's own share of the latency.
    send_delay_ms: Latency,
}

#[derive(Serialize)]
struct Totals {
    /// Every answer, warm-up included (for reconciling with the server's counters).
    statuses: BTreeMap<u16, u64>,
    accepted: u64,
    accepted_bots: u64,
    accepted_engagements: u64,
    errors: u64,
    reconnects: u64,
    unsent: u64,
}

#[derive(Serialize)]
struct Report {
    label: String,
    mode: &'static str,
    target_rate: Option<f64>,
    connections: usize,
    warmup_s: f64,
    measured: Measured,
    total: Totals,
    /// CPU seconds the generator used, and that as a share of one core over the run.
    generator_cpu_s: f64,
    generator_core_share: f64,
    pool: PoolStats,
    seed: u64,
}

/// utime + stime of this process, in seconds (/proc clock ticks are 1/100 s on Linux).
fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mode = match (args.rate, args.max, args.requests) {
        (Some(r), _, _) if r > 0.0 => Mode::Rate(r),
        (Some(_), _, _) => bail!("--rate must be positive"),
        (None, true, _) => Mode::Max,
        (None, false, Some(n)) => Mode::Requests(n),
        (None, false, None) => bail!("give --max, --rate R or --requests N"),
    };
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let corpora = traffic::Corpora::load(&args.testdata)?;
    let (pool, pool_stats) = traffic::pool(
        &corpora,
        &TrafficConfig {
            seed: args.seed,
            pool: args.pool.max(1),
            bot_share: args.bot_share,
            engagement_share: args.engagement_share,
            host: args.target.to_string(),
        },
    );
    drop(corpora);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let warmup = match mode {
        Mode::Requests(_) => Duration::ZERO,
        _ => Duration::from_secs_f64(args.warmup),
    };
    let duration = Duration::from_secs_f64(args.duration);
    let cpu_before = own_cpu_seconds();
    let wall = Instant::now();
    let (counts, unsent, measured_seconds) = runtime.block_on(async {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + duration;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Rc::new(Shared {
            pool,
            target: args.target,
            mode,
            measure_from,
            end,
            next: 0.into(),
            due: Mutex::new(rx),
            unsent: 0.into(),
        });
        // The pacer: a thread with a precise sleep hands out due times (tokio's timer has
        // millisecond steps, which would add up to a millisecond to every latency).
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pacer = if let Mode::Rate(rate) = mode {
            let stop = stop.clone();
            Some(std::thread::spawn(move || {
                let mut i: u64 = 0;
                loop {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    if due >= end || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if tx.send((i, due)).is_err() {
                        break;
                    }
                    i += 1;
                }
            }))
        } else {
            drop(tx);
            None
        };
        let local = tokio::task::LocalSet::new();
        let mut tasks = Vec::new();
        for _ in 0..args.connections {
            tasks.push(local.spawn_local(connection_task(shared.clone())));
        }
        // A task that is always ready keeps the runtime from parking in `epoll_wait` with a
        // timeout: each yield polls the sockets without blocking. Dropped with the LocalSet.
        if args.spin {
            local.spawn_local(async {
                loop {
                    tokio::task::yield_now().await;
                }
            });
        }
        let counts = local
            .run_until(async {
                let mut all = Counts::new();
                for t in tasks {
                    all.merge(t.await.expect("a connection task panicked"));
                }
                all
            })
            .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(p) = pacer {
            let _ = p.join();
        }
        let measured = match mode {
            Mode::Requests(_) => start.elapsed(),
            _ => duration,
        };
        (counts, shared.unsent.get(), measured.as_secs_f64())
    });
    let cpu = own_cpu_seconds() - cpu_before;
    let wall = wall.elapsed().as_secs_f64();

    let ok = |m: &BTreeMap<u16, u64>| {
        m.iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let measured_requests: u64 =
        counts.measured_statuses.values().sum::<u64>() + counts.measured_errors;
    let measured_ok = ok(&counts.measured_statuses);
    let latency = |h: &Histogram<u64>| Latency {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    };
    let report = Report {
        label: args.label.clone(),
        mode: match mode {
            Mode::Max => "max",
            Mode::Rate(_) => "rate",
            Mode::Requests(_) => "requests",
        },
        target_rate: args.rate,
        connections: args.connections,
        warmup_s: warmup.as_secs_f64(),
        measured: Measured {
            seconds: measured_seconds,
            requests: measured_requests,
            accepted: measured_ok,
            accepted_per_s: measured_ok as f64 / measured_seconds,
            errors: measured_requests - measured_ok,
            statuses: counts.measured_statuses.clone(),
            latency_ms: latency(&counts.latency_us),
            send_delay_ms: latency(&counts.send_delay_us),
        },
        total: Totals {
            accepted: ok(&counts.statuses),
            statuses: counts.statuses.clone(),
            accepted_bots: counts.ok_bots,
            accepted_engagements: counts.ok_engagements,
            errors: counts.errors,
            reconnects: counts.reconnects,
            unsent,
        },
        generator_cpu_s: cpu,
        generator_core_share: cpu / wall,
        pool: pool_stats,
        seed: args.seed,
    };
    let m = &report.measured;
    let l = &m.latency_ms;
    eprintln!(
        "{}: {:.0} accepted/s over {:.0} s ({} requests, {} not 2xx; statuses {:?}); latency ms p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} (of which the generator's send delay p99 {:.3}); generator used {:.0} % of a core",
        report.label,
        m.accepted_per_s,
        m.seconds,
        m.requests,
        m.errors,
        m.statuses,
        l.p50,
        l.p99,
        l.p999,
        l.max,
        m.send_delay_ms.p99,
        report.generator_core_share * 100.0
    );
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}
