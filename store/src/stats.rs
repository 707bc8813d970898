//! Counting what the store holds, without decompressing anything.

use std::fs::File;
use std::path::Path;

use crate::blob::{zstd_content_size, Encoding};
use crate::list::Place;
use crate::{Digest, Store, StoreError};

/// What the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Number of blobs.
    pub blobs: u64,
    /// How many of them are stored as zstd.
    pub compressed_blobs: u64,
    /// Total size of the blobs' content.
    pub logical_bytes: u64,
    /// Total size of the blobs as stored (their files, or their rows' bytes in the pack).
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
    /// Counts blobs and bytes, files and packed ones alike. The logical size of a zstd blob
    /// file comes from its frame header, that of a packed blob from its row.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = StoreStats::default();
        for entry in self.entries() {
            let entry = entry?;
            let (logical, stored) = match &entry.place {
                Place::Packed { size, stored } => (*size, *stored),
                Place::File(path) => file_sizes(&entry.digest, path, entry.encoding)?,
            };
            stats.blobs += 1;
            stats.compressed_blobs += u64::from(entry.encoding == Encoding::Zstd);
            stats.logical_bytes += logical;
            stats.stored_bytes += stored;
        }
        Ok(stats)
    }
}

/// The logical and stored size of a blob file.
fn file_sizes(digest: &Digest, path: &Path, encoding: Encoding) -> Result<(u64, u64), StoreError> {
    let read_err = |source| StoreError::ReadBlob {
        digest: *digest,
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let stored = file.metadata().map_err(read_err)?.len();
    let logical = match encoding {
        Encoding::Raw => stored,
        Encoding::Zstd => zstd_content_size(&mut file).map_err(read_err)?,
    };
    Ok((logical, stored))
}
