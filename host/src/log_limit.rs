//! Log lines limited per cause: a flood (a plugin logging in a loop, a
//! storm of refused connections) must not fill the disk or drown the lines
//! that matter. Each cause may log [`LINES_PER_SECOND`] lines a second; the
//! rest are counted and the next line that passes says how many were
//! suppressed. A line written for someone else (a plugin) is limited in
//! length too, and cannot pass for another line ([`foreign_line`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines one cause may log per second.
pub const LINES_PER_SECOND: u32 = 50;

/// Most causes tracked at once (the causes are few: plugin backends and
/// refusal kinds); past it the oldest windows are forgotten.
const MAX_CAUSES: usize = 4096;

struct Window {
    started: Instant,
    lines: u32,
    suppressed: u64,
}

static WINDOWS: Mutex<Option<HashMap<String, Window>>> = Mutex::new(None);

/// Whether a line of `cause` may be logged now: `Some(n)` with the number
/// of its lines suppressed since the last one that passed, `None` if this
/// one is to be suppressed (and is counted).
pub fn admit(cause: &str) -> Option<u64> {
    let mut windows = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
    let windows = windows.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    if windows.len() >= MAX_CAUSES && !windows.contains_key(cause) {
        windows.retain(|_, w| now.duration_since(w.started) < Duration::from_secs(1));
    }
    let window = windows.entry(cause.to_string()).or_insert(Window {
        started: now,
        lines: 0,
        suppressed: 0,
    });
    if now.duration_since(window.started) >= Duration::from_secs(1) {
        window.started = now;
        window.lines = 0;
    }
    if window.lines >= LINES_PER_SECOND {
        window.suppressed += 1;
        return None;
    }
    window.lines += 1;
    Some(std::mem::take(&mut window.suppressed))
}

/// The note a line that passed carries about the lines suppressed before.
pub fn note(suppressed: u64) -> String {
    match suppressed {
        0 => String::new(),
        n => format!(" ({n} more like it suppressed)"),
    }
}

/// The longest line of someone else's (a plugin's) vsamrd writes, in
/// bytes: fifty lines a second of a plugin's whole memory would fill any
/// disk.
pub const MAX_FOREIGN_LINE: usize = 4096;

/// `message`, from someone else (a plugin), as vsamrd's log may carry it:
/// control characters escaped (a newline would start a line that reads as
/// vsamrd's own), and cut at [`MAX_FOREIGN_LINE`] bytes with the count of
/// the rest.
pub fn foreign_line(message: &str) -> String {
    foreign_text(message, MAX_FOREIGN_LINE)
}

/// [`foreign_line`] with a bound of `max` bytes: for a client's name,
/// which every line of its connection carries.
pub fn foreign_text(message: &str, max: usize) -> String {
    let mut line = String::with_capacity(message.len().min(max));
    for (at, c) in message.char_indices() {
        let before = line.len();
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
        if line.len() > max {
            line.truncate(before);
            line.push_str(&format!(" ... ({} bytes more)", message.len() - at));
            return line;
        }
    }
    line
}

/// Logs like `tracing`'s macro of `$level` (`info`, `warn`...), within the
/// limit of `$cause`: for lines anyone who can reach a port can cause once
/// per connection or request (a refused handshake, a wrong token, a socket
/// closed at once), which must not let them write the log at the rate they
/// connect. The first line that passes after a suppression carries the
/// count in its field `suppressed`.
///
/// ```ignore
/// limited!(info, "handshake refusal", peer = %address, "handshake refused: {why}");
/// ```
macro_rules! limited {
    ($level:ident, $cause:expr, $($arg:tt)+) => {
        match $crate::log_limit::admit($cause) {
            None => {}
            Some(0) => tracing::$level!($($arg)+),
            Some(suppressed) => tracing::$level!(suppressed, $($arg)+),
        }
    };
}
pub(crate) use limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_logs_its_share_and_the_next_line_counts_the_rest() {
        let cause = "test: a flood";
        let passed = (0..1000).filter(|_| admit(cause).is_some()).count();
        assert_eq!(passed, LINES_PER_SECOND as usize);
        // Another cause is not held back by the flood.
        assert_eq!(admit("test: another"), Some(0));
        std::thread::sleep(Duration::from_millis(1010));
        assert_eq!(admit(cause), Some(1000 - u64::from(LINES_PER_SECOND)));
        assert_eq!(note(3), " (3 more like it suppressed)");
    }

    #[test]
    fn a_foreign_line_is_one_line_of_bounded_length() {
        assert_eq!(foreign_line("plain é"), "plain é");
        assert_eq!(
            foreign_line("ok\n2026-12-06T10:00:00Z INFO vsamrd: forged\r\u{1b}[31m"),
            "ok\\n2026-12-06T10:00:00Z INFO vsamrd: forged\\r\\u{1b}[31m"
        );
        let long = format!(
            "{}€{}",
            "a".repeat(MAX_FOREIGN_LINE - 1),
            "b".repeat(10_000)
        );
        let line = foreign_line(&long);
        assert_eq!(
            line,
            format!(
                "{} ... (10003 bytes more)",
                "a".repeat(MAX_FOREIGN_LINE - 1)
            )
        );
        let exact = "c".repeat(MAX_FOREIGN_LINE);
        assert_eq!(foreign_line(&exact), exact);
    }
}
