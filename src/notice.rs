//! What the crate writes for a person goes through here: through `tracing` when the subscriber in
//! force records it, else one line on standard error ([`Line`]).
//!
//! A Rust library gets no logging default that shows its warnings: with no subscriber installed,
//! or a filter that enables only the application's own crate, a `tracing` event goes nowhere.
//! [`ReportTo::Auto`] asks the subscriber in force each time (`tracing::enabled!` for the target
//! and level), so a subscriber installed after the layer was built counts.

use std::{
    fmt::{Display, Write as _},
    sync::atomic::{AtomicBool, Ordering},
    time::SystemTime,
};

use tracing::Level;

use crate::{
    config::{self, ConfigError, REPORT_TO_VAR, ReportTo},
    text::{CUT, escape, push_escaped, text_at_most},
};

/// The target of the periodic report and of the configuration warning: what a filter must enable
/// to have them logged through `tracing` (`RUST_LOG=unhandled=warn,…`).
///
/// ```
/// let filter = format!("{}=warn,my_app=debug", unhandled::REPORT_TARGET);
/// assert_eq!(filter, "unhandled=warn,my_app=debug");
/// ```
pub const REPORT_TARGET: &str = "unhandled";

/// The longest line written, in bytes, newline included. Each value is cut to fit (ended with
/// [`CUT`]), the last ones first; the note that the first line of a process adds is within it.
const MAX_LINE: usize = 8192;

/// The most bytes a backtrace's frames add below a line, and one frame at most.
const MAX_FRAMES_TEXT: usize = 16384;
const MAX_FRAME: usize = 512;

/// Room kept at the end of every line for the first line's note and the newline.
const NOTE_ROOM: usize = 640;

/// One line for standard error: the time, level and target, the message, then `name=value`
/// fields, the way `tracing_subscriber::fmt` writes them.
///
/// Everything after the time and level is escaped ([`push_escaped`]): no value (a path, an
/// error's text, a configuration value) can end the line, start another, move the cursor or
/// reorder the text on a terminal. A value is quoted when it holds a space, a quote, `=`, a
/// backslash or an escape, or is empty, so `name=value` pairs stay parseable.
pub(crate) struct Line {
    level: Level,
    target: &'static str,
    text: String,
    /// Backtrace frames, each after a line break ([`Line::frames`]).
    frames: String,
}

impl Line {
    pub(crate) fn new(level: Level, target: &'static str, message: &dyn Display) -> Self {
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        let mut text = String::new();
        let _ = write!(text, "{now} {level:>5} ");
        push_escaped(&mut text, target, usize::MAX);
        text.push_str(": ");
        let message = text_at_most(message, MAX_LINE);
        let room = (MAX_LINE - NOTE_ROOM).saturating_sub(text.len());
        push_escaped(&mut text, &message, room);
        Self {
            level,
            target,
            text,
            frames: String::new(),
        }
    }

    /// Adds `name=value`, escaped, quoted when it needs to be, cut to the room left on the line;
    /// `None` adds nothing.
    pub(crate) fn field(mut self, name: &str, value: Option<impl Display>) -> Self {
        let Some(value) = value else {
            return self;
        };
        let value = text_at_most(&value, MAX_LINE);
        let room = (MAX_LINE - NOTE_ROOM).saturating_sub(self.text.len());
        // ` name=""` and the marker must fit, or the field is left out.
        if room < name.len() + 4 + CUT.len() {
            return self;
        }
        let _ = write!(self.text, " {name}=");
        let budget = room - name.len() - 4;
        if needs_quotes(&value) {
            self.text.push('"');
            push_escaped(&mut self.text, &value, budget);
            self.text.push('"');
        } else {
            push_escaped(&mut self.text, &value, budget);
        }
        self
    }

    /// Adds `frames` below the line, each on its own line, indented and escaped: the only line
    /// breaks a report writes. They share the line's bound, one frame at most a line's width.
    pub(crate) fn frames(mut self, frames: &[String]) -> Self {
        let mut room = MAX_FRAMES_TEXT;
        for frame in frames {
            if room < 8 + CUT.len() {
                break;
            }
            let budget = room.min(MAX_FRAME) - 6;
            let before = self.frames.len();
            self.frames.push_str("\n    ");
            push_escaped(&mut self.frames, frame, budget);
            room = room.saturating_sub(self.frames.len() - before);
        }
        self
    }

