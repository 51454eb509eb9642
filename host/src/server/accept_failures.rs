//! What the accept loop says when accepting fails, most often because
//! vsamrd is out of file descriptors (each connection takes one, as do
//! stores and plugin files): new connections wait in the listen backlog
//! until a descriptor is free, and the loop tries again every 50 ms. The
//! first failure of a run is logged with what to do, then one line every
//! [`REPEAT_EVERY`] with the count, and the first accept that passes says
//! how many failed: 20 lines a second for as long as the limit holds would
//! fill the disk and hide the lines that matter.

use std::io;
use std::time::{Duration, Instant};

/// How often a run of failures is logged again while it lasts.
pub const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// A run of failed accepts, if one is under way.
#[derive(Default)]
pub struct AcceptFailures {
    /// Failures since the last accept that passed.
    failed: u64,
    /// Failures already told of in a line.
    told: u64,
    /// When the last line was logged.
    last_line: Option<Instant>,
}

impl AcceptFailures {
    /// Notes a failed accept at `now`; logs it if it starts a run or the
    /// last line is [`REPEAT_EVERY`] old. True if it logged.
    pub fn failed(&mut self, error: &io::Error, now: Instant) -> bool {
        self.failed += 1;
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
        let since = match self.failed - self.told {
            1 => String::new(),
            more => format!("; {more} accepts failed since the last line"),
        };
        tracing::warn!(
            "accept failed: {error}{hint}; new connections wait in the listen backlog and are accepted when it passes{since}"
        );
        self.told = self.failed;
        self.last_line = Some(now);
        true
    }

    /// Notes an accept that passed, ending a run of failures (said in a
    /// line).
    pub fn passed(&mut self) {
        if self.failed > 0 {
            tracing::info!(
                "accepting connections again after {} failed accepts",
                self.failed
            );
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_is_told_once_per_period_and_its_end_once() {
        let out_of_files = io::Error::from_raw_os_error(libc::EMFILE);
        let mut failures = AcceptFailures::default();
        let start = Instant::now();
        assert!(failures.failed(&out_of_files, start));
        // 20 a second, as the loop retries: none told until the period ends.
        let told = (1..200)
            .filter(|step| failures.failed(&out_of_files, start + Duration::from_millis(50 * step)))
            .count();
        assert_eq!(told, 0);
        assert!(failures.failed(&out_of_files, start + REPEAT_EVERY));
        assert_eq!(failures.failed, 201);
        assert_eq!(failures.told, 201);
        failures.passed();
        assert_eq!(failures.failed, 0);
        // A new run is told at once.
        assert!(failures.failed(
            &out_of_files,
            start + REPEAT_EVERY + Duration::from_millis(1)
        ));
    }
}
