//! The datasets a mirror holds open on its target, closed there as a
//! program's are at its last CLOSE: the target's `flush`, where a store
//! settles a dataset and lets go of what it kept for it.
//!
//! A mirror writes its datasets without opening or closing them, so
//! without this no flush ever came: a CSV mirror kept each mirrored
//! dataset's records in its instance for the server's life (the instance
//! grew with every dataset mirrored until its memory limit failed an
//! apply), and its file, rewritten only at a flush or once the journal was
//! as long as the dataset, stayed without the latest changes for those
//! who read it: the reporting tools a mirror is for.
//!
//! A dataset is closed on the target once no change came for it for
//! [`CLOSE_WHEN_IDLE`], once it has been open for [`CLOSE_AT_LATEST`]
//! (a dataset changed without a pause is still settled that often), and,
//! the longest idle first, while more than [`MOST_OPEN`] are open;
//! [`CLOSES_PER_TURN`] at a time while changes wait. A dataset copied to
//! the mirror is closed as soon as the copy ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use vsam_plugin_sdk::Dataset;

/// A dataset with no change for this long is closed on the target.
pub(super) const CLOSE_WHEN_IDLE: Duration = Duration::from_secs(2);

/// A dataset open on the target this long is closed at the next turn, even
/// if changes keep coming (its next change opens it again).
pub(super) const CLOSE_AT_LATEST: Duration = Duration::from_secs(60);

/// The most datasets held open on the target; past it, those with no
/// change for the longest are closed.
pub(super) const MOST_OPEN: usize = 64;

/// The most datasets closed between two batches a mirror applies: a batch
/// over thousands of datasets leaves thousands to close (a CSV close
/// rewrites a file), which would hold the next batch, and a sync mirror's
/// writers, for seconds; closed a few at a time, they go between batches
/// and while the mirror waits for changes.
pub(super) const CLOSES_PER_TURN: usize = 8;

/// The datasets written on the target since they were last closed there.
#[derive(Default)]
pub(super) struct OpenOnTarget {
    datasets: HashMap<String, Opened>,
}

/// One dataset open on the target.
struct Opened {
    dataset: Dataset,
    opened: Instant,
    changed: Instant,
}

impl OpenOnTarget {
    /// `dataset` was written (or defined) on the target at `now`.
    pub(super) fn changed(&mut self, dataset: &Dataset, now: Instant) {
        self.datasets
            .entry(dataset.name.clone())
            .and_modify(|open| open.changed = now)
            .or_insert_with(|| Opened {
                dataset: dataset.clone(),
                opened: now,
                changed: now,
            });
    }

    /// `name` is no longer on the target (deleted there): nothing to close.
    pub(super) fn forget(&mut self, name: &str) {
        self.datasets.remove(name);
    }

    /// At most `most` of the datasets to close at `now`, the longest idle
    /// first, no longer counted open; and whether more are due.
    pub(super) fn due(&mut self, now: Instant, most: usize) -> (Vec<Dataset>, bool) {
        let mut by_idle: Vec<(Instant, bool, &String)> = self
            .datasets
            .iter()
            .map(|(name, open)| {
                let due = now.duration_since(open.changed) >= CLOSE_WHEN_IDLE
                    || now.duration_since(open.opened) >= CLOSE_AT_LATEST;
                (open.changed, due, name)
            })
            .collect();
        by_idle.sort();
        let beyond = self.datasets.len().saturating_sub(MOST_OPEN);
        let mut names: Vec<String> = by_idle
            .into_iter()
            .enumerate()
            .filter(|(at, (_, due, _))| *due || *at < beyond)
            .map(|(_, (_, _, name))| name.clone())
            .collect();
        let more = names.len() > most;
        names.truncate(most);
        let closing = names
            .iter()
            .filter_map(|name| self.datasets.remove(name))
            .map(|open| open.dataset)
            .collect();
        (closing, more)
    }

