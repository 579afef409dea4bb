//! Which offsets may be committed (docs/dispatcher.md, "Delivery"): invocations of one partition
//! finish out of order, but a partition's committed offset only moves past an invocation once its
//! result was acknowledged by the broker, and never past one still running.

use std::collections::{BTreeSet, HashMap};

/// A partition of the invocation topic.
pub type Partition = (String, i32);

/// The invocations of one partition that started and have not finished.
#[derive(Debug, Default)]
struct PartitionState {
    /// Bumped when the partition is revoked: completions of an older assignment are ignored.
    generation: u64,
    running: BTreeSet<i64>,
    /// Highest offset started in this generation.
    highest: Option<i64>,
    /// The last offset handed out for committing (the next offset to read); starts at the first
    /// offset read.
    committed: Option<i64>,
}

/// Per-partition bookkeeping of started and finished invocations.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<Partition, PartitionState>,
}

/// Identifies one started invocation, to report it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Its partition.
    pub partition: Partition,
    /// Its offset.
    pub offset: i64,
    generation: u64,
}

impl OffsetTracker {
    /// Records that the invocation at `offset` started.
    pub fn start(&mut self, partition: Partition, offset: i64) -> Ticket {
        let state = self.partitions.entry(partition.clone()).or_default();
        // The first offset read is where the partition's committed position already is (or
        // where reading started): committing it again would say nothing new.
        state.committed.get_or_insert(offset);
        state.running.insert(offset);
        state.highest = Some(state.highest.map_or(offset, |h| h.max(offset)));
        Ticket {
            partition,
            offset,
            generation: state.generation,
        }
    }

    /// Records that an invocation finished (its result acknowledged, or it was skipped) and
    /// returns the offset to commit for its partition when the committable position moved: the
    /// lowest offset still running, or one past the highest started when none runs.
    pub fn finish(&mut self, ticket: &Ticket) -> Option<i64> {
        let state = self.partitions.get_mut(&ticket.partition)?;
        if state.generation != ticket.generation || !state.running.remove(&ticket.offset) {
            return None;
        }
        let next = match state.running.first() {
            Some(&lowest) => lowest,
            None => state.highest? + 1,
        };
        if state.committed.is_some_and(|c| c >= next) {
            return None;
        }
        state.committed = Some(next);
        Some(next)
    }

    /// Forgets a revoked partition: what still runs for it will not be committed by this process
    /// (the partition's next owner runs it again).
    pub fn revoke(&mut self, partition: &Partition) {
        if let Some(state) = self.partitions.get_mut(partition) {
            state.generation += 1;
            state.running.clear();
            state.highest = None;
            state.committed = None;
        }
    }

    /// The position last handed out for committing, per partition (for the final commit).
    pub fn positions(&self) -> Vec<(Partition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(p, s)| s.committed.map(|c| (p.clone(), c)))
            .collect()
    }

    /// Invocations started and not finished, over all partitions.
    #[cfg(test)]
    fn running(&self) -> usize {
        self.partitions.values().map(|p| p.running.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        ("t".to_owned(), n)
    }

    #[test]
    fn commits_the_highest_contiguous_finished_offset() {
        let mut t = OffsetTracker::default();
        let a = t.start(p(0), 10);
        let b = t.start(p(0), 11);
        let c = t.start(p(0), 12);
        assert_eq!(
            t.finish(&b),
            None,
            "10 still runs: nothing past it is committable"
        );
        assert_eq!(t.finish(&c), None);
        assert_eq!(
            t.finish(&a),
            Some(13),
            "all three done: commit the next offset to read"
        );
        assert_eq!(t.positions(), vec![(p(0), 13)]);
        assert_eq!(t.running(), 0);
    }

    #[test]
    fn the_position_stops_at_the_lowest_running_offset() {
        let mut t = OffsetTracker::default();
        let a = t.start(p(0), 0);
        let b = t.start(p(0), 1);
        let c = t.start(p(0), 2);
        assert_eq!(t.finish(&a), Some(1));
        assert_eq!(t.finish(&c), None);
        assert_eq!(t.finish(&b), Some(3));
        assert_eq!(t.finish(&b), None, "a ticket finishes once");
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        let a = t.start(p(0), 5);
        let b = t.start(p(1), 7);
        assert_eq!(t.finish(&b), Some(8));
        assert_eq!(t.running(), 1);
        assert_eq!(t.finish(&a), Some(6));
    }

    #[test]
    fn completions_of_a_revoked_assignment_are_not_committed() {
        let mut t = OffsetTracker::default();
        let old = t.start(p(0), 3);
        t.revoke(&p(0));
        assert_eq!(
            t.finish(&old),
            None,
            "the partition's next owner runs it again"
        );
        let new = t.start(p(0), 3);
        assert_eq!(t.finish(&new), Some(4));
    }
}
