//! What a backtrace costs, counted by callgrind (`benches/backtrace.sh`): 16 errors made at 16
//! places, 40 frames below `main` (a handler's depth under tokio, hyper and axum), each taking
//! its one backtrace of the interval where `RUST_BACKTRACE` asks; then each resolved to frame
//! lines, as the report does, twice (the first resolution reads the debug info).
//!
//!   RUST_BACKTRACE=1 target/release/backtrace

use std::hint::black_box;

use unhandled::Error;

/// 16 places, one line each.
#[inline(never)]
fn capture_counted() -> Vec<Error> {
    vec![
        Error::msg("site 0"),
        Error::msg("site 1"),
        Error::msg("site 2"),
        Error::msg("site 3"),
        Error::msg("site 4"),
        Error::msg("site 5"),
        Error::msg("site 6"),
        Error::msg("site 7"),
        Error::msg("site 8"),
        Error::msg("site 9"),
        Error::msg("site 10"),
        Error::msg("site 11"),
        Error::msg("site 12"),
        Error::msg("site 13"),
        Error::msg("site 14"),
        Error::msg("site 15"),
    ]
}

/// Formats each error's backtrace: what the report's frame lines start from.
#[inline(never)]
fn resolve_counted(errors: &[Error]) -> usize {
    errors
        .iter()
        .filter_map(Error::backtrace)
        .map(|backtrace| backtrace.to_string().lines().count())
        .sum()
}

/// The same, once the debug info is read.
#[inline(never)]
fn resolve_again_counted(errors: &[Error]) -> usize {
    resolve_counted(errors)
}

/// `depth` frames, then the errors.
#[inline(never)]
fn deep(depth: usize) -> Vec<Error> {
    if depth == 0 {
        return capture_counted();
    }
    let errors = deep(black_box(depth - 1));
    black_box(errors)
}

fn main() {
    let errors = deep(40);
    let captured = errors
        .iter()
        .filter(|error| error.backtrace().is_some())
        .count();
    let first = resolve_counted(&errors);
    let again = resolve_again_counted(&errors);
    println!("{captured} backtraces taken, {first} then {again} lines resolved");
}
