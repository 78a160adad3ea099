//! The tests that need a process of their own, one module each, in one test binary: each test
//! runs a child of this binary (an ignored test of its module) and reads what the child wrote, or
//! whether it ended. A process of its own because what is read is process-wide: the environment
//! (`env_config`), standard error and the first line's note (`report_output`), the panic hook
//! (`panic_hook`), a server that a blocked worker would freeze (`never_in_the_way`).

#[path = "../support/mod.rs"]
mod support;

mod env_config;
mod never_in_the_way;
mod panic_hook;
mod report_output;
