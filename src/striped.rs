//! [`StripedCounter`]: a counter many threads increment without sharing a cache line (Java's
//! `LongAdder`).

use std::{
    cell::Cell,
    fmt,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    thread,
};

/// A counter split into cache-padded cells, one per group of threads.
///
/// Each thread picks its cell once, round-robin, the first time it increments any striped
/// counter; from then on its increments touch only that cell, so threads that increment at the
/// same time do not fight over one cache line. [`sum`](Self::sum) adds up the cells: it is exact
/// once the increments it should see have happened, and never blocks them.
pub(crate) struct StripedCounter {
    cells: Box<[PaddedCell]>,
}

/// One cell alone on its cache line (128 bytes covers the adjacent-line prefetch of x86 and the
/// 128-byte lines of Apple silicon).
#[repr(align(128))]
#[derive(Default)]
struct PaddedCell(AtomicU64);

impl StripedCounter {
    /// A counter with four cells per available core, rounded up to a power of two: enough that
    /// more threads than cores (a runtime's workers plus its blocking pool) rarely share a cell.
    pub(crate) fn new() -> Self {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        Self::with_cells(cores.saturating_mul(4))
    }

    /// A counter with `cells` cells, rounded up to a power of two (at least one, at most 1024).
    pub(crate) fn with_cells(cells: usize) -> Self {
        let cells = cells.clamp(1, 1024).next_power_of_two();
        Self {
            cells: (0..cells).map(|_| PaddedCell::default()).collect(),
        }
    }

    /// Adds one.
    #[inline]
    // Used by this file's tests and by benches/counter.rs, which compiles this file.
    #[allow(dead_code)]
    pub(crate) fn increment(&self) {
        self.add(1);
    }

    /// Adds `value`.
    #[inline]
    // Used by this file's tests and by benches/counter.rs, which compiles this file.
    #[allow(dead_code)]
    pub(crate) fn add(&self, value: u64) {
        let cell = &self.cells[thread_index() & (self.cells.len() - 1)];
        cell.0.fetch_add(value, Ordering::Relaxed);
    }

    /// Adds one and returns the new value of this thread's cell: how many increments this thread
    /// (and any sharing its cell) made, which lets a caller batch work per thread without
    /// reading what other threads write.
    #[inline]
    pub(crate) fn increment_cell(&self) -> u64 {
        let cell = &self.cells[thread_index() & (self.cells.len() - 1)];
        cell.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The total of every increment that happened before this call.
    pub(crate) fn sum(&self) -> u64 {
        self.cells
            .iter()
            .map(|cell| cell.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// The number of cells.
    // Used by this file's tests and by benches/counter.rs, which compiles this file.
    #[allow(dead_code)]
    pub(crate) fn cells(&self) -> usize {
        self.cells.len()
    }
}

impl Default for StripedCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripedCounter")
            .field("sum", &self.sum())
            .field("cells", &self.cells.len())
            .finish()
    }
}

/// This thread's stripe, chosen round-robin on first use.
#[inline]
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
    }
    INDEX.with(|index| {
        index.get().unwrap_or_else(|| {
            let chosen = NEXT.fetch_add(1, Ordering::Relaxed);
            index.set(Some(chosen));
            chosen
        })
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn threads_incrementing_at_once_are_all_counted() {
        let counter = Arc::new(StripedCounter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || (0..1000).for_each(|_| counter.increment()))
            })
            .collect();
        threads
            .into_iter()
            .for_each(|thread| thread.join().unwrap());
        assert_eq!(counter.sum(), 4000);
    }

    #[test]
    fn cells_are_a_power_of_two_each_on_its_own_line() {
        assert_eq!(StripedCounter::with_cells(3).cells(), 4);
        assert_eq!(StripedCounter::with_cells(0).cells(), 1);
        assert_eq!(std::mem::align_of::<PaddedCell>(), 128);
        assert_eq!(std::mem::size_of::<PaddedCell>(), 128);
    }

    #[test]
    fn concurrent_threads_use_different_cells() {
        let counter = StripedCounter::with_cells(8);
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..10_000).for_each(|_| counter.increment()));
            }
        });
        assert_eq!(counter.sum(), 40_000);
        let used = counter
            .cells
            .iter()
            .filter(|cell| cell.0.load(Ordering::Relaxed) > 0);
        assert!(
            used.count() >= 2,
            "four fresh threads all landed in one cell"
        );
    }

    #[test]
    fn add_and_sum_agree() {
        let counter = StripedCounter::with_cells(2);
        counter.add(5);
        counter.increment();
        assert_eq!(counter.sum(), 6);
    }
}
