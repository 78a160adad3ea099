//! The behaviours that need no process of their own, one module each, in one test binary, so that
//! axum, hyper and tonic are linked once. A test that needs a process of its own (a counting
//! allocator, a global recorder or subscriber, a once-per-process flag, a child process) has a
//! file of its own in `tests/`, whose first line says why.

#[path = "../support/mod.rs"]
mod support;

mod app_error_types;
mod app_logs;
mod cancellation;
mod config_values;
mod counting_and_reports;
mod disconnects;
mod display_panics;
mod faults;
mod grpc;
mod layer_answers;
mod locations;
mod own_error_type;
mod rendering;
mod server_span;
mod streaming;
mod tasks;
mod traces;
