//! The store's one error type.
//!
//! Every variant names the thing it is about (a path, a digest) and keeps the underlying error
//! as its `source`, so a caller can print the whole chain on one line.

use std::io;
use std::path::PathBuf;

use crate::Digest;

/// Everything that can go wrong in the store or the stat cache.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store directory cannot be created, entered or written.
    #[error("cannot use store directory {}", path.display())]
    Root {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file given to the store cannot be opened or read.
    #[error("cannot read {}", path.display())]
    ReadSource {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file given to the store is not a regular file.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file changed size while it was being stored; nothing was stored.
    #[error("{} changed while it was being stored (expected {expected} bytes, read {actual})", path.display())]
    SourceChanged {
        /// The file.
        path: PathBuf,
        /// Its size when storing began.
        expected: u64,
        /// The bytes actually read.
        actual: u64,
    },
    /// Writing into the store failed (a full disk, an I/O error); no partial blob is visible.
    #[error("cannot write into the store at {}", path.display())]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No blob with this digest is in the store.
    #[error("no blob {digest} in the store")]
    NoSuchBlob {
        /// The digest asked for.
        digest: Digest,
    },
    /// A blob's content does not match its digest; it is never handed out.
    #[error("blob {digest} is corrupt")]
    Corrupt {
        /// The blob's name.
        digest: Digest,
        /// What is wrong with it.
        #[source]
        reason: Corruption,
    },
    /// A blob exists but cannot be read (an I/O error, not a content mismatch).
    #[error("cannot read blob {digest} at {}", path.display())]
    ReadBlob {
        /// The blob's name.
        digest: Digest,
        /// Its file in the store.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Restoring a blob to a target path failed; the target is untouched.
    #[error("cannot restore blob {digest} to {}", path.display())]
    Restore {
        /// The blob.
        digest: Digest,
        /// The target path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A directory of the store cannot be listed.
    #[error("cannot list store directory {}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Removing a blob failed.
    #[error("cannot remove blob file {}", path.display())]
    Remove {
        /// The blob's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The pack of small blobs (`pack.db`, see [`crate::pack`]) cannot be opened, read or
    /// written.
    #[error("cannot use the blob pack {}", path.display())]
    Pack {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The pack of small blobs was written by a newer version of shark.
    #[error("the blob pack {} has format version {found}; this shark reads version {supported}", path.display())]
    PackVersion {
        /// The database file.
        path: PathBuf,
        /// The version found in it.
        found: i32,
        /// The version this shark reads and writes.
        supported: i32,
    },
    /// A database was found damaged and could not be set aside to be healed (a copy of it
    /// could not be kept); it is left as it was.
    #[error("{} is damaged and cannot be set aside", path.display())]
    Heal {
        /// The database file.
        path: PathBuf,
        /// Why no copy could be kept.
        #[source]
        source: io::Error,
    },
    /// The stat cache database failed.
    #[error("stat cache {} failed", path.display())]
    StatCache {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

/// Why a blob is corrupt.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// The blob decodes, but to content with another digest (a flipped byte in a raw blob, a
    /// truncated raw blob).
    #[error("content hashes to {actual}")]
    Mismatch {
        /// The digest of the content actually found.
        actual: Digest,
    },
    /// The blob's file cannot be read (reported by [`crate::Store::verify_all`], which goes on
    /// to the next blob).
    #[error("cannot read")]
    Unreadable {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The blob cannot be decoded (a damaged or truncated zstd stream).
    #[error("cannot decode")]
    Undecodable {
        /// The decoder's complaint.
        #[source]
        source: io::Error,
    },
}

impl Corruption {
    /// A short, stable description for listings (`shark store verify`).
    pub fn summary(&self) -> String {
        match self {
            Corruption::Mismatch { actual } => format!("content hashes to {actual}"),
            Corruption::Undecodable { source } => format!("cannot decode: {source}"),
            Corruption::Unreadable { source } => format!("cannot read: {source}"),
        }
    }
}
