//! Counting what the store holds, without decompressing anything.

use std::fs::File;

use crate::blob::{zstd_content_size, Encoding};
use crate::{Store, StoreError};

/// What the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Number of blobs.
    pub blobs: u64,
    /// How many of them are stored as zstd.
    pub compressed_blobs: u64,
    /// Total size of the blobs' content.
    pub logical_bytes: u64,
    /// Total size of the blobs' files.
    pub stored_bytes: u64,
}

impl StoreStats {
    /// Logical bytes per stored byte (1.0 for an empty store).
    pub fn ratio(&self) -> f64 {
        if self.stored_bytes == 0 {
            1.0
        } else {
            self.logical_bytes as f64 / self.stored_bytes as f64
        }
    }
}

impl Store {
    /// Counts blobs and bytes. The logical size of a zstd blob comes from its frame header.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = StoreStats::default();
        for entry in self.entries() {
            let entry = entry?;
            let read_err = |source| StoreError::ReadBlob {
                digest: entry.digest,
                path: entry.path.clone(),
                source,
            };
            let mut file = File::open(&entry.path).map_err(read_err)?;
            let stored = file.metadata().map_err(read_err)?.len();
            let logical = match entry.encoding {
                Encoding::Raw => stored,
                Encoding::Zstd => zstd_content_size(&mut file).map_err(read_err)?,
            };
            stats.blobs += 1;
            stats.compressed_blobs += u64::from(entry.encoding == Encoding::Zstd);
            stats.logical_bytes += logical;
            stats.stored_bytes += stored;
        }
        Ok(stats)
    }
}
