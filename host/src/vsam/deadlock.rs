//! Deadlocks between units of work. A request refused because another
//! connection holds the record (X'14') leaves an edge "this connection
//! waits for that one" until the connection's next request. Programs that
//! retry a refused request (COBOL status 51, then again) keep their edge;
//! when a refusal closes a cycle of such edges, no program of the cycle
//! can ever get what it waits for, so one unit of work of the cycle is
//! rolled back (see `Shared::roll_back_unit`), which frees its records.

use crate::after_panic::LockOrStop;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refusal counts as waiting without the connection asking
/// again.
const WAIT_WINDOW: Duration = Duration::from_secs(10);

/// Who waits for whom, by connection.
#[derive(Default)]
pub struct WaitGraph {
    edges: Mutex<HashMap<u64, (u64, Instant)>>,
}

impl WaitGraph {
    /// Records that `waiter` was refused a record `holder` holds. Returns
    /// the connections of the cycle this closes, starting with `waiter`,
    /// if it closes one.
    pub fn refused(&self, waiter: u64, holder: u64) -> Option<Vec<u64>> {
        let mut edges = self.edges.lock_or_stop();
        edges.insert(waiter, (holder, Instant::now()));
        let mut cycle = vec![waiter];
        let mut at = holder;
        while at != waiter {
            if cycle.contains(&at) {
                return None;
            }
            let (next, since) = *edges.get(&at)?;
            if since.elapsed() > WAIT_WINDOW {
                return None;
            }
            cycle.push(at);
            at = next;
        }
        Some(cycle)
    }

    /// `session` waits for nobody (it sent another request, its unit
    /// ended, or it is gone).
    pub fn forget(&self, session: u64) {
        self.edges.lock_or_stop().remove(&session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_that_closes_a_cycle_names_it() {
        let graph = WaitGraph::default();
        assert_eq!(graph.refused(1, 2), None, "1 waits for 2");
        assert_eq!(graph.refused(3, 1), None, "3 waits for 1");
        assert_eq!(graph.refused(2, 3), Some(vec![2, 3, 1]), "2 waits for 3");
        graph.forget(1);
        assert_eq!(graph.refused(2, 3), None, "1 asked again: no cycle");
        assert_eq!(graph.refused(4, 4), Some(vec![4]), "degenerate");
        assert_eq!(graph.refused(5, 6), None, "6 waits for nobody");
    }
}