    /// Every dataset open, no longer counted open (the mirror stops).
    pub(super) fn take_all(&mut self) -> Vec<Dataset> {
        self.datasets
            .drain()
            .map(|(_, open)| open.dataset)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(datasets: Vec<Dataset>) -> Vec<String> {
        let mut names: Vec<String> = datasets.into_iter().map(|ds| ds.name).collect();
        names.sort();
        names
    }

    /// Every dataset due at `now`, by name.
    fn due(open: &mut OpenOnTarget, now: Instant) -> Vec<String> {
        names(open.due(now, usize::MAX).0)
    }

    #[test]
    fn a_dataset_is_closed_once_idle_and_not_before() {
        let start = Instant::now();
        let (a, b) = (Dataset::ksds("A", 2, 10), Dataset::ksds("B", 2, 10));
        let mut open = OpenOnTarget::default();
        open.changed(&a, start);
        open.changed(&b, start);
        open.changed(&b, start + Duration::from_secs(1));
        assert!(due(&mut open, start + Duration::from_millis(1999)).is_empty());
        assert_eq!(due(&mut open, start + CLOSE_WHEN_IDLE), ["A"]);
        // Closed once: not again.
        assert_eq!(
            due(&mut open, start + Duration::from_secs(1) + CLOSE_WHEN_IDLE),
            ["B"]
        );
        assert!(due(&mut open, start + CLOSE_AT_LATEST).is_empty());
    }

    #[test]
    fn a_dataset_changed_without_a_pause_is_closed_at_the_latest_bound() {
        let start = Instant::now();
        let a = Dataset::ksds("A", 2, 10);
        let mut open = OpenOnTarget::default();
        let mut now = start;
        let mut closed_at = None;
        while now < start + 2 * CLOSE_AT_LATEST {
            open.changed(&a, now);
            if !due(&mut open, now).is_empty() && closed_at.is_none() {
                closed_at = Some(now);
            }
            now += Duration::from_millis(500);
        }
        assert_eq!(closed_at, Some(start + CLOSE_AT_LATEST));
    }

    #[test]
    fn past_the_most_open_the_longest_idle_are_closed() {
        let start = Instant::now();
        let mut open = OpenOnTarget::default();
        for n in 0..MOST_OPEN + 3 {
            let at = start + Duration::from_millis(n as u64);
            open.changed(&Dataset::ksds(&format!("DS.{n:03}"), 2, 10), at);
        }
        let now = start + Duration::from_millis(100);
        assert_eq!(due(&mut open, now), ["DS.000", "DS.001", "DS.002"]);
        assert!(due(&mut open, now).is_empty());
        assert_eq!(open.take_all().len(), MOST_OPEN);
        assert!(open.take_all().is_empty());
    }

    #[test]
    fn a_deleted_dataset_is_not_closed() {
        let start = Instant::now();
        let mut open = OpenOnTarget::default();
        open.changed(&Dataset::ksds("A", 2, 10), start);
        open.forget("A");
        assert!(due(&mut open, start + CLOSE_AT_LATEST).is_empty());
    }

    #[test]
    fn many_due_are_closed_a_few_at_a_time_the_longest_idle_first() {
        let start = Instant::now();
        let mut open = OpenOnTarget::default();
        for n in 0..20u64 {
            let at = start + Duration::from_millis(n);
            open.changed(&Dataset::ksds(&format!("DS.{n:03}"), 2, 10), at);
        }
        let now = start + CLOSE_WHEN_IDLE + Duration::from_secs(1);
        let (first, more) = open.due(now, CLOSES_PER_TURN);
        assert!(more);
        assert_eq!(
            names(first),
            (0..CLOSES_PER_TURN)
                .map(|n| format!("DS.{n:03}"))
                .collect::<Vec<_>>()
        );
        let (second, more) = open.due(now, CLOSES_PER_TURN);
        assert_eq!((second.len(), more), (CLOSES_PER_TURN, true));
        let (third, more) = open.due(now, CLOSES_PER_TURN);
        assert_eq!((third.len(), more), (20 - 2 * CLOSES_PER_TURN, false));
    }
}
