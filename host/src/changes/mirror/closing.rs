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
//! the longest idle first, while more than [`MOST_OPEN`] are open. A
//! dataset copied to the mirror is closed as soon as the copy ends.

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

    /// The datasets to close at `now`, no longer counted open.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Dataset> {
        let mut closing: Vec<Opened> = self
            .datasets
            .extract_if(|_, open| {
                now.duration_since(open.changed) >= CLOSE_WHEN_IDLE
                    || now.duration_since(open.opened) >= CLOSE_AT_LATEST
            })
            .map(|(_, open)| open)
            .collect();
        let beyond = self.datasets.len().saturating_sub(MOST_OPEN);
        if beyond > 0 {
            let mut by_idle: Vec<(Instant, String)> = self
                .datasets
                .iter()
                .map(|(name, open)| (open.changed, name.clone()))
                .collect();
            by_idle.sort();
            for (_, name) in by_idle.into_iter().take(beyond) {
                closing.extend(self.datasets.remove(&name));
            }
        }
        closing.into_iter().map(|open| open.dataset).collect()
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

    #[test]
    fn a_dataset_is_closed_once_idle_and_not_before() {
        let start = Instant::now();
        let (a, b) = (Dataset::ksds("A", 2, 10), Dataset::ksds("B", 2, 10));
        let mut open = OpenOnTarget::default();
        open.changed(&a, start);
        open.changed(&b, start);
        open.changed(&b, start + Duration::from_secs(1));
        assert!(open.due(start + Duration::from_millis(1999)).is_empty());
        assert_eq!(names(open.due(start + CLOSE_WHEN_IDLE)), ["A"]);
        // Closed once: not again.
        assert_eq!(
            names(open.due(start + Duration::from_secs(1) + CLOSE_WHEN_IDLE)),
            ["B"]
        );
        assert!(open.due(start + CLOSE_AT_LATEST).is_empty());
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
            if !open.due(now).is_empty() && closed_at.is_none() {
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
        assert_eq!(names(open.due(now)), ["DS.000", "DS.001", "DS.002"]);
        assert!(open.due(now).is_empty());
        assert_eq!(open.take_all().len(), MOST_OPEN);
        assert!(open.take_all().is_empty());
    }

    #[test]
    fn a_deleted_dataset_is_not_closed() {
        let start = Instant::now();
        let mut open = OpenOnTarget::default();
        open.changed(&Dataset::ksds("A", 2, 10), start);
        open.forget("A");
        assert!(open.due(start + CLOSE_AT_LATEST).is_empty());
    }
}
