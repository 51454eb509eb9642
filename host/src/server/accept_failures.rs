//! What the accept loop says when accepting fails, most often because
//! vsamrd is out of file descriptors (each connection takes one, as do
//! stores and plugin files): new connections wait in the listen backlog
//! until a descriptor is free, and the loop tries again every 50 ms. A
//! failure is logged with what to do, then at most one line every
//! [`REPEAT_EVERY`] with the count since the last, and the first accept
//! that passes after a line of failures says so, once: 20 lines a second
//! for as long as the limit holds (or two a flip, when descriptors come
//! and go at the limit) would fill the disk and hide the lines that
//! matter.

use std::io;
use std::time::{Duration, Instant};

/// The least time between two lines about failed accepts.
pub const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Failed accepts, and what the log was last told of them.
#[derive(Default)]
pub struct AcceptFailures {
    /// Failures since the last line.
    untold: u64,
    /// When the last line was logged.
    last_line: Option<Instant>,
    /// The last line said that accepts fail.
    failing: bool,
}

impl AcceptFailures {
    /// Notes a failed accept at `now`; logs it unless a line was logged
    /// less than [`REPEAT_EVERY`] before. True if it logged.
    pub fn failed(&mut self, error: &io::Error, now: Instant) -> bool {
        self.untold += 1;
        if self
            .last_line
            .is_some_and(|last| now.duration_since(last) < REPEAT_EVERY)
        {
            return false;
        }
        let hint = match error.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => {
                " (vsamrd is out of file descriptors: raise its limit, LimitNOFILE= in systemd or `ulimit -n`, or lower [server] max_connections)"
            }
            _ => "",
        };
        let since = match self.untold {
            1 => String::new(),
            more => format!("; {more} accepts failed since the last line"),
        };
        tracing::warn!(
            "accept failed: {error}{hint}; new connections wait in the listen backlog and are accepted when it passes{since}"
        );
        self.untold = 0;
        self.last_line = Some(now);
        self.failing = true;
        true
    }

    /// Notes an accept that passed at `now`: after a line of failures,
    /// says accepting passes again (and counts the failures not told).
    /// True if it logged.
    pub fn passed(&mut self, now: Instant) -> bool {
        if !self.failing {
            return false;
        }
        let since = match self.untold {
            0 => String::new(),
            more => format!(" ({more} more failed since the last line)"),
        };
        tracing::info!("accepting connections again{since}");
        self.untold = 0;
        self.last_line = Some(now);
        self.failing = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_once_per_period_and_their_end_once() {
        let out_of_files = io::Error::from_raw_os_error(libc::EMFILE);
        let mut failures = AcceptFailures::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert!(!failures.passed(at(0)), "nothing to tell");
        assert!(failures.failed(&out_of_files, at(0)));
        // 20 a second, as the loop retries: none told until the period ends.
        let told = (1..200)
            .filter(|step| failures.failed(&out_of_files, at(50 * step)))
            .count();
        assert_eq!(told, 0);
        assert!(failures.failed(&out_of_files, start + REPEAT_EVERY));
        assert_eq!(failures.untold, 0);
        // Descriptors coming and going at the limit: one line says it
        // passes again, then nothing until the period ends.
        assert!(failures.passed(start + REPEAT_EVERY + Duration::from_millis(1)));
        let flips = (2..100u64)
            .filter(|step| {
                let now = start + REPEAT_EVERY + Duration::from_millis(*step);
                failures.failed(&out_of_files, now) | failures.passed(now)
            })
            .count();
        assert_eq!(flips, 0);
        assert_eq!(failures.untold, 98);
        assert!(failures.failed(
            &out_of_files,
            start + REPEAT_EVERY * 2 + Duration::from_millis(1)
        ));
        assert!(failures.passed(start + REPEAT_EVERY * 3));
        assert!(!failures.passed(start + REPEAT_EVERY * 4), "told once");
    }
}
