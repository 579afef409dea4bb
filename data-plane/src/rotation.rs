//! Rotation of secrets and API keys (docs/data-plane.md, "Rotation"): a webhook may hold a current
//! entry and previous ones, each valid until its `notAfter`. Both the API-key check and every
//! provider's signature check ask the same two questions, answered here once: is an entry still
//! live, and which entry matched — found in constant time, so timing reveals neither whether nor
//! which entry matched.

use subtle::Choice;

/// Which configured entry (signing secret or API key) verified a request, so operators see when
/// senders switched after a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSlot {
    /// The current entry (the first in the snapshot's list).
    Current,
    /// A previous entry still inside its grace window.
    Previous,
}

impl SecretSlot {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretSlot::Current => "current",
            SecretSlot::Previous => "previous",
        }
    }
}

/// Whether an entry with this `notAfter` (unix seconds) is still valid at `now`.
pub(crate) fn is_live(not_after: Option<i64>, now: i64) -> bool {
    not_after.is_none_or(|end| now <= end)
}

/// Collects, without branching on secret data, whether any entry matched and whether the current
/// one (index 0) did. Record every entry; read the answer once at the end.
#[derive(Clone, Copy)]
pub(crate) struct MatchedSlot {
    any: Choice,
    current: Choice,
}

impl MatchedSlot {
    /// Nothing matched yet.
    pub(crate) fn new() -> Self {
        Self {
            any: Choice::from(0),
            current: Choice::from(0),
        }
    }

    /// Records whether the entry at `index` of the rotation list matched.
    pub(crate) fn record(&mut self, index: usize, matched: Choice) {
        self.any |= matched;
        self.current |= matched & Choice::from(u8::from(index == 0));
    }

    /// The entry that matched: the current one when it did, else a previous one, else none.
    pub(crate) fn slot(self) -> Option<SecretSlot> {
        match (bool::from(self.any), bool::from(self.current)) {
            (false, _) => None,
            (true, true) => Some(SecretSlot::Current),
            (true, false) => Some(SecretSlot::Previous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_entry_wins_over_a_previous_one() {
        let mut m = MatchedSlot::new();
        assert_eq!(m.slot(), None);
        m.record(1, Choice::from(1));
        assert_eq!(m.slot(), Some(SecretSlot::Previous));
        m.record(0, Choice::from(1));
        assert_eq!(m.slot(), Some(SecretSlot::Current));
        let mut only_misses = MatchedSlot::new();
        only_misses.record(0, Choice::from(0));
        only_misses.record(1, Choice::from(0));
        assert_eq!(only_misses.slot(), None);
    }

    #[test]
    fn an_entry_is_live_until_its_not_after_second() {
        assert!(is_live(None, i64::MAX));
        assert!(is_live(Some(100), 100));
        assert!(!is_live(Some(100), 101));
    }
}