    /// Hands the line to standard error's thread ([`stderr`]), which writes it in one write;
    /// never blocks. The first line of the process also says why it is on standard error
    /// (`report_to`: chosen, or nothing records it) and how to move it.
    pub(crate) fn write(mut self, report_to: ReportTo) {
        static EXPLAINED: AtomicBool = AtomicBool::new(false);
        if !EXPLAINED.swap(true, Ordering::Relaxed) {
            self.text.push(' ');
            self.text
                .push_str(&note(self.level, self.target, report_to));
        }
        self.text.push_str(&self.frames);
        self.text.push('\n');
        stderr::push(self.text);
    }

    /// The line as it would be written, without the first line's note.
    #[cfg(test)]
    fn text(&self) -> &str {
        &self.text
    }
}

/// Waits until standard error has taken every line handed to it so far, or `deadline`: for the
/// last report of a process, whose end would drop what is still queued.
pub(crate) fn wait_written(deadline: std::time::Instant) -> bool {
    stderr::wait(deadline)
}

/// Standard error's own thread: a standard error that nobody reads (a stalled log collector, a
/// full pipe) blocks that thread alone. Lines wait in a short queue; a line that finds it full is
/// dropped and counted, and the next line written says how many were.
mod stderr {
    use std::{collections::VecDeque, io::Write as _, thread, time::Instant};

    use parking_lot::{Condvar, Mutex};

    /// Lines that wait for standard error, at most: with each at most 24 KiB (a line and its
    /// frames), under 200 KiB. A report interval is at least half a second, so this is seconds of
    /// reports that a standard error which stalls can hold up before lines are dropped.
    pub(super) const QUEUE: usize = 8;

    struct Queue {
        lines: VecDeque<String>,
        /// Lines dropped since the last one written.
        dropped: u64,
        /// Lines handed over so far (queued, not dropped), and written so far.
        queued: u64,
        written: u64,
        /// Whether the thread was started (or could not be).
        started: bool,
        /// Whether the thread runs.
        running: bool,
    }

    static QUEUED: Mutex<Queue> = Mutex::new(Queue {
        lines: VecDeque::new(),
        dropped: 0,
        queued: 0,
        written: 0,
        started: false,
        running: false,
    });
    static CHANGED: Condvar = Condvar::new();

    /// Queues `line` (whole, newline included), or drops and counts it when the queue is full.
    pub(super) fn push(line: String) {
        let mut queue = QUEUED.lock();
        if !queue.started {
            queue.started = true;
            queue.running = thread::Builder::new()
                .name("unhandled-stderr".into())
                .spawn(run)
                .is_ok();
        }
        if !queue.running || queue.lines.len() >= QUEUE {
            queue.dropped += 1;
            return;
        }
        queue.lines.push_back(line);
        queue.queued += 1;
        CHANGED.notify_all();
    }

    /// Waits until every line queued before the call is written, or `deadline`.
    pub(super) fn wait(deadline: Instant) -> bool {
        let mut queue = QUEUED.lock();
        let target = queue.queued;
        while queue.written < target {
            if CHANGED.wait_until(&mut queue, deadline).timed_out() {
                return queue.written >= target;
            }
        }
        true
    }

    fn run() {
        loop {
            let (line, dropped) = {
                let mut queue = QUEUED.lock();
                while queue.lines.is_empty() {
                    CHANGED.wait(&mut queue);
                }
                let line = queue.lines.pop_front().unwrap_or_default();
                (line, std::mem::take(&mut queue.dropped))
            };
            let mut stderr = std::io::stderr().lock();
            if dropped > 0 {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let s = if dropped == 1 { "" } else { "s" };
                let _ = writeln!(
                    stderr,
                    "{now}  WARN unhandled: {dropped} line{s} of unhandled's dropped: standard \
                     error did not take them in time (it blocked, or was slower than they came)"
                );
            }
            let _ = stderr.write_all(line.as_bytes());
            drop(stderr);
            QUEUED.lock().written += 1;
            CHANGED.notify_all();
        }
    }
}

/// Why the first line is on standard error, and how to move it.
fn note(level: Level, target: &str, report_to: ReportTo) -> String {
    if report_to == ReportTo::Stderr {
        return format!(
            "(on standard error because {REPORT_TO_VAR}=stderr or report_to(ReportTo::Stderr) \
             chose it; {REPORT_TO_VAR}=auto sends it to the tracing subscriber when that records it)"
        );
    }
    let filter = level.as_str().to_ascii_lowercase();
    format!(
        "(on standard error because no tracing subscriber records target \"{target}\" at {level}; \
         to have it logged there, enable that target in the filter, e.g. \
         RUST_LOG=unhandled={filter},<your filter>, or where the filter is built in code, \
         .add_directive(\"unhandled={filter}\".parse().unwrap()) on its EnvFilter; to keep it here, \
         {REPORT_TO_VAR}=stderr; to turn the report off, {}=0)",
        config::INTERVAL_VAR
    )
}

