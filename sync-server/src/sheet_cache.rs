//! The writer's cache of recently written sheets.
//!
//! An edit of one answer reads the sheet's whole snapshot back (decompress
//! and decode ~3.3 KB of JSON: about a quarter of an edit's time, measured
//! with `perf` on the store_push example) only to change one field of it.
//! Assessors edit the same few sheets again and again, so the writer keeps
//! the sheets it edited last, in memory.
//!
//! Two rules keep it from ever serving a sheet the database does not hold:
//! - an entry is used only when the row's `seq` in `entities` (read in the
//!   same statement that would read the body) equals the entry's: any later
//!   write or re-stamp of the row gives it a higher seq;
//! - writes are staged and enter the cache only after their transaction
//!   commits (a group that is undone leaves nothing: its seqs are given out
//!   again, and a re-stamp could give the row an undone write's seq).

use std::num::NonZeroUsize;

use lru::LruCache;
use ocop_shared::wire::SheetState;
use uuid::Uuid;

/// Sheets kept. A full sheet takes ~10 KB in memory (31 answers, each with
/// its strings and map node), so at most a few MB: more than a council's
/// members edit in one sitting.
pub(crate) const CAPACITY: usize = 256;

pub(crate) struct SheetCache {
    /// `None`: caching switched off (a capacity of 0).
    sheets: Option<LruCache<Uuid, (u64, SheetState)>>,
    /// Written by the open transaction, not committed yet.
    staged: Vec<(u64, SheetState)>,
    hits: u64,
}

impl SheetCache {
    pub(crate) fn new(capacity: usize) -> SheetCache {
        SheetCache {
            sheets: NonZeroUsize::new(capacity).map(LruCache::new),
            staged: Vec::new(),
            hits: 0,
        }
    }

    /// The sheet as committed at row seq `seq`, if that is what is kept,
    /// taken out of the cache: the writer is about to write it (its write
    /// stages it again), and a copy of 31 answers with their strings cost a
    /// tenth of an edit. A write that is refused or undone after taking it
    /// only makes the next read of that sheet a miss.
    pub(crate) fn take(&mut self, id: Uuid, seq: u64) -> Option<SheetState> {
        let sheets = self.sheets.as_mut()?;
        let (s, sheet) = sheets.pop(&id)?;
        if s == seq {
            self.hits += 1;
            Some(sheet)
        } else {
            None
        }
    }

    /// A sheet the open transaction wrote at row seq `seq`.
    pub(crate) fn stage(&mut self, seq: u64, sheet: SheetState) {
        if self.sheets.is_some() {
            self.staged.push((seq, sheet));
        }
    }

    /// The open transaction committed: its sheets are the database's now.
    pub(crate) fn commit(&mut self) {
        if let Some(sheets) = self.sheets.as_mut() {
            for (seq, sheet) in self.staged.drain(..) {
                sheets.put(sheet.id, (seq, sheet));
            }
        }
    }

    /// The open transaction was undone (or failed to commit).
    pub(crate) fn discard(&mut self) {
        self.staged.clear();
    }

    /// Reads served from memory since open (tests, diagnostics).
    pub(crate) fn hits(&self) -> u64 {
        self.hits
    }

    #[cfg(test)]
    pub(crate) fn kept_seq(&self, id: Uuid) -> Option<u64> {
        self.sheets.as_ref()?.peek(&id).map(|(s, _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ocop_shared::rubric::RubricRef;
    use ocop_shared::wire::SheetStatus;

    use super::*;

    fn sheet(id: u128, note: &str) -> SheetState {
        SheetState {
            id: Uuid::from_u128(id),
            round_id: Uuid::from_u128(1),
            product_id: Uuid::from_u128(2),
            owner_id: Uuid::from_u128(3),
            rubric: RubricRef {
                id: "r".into(),
                version: 1,
            },
            status: SheetStatus::Draft,
            answers: BTreeMap::new(),
            note: note.into(),
            note_rev: 0,
            reopen_reason: None,
            revision: 0,
            conflicts: Vec::new(),
        }
    }

    #[test]
    fn a_staged_sheet_is_served_only_after_commit_and_only_at_its_seq() {
        let mut c = SheetCache::new(8);
        let id = Uuid::from_u128(7);
        c.stage(10, sheet(7, "a"));
        assert_eq!(c.take(id, 10), None, "not committed yet");
        c.commit();
        assert_eq!(c.take(id, 11), None, "the row moved on");
        assert_eq!(c.kept_seq(id), None, "a stale entry is dropped");
        c.stage(12, sheet(7, "b"));
        c.commit();
        assert_eq!(c.take(id, 12).map(|s| s.note), Some("b".into()));
        assert_eq!(c.hits(), 1);
    }

    #[test]
    fn a_taken_sheet_is_not_served_again_until_it_is_written_again() {
        let mut c = SheetCache::new(8);
        let id = Uuid::from_u128(7);
        c.stage(10, sheet(7, "a"));
        c.commit();
        assert!(c.take(id, 10).is_some());
        assert_eq!(c.take(id, 10), None, "the writer holds the only copy");
        c.stage(11, sheet(7, "b"));
        c.commit();
        assert_eq!(c.take(id, 11).map(|s| s.note), Some("b".into()));
    }

    #[test]
    fn an_undone_transaction_leaves_the_committed_sheet() {
        let mut c = SheetCache::new(8);
        let id = Uuid::from_u128(7);
        c.stage(10, sheet(7, "committed"));
        c.commit();
        c.stage(11, sheet(7, "undone"));
        c.discard();
        c.commit();
        assert_eq!(c.kept_seq(id), Some(10));
        assert_eq!(c.take(id, 10).map(|s| s.note), Some("committed".into()));
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut c = SheetCache::new(0);
        c.stage(1, sheet(1, ""));
        c.commit();
        assert_eq!(c.take(Uuid::from_u128(1), 1), None);
    }

    #[test]
    fn the_least_recently_written_sheet_goes_first() {
        let mut c = SheetCache::new(2);
        for i in 1..=2 {
            c.stage(i as u64, sheet(i, ""));
        }
        c.commit();
        // Sheet 1 is written again (taken, then staged at its new seq).
        assert!(c.take(Uuid::from_u128(1), 1).is_some());
        c.stage(4, sheet(1, ""));
        c.commit();
        c.stage(3, sheet(3, ""));
        c.commit();
        assert_eq!(
            c.kept_seq(Uuid::from_u128(2)),
            None,
            "2 was written least recently"
        );
        assert_eq!(c.kept_seq(Uuid::from_u128(1)), Some(4));
        assert_eq!(c.kept_seq(Uuid::from_u128(3)), Some(3));
    }
}
