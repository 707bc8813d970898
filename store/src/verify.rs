//! Checking blobs against their digests.

use std::io::{self, Read};

use crate::blob::CHUNK;
use std::sync::Arc;

use crate::{Corruption, Digest, Healed, Store, StoreError};

/// The result of checking every blob.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// How many blobs were checked.
    pub checked: u64,
    /// The blobs that are damaged or unreadable, in digest order, with the reason.
    pub corrupt: Vec<(Digest, Corruption)>,
    /// The pack of small blobs, if it was found damaged (by SQLite's integrity check or in
    /// use) and healed meanwhile: what was recovered and lost.
    pub healed: Vec<Arc<Healed>>,
}

impl VerifyReport {
    /// Whether every checked blob is intact and the pack was sound.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.healed.is_empty()
    }
}

impl Store {
    /// Re-hashes `digest`'s blob: [`StoreError::Corrupt`] if its content does not match.
    pub fn verify(&self, digest: &Digest) -> Result<(), StoreError> {
        let mut reader = self.open_blob(digest)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(reader.classify(e)),
            }
        }
    }

    /// Runs SQLite's integrity check on the pack (healing it if it is damaged), then
    /// re-hashes every blob. A damaged or unreadable blob is listed in the report and checking
    /// goes on; only a store that cannot be listed is an error.
    pub fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let heals = self.pack.heals();
        self.pack.check()?;
        for digest in self.blobs() {
            let digest = digest?;
            let reason = match self.verify(&digest) {
                Ok(()) => None,
                Err(StoreError::Corrupt { reason, .. }) => Some(reason),
                Err(StoreError::ReadBlob { source, .. }) => Some(Corruption::Unreadable { source }),
                // Removed while we were looking (a concurrent gc): nothing to check.
                Err(StoreError::NoSuchBlob { .. }) => continue,
                Err(e) => return Err(e),
            };
            report.checked += 1;
            if let Some(reason) = reason {
                report.corrupt.push((digest, reason));
            }
        }
        report.healed = self.pack.heals_since(heals);
        Ok(report)
    }
}
