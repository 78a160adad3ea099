//! `StripedCounter::increment` against a shared `AtomicU64`, a `parking_lot::Mutex<u64>`, a
//! `metrics` counter on the Prometheus recorder, and the striped counters of `contatori` and
//! `fast-counter`, at 1, 2 and 4 threads; then the cost of reading each total.
//!
//! Throughput is total increments per second across all threads. Each run checks the total
//! outside the timed region.

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use contatori::counters::{CounterValue, Observable, unsigned::Unsigned};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fast_counter::ConcurrentCounter;
use metrics_exporter_prometheus::PrometheusBuilder;
use parking_lot::Mutex;
use unhandled_benches::{THREADS, parallel};

/// The crate's striped counter, compiled from its source: it is not public API.
#[path = "../src/striped.rs"]
#[allow(dead_code, unused_imports)]
mod striped;

use striped::StripedCounter;

/// A counter under test: how to add one, and how to read the total.
trait Counter: Send + Sync + 'static {
    fn increment(&self);
    fn total(&self) -> u64;
}

impl Counter for StripedCounter {
    fn increment(&self) {
        StripedCounter::increment(self);
    }
    fn total(&self) -> u64 {
        self.sum()
    }
}

impl Counter for AtomicU64 {
    fn increment(&self) {
        self.fetch_add(1, Ordering::Relaxed);
    }
    fn total(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
}

impl Counter for Mutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
    fn total(&self) -> u64 {
        *self.lock()
    }
}

impl Counter for Unsigned {
    fn increment(&self) {
        self.add(1);
    }
    fn total(&self) -> u64 {
        match self.value() {
            CounterValue::Unsigned(total) => total,
            other => panic!("unexpected {other:?}"),
        }
    }
}

impl Counter for ConcurrentCounter {
    fn increment(&self) {
        self.add(1);
    }
    fn total(&self) -> u64 {
        self.sum() as u64
    }
}

/// A `metrics` counter handle registered on a real Prometheus recorder.
struct PrometheusCounter {
    counter: metrics::Counter,
    handle: metrics_exporter_prometheus::PrometheusHandle,
}

impl PrometheusCounter {
    fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("bench_total"));
        Self { counter, handle }
    }
}

impl Counter for PrometheusCounter {
    fn increment(&self) {
        self.counter.increment(1);
    }
    fn total(&self) -> u64 {
        let text = self.handle.render();
        let line = text.lines().find(|line| line.starts_with("bench_total "));
        line.and_then(|line| line.split(' ').nth(1)?.parse().ok())
            .unwrap_or(0)
    }
}

fn contenders() -> Vec<(&'static str, Arc<dyn Counter>)> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    vec![
        ("striped", Arc::new(StripedCounter::new())),
        ("atomic_u64", Arc::new(AtomicU64::new(0))),
        ("parking_lot_mutex", Arc::new(Mutex::new(0_u64))),
        ("metrics_prometheus", Arc::new(PrometheusCounter::new())),
        ("contatori", Arc::new(Unsigned::new())),
        ("fast_counter", Arc::new(ConcurrentCounter::new(cores))),
    ]
}

fn increment(c: &mut Criterion) {
    for threads in THREADS {
        let mut group = c.benchmark_group(format!("counter/increment/{threads}_threads"));
        group.throughput(Throughput::Elements(threads as u64));
        for (name, counter) in contenders() {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let before = counter.total();
                    let worker = Arc::clone(&counter);
                    let elapsed = parallel(threads, iters, move || {
                        let worker = Arc::clone(&worker);
                        move |iters| {
                            for _ in 0..iters {
                                black_box(&*worker).increment();
                            }
                        }
                    });
                    assert_eq!(counter.total() - before, iters * threads as u64, "{name}");
                    elapsed
                });
            });
        }
        group.finish();
    }
}

fn sum(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter/sum");
    for (name, counter) in contenders() {
        if name == "metrics_prometheus" {
            continue; // reading it means rendering the exposition text: not comparable
        }
        counter.increment();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(counter.total()));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = unhandled_benches::criterion(2);
    targets = increment, sum
}
criterion_main!(benches);