/// Whether `value` must be quoted to stay one `name=value` pair.
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| matches!(c, ' ' | '"' | '=' | '\\') || escape(c).is_some())
}

/// Says that an invalid configuration value was ignored and its default kept.
pub(crate) fn config_value_ignored(report_to: ReportTo, error: &ConfigError) {
    let (variable, default) = (error.variable(), error.default_kept());
    let message = format_args!("using the default for {variable}, {default}");
    if report_to.to_tracing(|| tracing::enabled!(target: REPORT_TARGET, Level::WARN)) {
        tracing::warn!(target: REPORT_TARGET, %error, variable, default, "{message}");
    } else {
        let line = Line::new(Level::WARN, REPORT_TARGET, &message)
            .field("error", Some(error))
            .field("variable", Some(&variable))
            .field("default", Some(&default));
        // Read as the application starts (a builder, the first layer), never on a request, and
        // the process may end right after: the line is waited for, at most a second where
        // standard error blocks.
        line.write(report_to);
        wait_written(std::time::Instant::now() + CONFIG_WAIT);
    }
}

/// How long a configuration warning waits for standard error to take it.
const CONFIG_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_need_it() {
        let line = Line::new(Level::WARN, "unhandled", &"Observed")
            .field("count", Some(&3))
            .field("top", Some(&"GET /x error ×3"))
            .field("route", Some(&"/users/{id}"))
            .field("absent", None::<u8>);
        assert!(line.text().ends_with(
            " WARN unhandled: Observed count=3 top=\"GET /x error ×3\" route=/users/{id}"
        ));
    }

    #[test]
    fn an_attacker_s_path_cannot_forge_a_line_or_reach_the_terminal() {
        let forged = "/lookup/\r\u{1b}[2K\u{1b}[32m INFO all clear\n\u{1b}]0;pwned\u{7}\u{9b}2J\u{85}\u{2028}\u{202e}";
        let line =
            Line::new(Level::WARN, "unhandled", &"Observed").field("sample.path", Some(forged));
        assert_eq!(
            line.text().split_once("Observed ").unwrap().1,
            r#"sample.path="/lookup/\r\u{1b}[2K\u{1b}[32m INFO all clear\n\u{1b}]0;pwned\u{7}\u{9b}2J\u{85}\u{2028}\u{202e}""#
        );
    }

    #[test]
    fn a_huge_value_is_cut_and_the_line_stays_within_its_bound() {
        let huge = "\u{1b}".repeat(1 << 20);
        let line = Line::new(Level::WARN, "unhandled", &huge.as_str())
            .field("sample.error", Some(&huge))
            .field("sample.fix", Some("still here?"));
        assert!(
            line.text().len() <= MAX_LINE - NOTE_ROOM,
            "{}",
            line.text().len()
        );
        assert!(line.text().contains(CUT));
    }

    /// Reads back what [`push_escaped`] wrote.
    fn unescape(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                Some(other) => out.push(other),
                None => panic!("a lone backslash ends {text:?}"),
            }
        }
        out
    }

    /// Whether `c` may never be written raw.
    fn forbidden(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_value_makes_one_line_with_nothing_raw_and_reads_back(
            message in any::<String>(),
            value in any::<String>(),
            other in "[ -~\u{80}-\u{a0}\u{2028}\u{202a}-\u{202e}\u{2066}-\u{2069}=\"\\\\]{0,40}",
        ) {
            let line = Line::new(Level::WARN, "unhandled", &message.as_str())
                .field("value", Some(&value))
                .field("other", Some(&other));
            let text = line.text();
            prop_assert!(!text.chars().any(forbidden), "{:?}", text);
            prop_assert!(text.len() <= MAX_LINE - NOTE_ROOM);
            let (_, fields) = text.split_once(": ").unwrap();
            let other_field = fields.rsplit_once(" other=").unwrap().1;
            let quoted = other_field.strip_prefix('"').and_then(|rest| rest.strip_suffix('"'));
            prop_assert_eq!(quoted.is_some(), needs_quotes(&other));
            prop_assert_eq!(unescape(quoted.unwrap_or(other_field)), other);
        }

        #[test]
        fn a_long_value_is_cut_within_its_budget_before_a_whole_escape(
            value in "[a\u{1b}\u{202e}é\"]{0,300}",
            budget in 8usize..200,
        ) {
            let mut text = String::new();
            push_escaped(&mut text, &value, budget);
            prop_assert!(text.len() <= budget.max(CUT.len()), "{} > {}", text.len(), budget);
            match text.strip_suffix(CUT) {
                Some(kept) => prop_assert!(value.starts_with(&unescape(kept))),
                None => prop_assert_eq!(unescape(&text), value),
            }
        }
    }
}
