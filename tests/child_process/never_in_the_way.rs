//! The report never holds the application's runtime: a sample whose `Display` never returns, a
//! standard error nobody reads, the first backtrace resolution. Each runs a real server in a child
//! process (this binary again, the ignored `never_in_the_way::child` test) on a current-thread
//! runtime, where one blocked worker would freeze every connection, and reads what it writes: a
//! process of its own, since what the process writes, and whether it ends, is the point.

use std::{
    fmt,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::Path, routing::get};
use parking_lot::Mutex;
use unhandled::{ErrorHandlerLayer, ReportTo, ReportingErrorHandler};

const SETUP: &str = "UNHANDLED_TEST_NEVER";

// --- The child: a server on a current-thread runtime ------------------------------------------

/// An error whose `Display` never returns: it says so on standard output first.
#[derive(Debug)]
struct Stuck;

impl fmt::Display for Stuck {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        static ENTERED: AtomicBool = AtomicBool::new(false);
        if !ENTERED.swap(true, Ordering::SeqCst) {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(b"DISPLAY ENTERED\n").unwrap();
            stdout.flush().unwrap();
        }
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

impl std::error::Error for Stuck {}

/// An error with 2 KB of text, so that reports are long.
#[derive(Debug)]
struct Long(usize);

impl fmt::Display for Long {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "site {} failed: {}", self.0, "x".repeat(2000))
    }
}

impl std::error::Error for Long {}

async fn stuck() -> unhandled::Result<()> {
    Err(Stuck)?
}

async fn fail(Path(site): Path<usize>) -> unhandled::Result<()> {
    Err(Long(site))?
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate()).unwrap().recv().await;
}

