//! Rows put through a batched handle, waiting in memory for the next flush.

use std::collections::HashMap;

use crate::blob::Encoding;
use crate::Digest;

/// Rows waiting for a flush, by digest, with the count of their stored bytes.
#[derive(Default)]
pub(super) struct Deferred {
    pub(super) rows: HashMap<Digest, DeferredRow>,
    pub(super) bytes: usize,
}

/// One deferred row: encoding, content size, stored bytes.
pub(super) type DeferredRow = (Encoding, u64, Vec<u8>);

impl Deferred {
    pub(super) fn contains(&self, digest: &Digest) -> bool {
        self.rows.contains_key(digest)
    }

    pub(super) fn insert(&mut self, digest: Digest, row: DeferredRow) {
        self.bytes += row.2.len();
        if let Some(old) = self.rows.insert(digest, row) {
            self.bytes -= old.2.len();
        }
    }

    pub(super) fn remove(&mut self, digest: &Digest) -> bool {
        let Some(old) = self.rows.remove(digest) else {
            return false;
        };
        self.bytes -= old.2.len();
        true
    }

    pub(super) fn take(&mut self) -> HashMap<Digest, DeferredRow> {
        self.bytes = 0;
        std::mem::take(&mut self.rows)
    }
}
