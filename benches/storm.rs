//! An error storm: errors counted per second through `ServerErrorHandler::on_error` of one
//! `ReportingErrorHandler` (Prometheus recorder installed, periodic task running), at 1, 2 and 4
//! threads, every thread on one route or each on its own; beside the same bookkeeping (find the
//! group, count it, keep the first sample, add to the Prometheus counter) done with a shared
//! `AtomicU64` per group and with one `Mutex` around the groups.
//!
//! Contenders alternate within each round; each cell is the median of ROUNDS rounds (default 5),
//! each thread doing ITERS errors (default 2000000). Prints a Markdown table with each count's
//! ratio to its own 1-thread figure.
//!
//!   cargo bench -p unhandled-benches --bench storm
//!   ROUNDS=7 ITERS=5000000 cargo bench -p unhandled-benches --bench storm

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::http::Method;
use metrics::Counter;
use parking_lot::Mutex;
use unhandled::{Error, ErrorContext, ErrorKind, ReportingErrorHandler, ServerErrorHandler};
use unhandled_benches::{THREADS, parallel};

const ROUTES: [&str; 4] = ["/r0", "/r1", "/r2", "/r3"];

/// One way of counting an error of `route`.
trait Storm: Send + Sync + 'static {
    fn record(&self, error: &Error, route: &'static str);
}

impl Storm for ReportingErrorHandler {
    fn record(&self, error: &Error, route: &'static str) {
        let context = ErrorContext::new(&Method::GET, route, Some(route), ErrorKind::Error);
        let _ = self.on_error(error, &context);
    }
}

fn counter(route: &'static str) -> Counter {
    metrics::counter!("storm_errors_total", "route" => route, "kind" => "error")
}

/// A shared `AtomicU64` per group, a sample slot per group.
struct SharedAtomic {
    groups: Vec<AtomicGroup>,
    total: AtomicU64,
}

struct AtomicGroup {
    route: &'static str,
    count: AtomicU64,
    sample_wanted: AtomicBool,
    sample: Mutex<Option<Error>>,
    counter: Counter,
}

impl SharedAtomic {
    fn new() -> Self {
        let groups = ROUTES
            .iter()
            .map(|&route| AtomicGroup {
                route,
                count: AtomicU64::new(0),
                sample_wanted: AtomicBool::new(true),
                sample: Mutex::new(None),
                counter: counter(route),
            })
            .collect();
        Self {
            groups,
            total: AtomicU64::new(0),
        }
    }
}

impl Storm for SharedAtomic {
    fn record(&self, error: &Error, route: &'static str) {
        let group = self
            .groups
            .iter()
            .find(|group| group.route == route)
            .expect("known route");
        let wanted = &group.sample_wanted;
        if wanted.load(Ordering::Relaxed) && wanted.swap(false, Ordering::Acquire) {
            *group.sample.lock() = Some(error.clone());
        }
        group.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        group.counter.increment(1);
    }
}

/// One mutex around the groups (what `unhandled` did before 0.2).
struct Locked(Mutex<LockedGroups>);

#[derive(Default)]
struct LockedGroups {
    groups: HashMap<&'static str, (u64, Option<Error>, Counter)>,
    total: u64,
}

impl Storm for Locked {
    fn record(&self, error: &Error, route: &'static str) {
        let mut groups = self.0.lock();
        groups.total += 1;
        let (count, sample, counter) = groups
            .groups
            .entry(route)
            .or_insert_with(|| (0, None, counter(route)));
        *count += 1;
        if sample.is_none() {
            *sample = Some(error.clone());
        }
        counter.increment(1);
    }
}

/// Errors per second of `storm` on `threads` threads, each doing `iters`.
fn rate<T: Storm>(
    storm: &Arc<T>,
    threads: usize,
    iters: u64,
    distinct: bool,
    runtime: &tokio::runtime::Handle,
) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let (storm, runtime) = (Arc::clone(storm), runtime.clone());
    let elapsed = parallel(threads, iters, move || {
        let storm = Arc::clone(&storm);
        let runtime = runtime.clone();
        let index = next.fetch_add(1, Ordering::Relaxed) as usize;
        let route = if distinct {
            ROUTES[index % ROUTES.len()]
        } else {
            ROUTES[0]
        };
        let error = Error::msg("the database is down");
        move |iters| {
            let _runtime = runtime.enter();
            for _ in 0..iters {
                storm.record(std::hint::black_box(&error), route);
            }
        }
    });
    (threads as u64 * iters) as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let iters: u64 = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("no recorder installed yet");

    let reporting = Arc::new(
        ReportingErrorHandler::builder()
            .interval(Duration::from_secs(3600))
            .build(),
    );
    let atomic = Arc::new(SharedAtomic::new());
    let locked = Arc::new(Locked(Mutex::default()));
    // Warm up: open every group, start the periodic task.
    for route in ROUTES {
        let _guard = runtime.enter();
        let error = Error::msg("warm-up");
        reporting.record(&error, route);
        atomic.record(&error, route);
        locked.record(&error, route);
    }

    let names = [
        "unhandled (striped, lock-free)",
        "shared AtomicU64",
        "Mutex",
    ];
    // rates[contender][distinct][threads index] = the rate of each round. A round measures
    // 1, 2 and 4 threads back to back for each contender, so that the ratios compare runs that
    // the other tenants of this machine disturbed alike.
    let mut rates = vec![vec![vec![Vec::new(); THREADS.len()]; 2]; names.len()];
    let handle = runtime.handle();
    for _ in 0..rounds {
        for distinct in [false, true] {
            let d = usize::from(distinct);
            for (c, contender) in rates.iter_mut().enumerate() {
                for (t, &threads) in THREADS.iter().enumerate() {
                    let rate = match c {
                        0 => rate(&reporting, threads, iters, distinct, handle),
                        1 => rate(&atomic, threads, iters, distinct, handle),
                        _ => rate(&locked, threads, iters, distinct, handle),
                    };
                    contender[d][t].push(rate);
                }
            }
        }
    }
    // Every error was counted exactly: the striped counts add up.
    let expected = ROUTES.len() as u64
        + (rounds as u64) * iters * THREADS.iter().map(|&t| t as u64).sum::<u64>() * 2;
    assert_eq!(reporting.unhandled_count(), expected);
    drop(recorder);

    println!(
        "Errors per second (millions), median of {rounds} rounds, {iters} errors per thread per \
         run; ×: median over the rounds of the ratio to the same contender's 1-thread rate in \
         that round.\n"
    );
    println!("| contender | routes | 1 thread | 2 threads | × | 4 threads | × |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (c, name) in names.iter().enumerate() {
        for (d, routes) in ["one", "one per thread"].iter().enumerate() {
            let runs = &rates[c][d];
            let ratio = |t: usize| {
                median(
                    runs[t]
                        .iter()
                        .zip(&runs[0])
                        .map(|(n, one)| n / one)
                        .collect(),
                )
            };
            let rate = |t: usize| median(runs[t].clone()) / 1e6;
            println!(
                "| {name} | {routes} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                rate(0),
                rate(1),
                ratio(1),
                rate(2),
                ratio(2)
            );
        }
    }
}