#[test]
#[ignore = "run by the other tests as a child process"]
fn child() {
    let setup = std::env::var(SETUP).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Four reporters on four routes, so that standard error gets four reports a tick.
        let reporters: Vec<ReportingErrorHandler> = (0..4)
            .map(|_| {
                ReportingErrorHandler::builder()
                    .interval(Duration::from_millis(500))
                    .report_to(ReportTo::Stderr)
                    .build()
            })
            .collect();
        let mut app = Router::new().route("/ok", get(|| async { "ok" })).route(
            "/stuck",
            get(stuck).layer(ErrorHandlerLayer::new(reporters[0].clone())),
        );
        for (index, reporting) in reporters.iter().enumerate() {
            app = app.route(
                &format!("/fail{index}/{{site}}"),
                get(fail).layer(ErrorHandlerLayer::new(reporting.clone())),
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("ADDR {} {setup}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .unwrap();
        let started = Instant::now();
        for reporting in &reporters {
            reporting.shutdown().await;
        }
        println!("SHUTDOWN DONE in {} ms", started.elapsed().as_millis());
    });
}

// --- The parent ---------------------------------------------------------------------------------

/// A child serving; its standard output by line, and its standard error as it comes, read on
/// threads of their own (unless `stderr_read` is false: then nothing reads it until
/// [`Server::read_stderr`]).
struct Server {
    child: Child,
    address: SocketAddr,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_pipe: Option<std::process::ChildStderr>,
}

impl Server {
    fn start(setup: &str, vars: &[(&str, &str)], stderr_read: bool) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "never_in_the_way::child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(SETUP, setup)
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in vars {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let (lines, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Self {
            child,
            address: "127.0.0.1:1".parse().unwrap(),
            stdout,
            stderr: Arc::default(),
            stderr_pipe: None,
        };
        let first = server.stdout_line("ADDR ");
        server.address = first.split(' ').nth(1).unwrap().parse().unwrap();
        server.stderr_pipe = server.child.stderr.take();
        if stderr_read {
            server.read_stderr();
        }
        server
    }

    /// Starts reading standard error.
    fn read_stderr(&mut self) {
        let Some(mut pipe) = self.stderr_pipe.take() else {
            return;
        };
        let text = Arc::clone(&self.stderr);
        std::thread::spawn(move || {
            let mut buffer = [0; 65536];
            while let Ok(read) = pipe.read(&mut buffer) {
                if read == 0 {
                    return;
                }
                text.lock()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
    }

    /// The first line on standard output that starts with `prefix`, waiting up to 20 s.
    fn stdout_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line {prefix:?} from the child"),
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// Waits up to 20 s until standard error holds `needle`.
    fn stderr_holds(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{needle:?} not on standard error:\n{}", self.stderr());
    }

    /// `GET path` on a connection of its own: the status line and how long the answer took. A
    /// server that does not answer within 10 s fails the test (never a threshold on the time:
    /// a frozen server never answers).
    fn get(&self, path: &str) -> (String, Duration) {
        let started = Instant::now();
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|error| panic!("GET {path} not answered: {error}"));
        let status = response.lines().next().unwrap_or_default().to_owned();
        (status, started.elapsed())
    }

    /// Sends SIGTERM and waits up to 20 s for the child to end; whether it ended well.
    fn terminate(&mut self) -> bool {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("the child did not end after SIGTERM:\n{}", self.stderr());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The counts of the report lines on standard error, added up.
fn reported(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|line| line.contains("WARN unhandled: Observed "))
        .map(|line| {
            let count = line.split(" count=").nth(1).unwrap();
            count.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

#[test]
fn a_display_that_never_returns_costs_one_thread_never_the_service_sigterm_or_later_reports() {
    let mut server = Server::start("stuck", &[], true);
    assert!(server.get("/stuck").0.contains(" 500 "));
    // The report thread is now inside a `Display` that never returns.
    server.stdout_line("DISPLAY ENTERED");
    let mut slowest = Duration::ZERO;
    let mut failed = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (status, took) = server.get("/ok");
        assert!(status.contains(" 200 "), "{status}");
        slowest = slowest.max(took);
        assert!(server.get("/fail0/1").0.contains(" 500 "));
        failed += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("slowest /ok while the report thread was stuck: {slowest:?}");
    // Reports went on, with the counts alone, saying why.
    let stderr = server.stderr_holds("an earlier report is still formatting its sample");
    assert!(
        stderr.contains("no sample: the previous report had not finished when this one was due"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("site 1 failed"),
        "no sample is formatted meanwhile"
    );
    assert!(server.terminate(), "{}", server.stderr());
    let done = server.stdout_line("SHUTDOWN DONE");
    eprintln!("{done}");
    // Every failure is in some report: the stuck report's, carried by the next.
    assert_eq!(
        reported(&server.stderr()),
        failed + 1,
        "{}",
        server.stderr()
    );
}

#[test]
fn a_standard_error_nobody_reads_never_stops_requests_and_dropped_lines_are_counted() {
    let mut server = Server::start("stderr", &[], false);
    // Four reports each tick, each over 2 KB: the pipe (64 KiB) and the queue fill in seconds,
    // while nothing reads standard error.
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(8);
    let mut round = 0;
    while Instant::now() < until {
        let (status, took) = server.get("/ok");
        assert!(status.contains(" 200 "), "{status}");
        slowest = slowest.max(took);
        for reporter in 0..4 {
            let path = format!("/fail{reporter}/{}", round % 3);
            assert!(server.get(&path).0.contains(" 500 "));
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("slowest /ok while standard error was not read: {slowest:?}");
    server.read_stderr();
    // The next line written says how many were dropped.
    let stderr = server.stderr_holds("of unhandled's dropped: standard error did not take them");
    let note = stderr
        .lines()
        .find(|line| line.contains("of unhandled's dropped"))
        .unwrap();
    let dropped: u64 = note
        .split("WARN unhandled: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!(dropped > 0, "{note}");
    // Reports resume once standard error is read again.
    let before = stderr.matches("Observed ").count();
    assert!(server.get("/fail0/9").0.contains(" 500 "));
    server.stderr_holds("fail0/{site} error");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stderr().matches("Observed ").count() <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.stderr().matches("Observed ").count() > before);
    assert!(server.terminate(), "{}", server.stderr());
    server.stdout_line("SHUTDOWN DONE");
}

/// The first backtrace resolution (debug info read, tens of megabytes) runs on the report
/// thread: `/ok` is answered throughout. The child's resident memory before and after is printed
/// for the docs.
#[test]
fn the_first_backtrace_resolution_stalls_no_request() {
    let mut server = Server::start("backtrace", &[("RUST_LIB_BACKTRACE", "1")], true);
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let before = rss(server.child.id());
    assert!(server.get("/fail0/1").0.contains(" 500 "));
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    // Across the first report (due 0.5 s after the failure) and its resolution.
    while !server.stderr().contains("fail0/{site} error") || answered < 50 {
        let (status, took) = server.get("/ok");
        assert!(status.contains(" 200 "), "{status}");
        slowest = slowest.max(took);
        answered += 1;
        assert!(answered < 5000, "no report:\n{}", server.stderr());
    }
    let stderr = server.stderr();
    let frames = stderr
        .lines()
        .filter(|line| line.starts_with("    "))
        .count();
    assert!(frames > 0, "the report has its backtrace:\n{stderr}");
    let after = rss(server.child.id());
    eprintln!(
        "slowest /ok across the first backtrace resolution: {slowest:?} ({answered} answered); \
         resident memory {before} kB before, {after} kB after"
    );
    assert!(server.terminate());
}
