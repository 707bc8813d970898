//! `shark-store`: the content-addressed store every recorded file passes through.
//!
//! Key types:
//!
//! - [`Digest`], the BLAKE3 name of a file's content, of a directory listing or of a symlink
//!   target (formats in [`digest`]).
//! - [`Store`], a directory of blobs named by digest, each stored raw or as zstd
//!   (layout in [`blob`], the choice in [`compress`]). Content under [`PACK_MAX`] (16 KiB) is
//!   a row of one SQLite database, the pack ([`pack`]), so that small outputs and inputs do
//!   not cost an inode each; larger content is a file of its own. Puts are atomic, small ones
//!   from memory and large ones streaming ([`Store::put_file`]); a [`Store::batched`] handle
//!   makes them durable together at [`Store::sync`] instead of one by one ([`durable`]);
//!   reads and restores check the content against the digest, so a corrupt blob is never
//!   handed out ([`BlobReader`], [`Store::restore`]).
//! - Restores ([`Store::restore_at`]) write into an open directory under one name, never
//!   through a symbolic link, in one pass, into an anonymous file linked into place only once
//!   checked, keeping holes; restores of raw blob files are reflinks on btrfs and xfs. What a
//!   killed restore can leave is journaled and removed by [`Store::sweep`]
//!   ([`journal`]). Sparse files are hashed and stored without reading their holes, and
//!   nothing is memory-mapped: memory stays a few MiB whatever a file's size.
//! - [`StatCache`], a persistent `(dev, ino, size, mtime, ctime) -> digest` map so that an
//!   unchanged file is hashed once ([`statcache`]).
//! - [`StoreError`], the one error type, naming the path or digest concerned.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shark_store::{Digest, Store};
//!
//! let store = Store::open(&dir.path().join("store"))?;
//! let put = store.put_bytes(b"id,value\n1,42\n")?;
//! assert_eq!(put.digest, Digest::of_bytes(b"id,value\n1,42\n"));
//! assert!(store.contains(&put.digest));
//!
//! let target = dir.path().join("out.csv");
//! store.restore(&put.digest, &target, 0o644)?;
//! assert_eq!(std::fs::read(&target).unwrap(), b"id,value\n1,42\n");
//!
//! // Small and large blobs are listed, counted and checked alike.
//! store.put_bytes(&vec![b'x'; 1 << 20])?;
//! assert_eq!(store.blobs().count(), 2);
//! assert_eq!(store.stats()?.logical_bytes, 14 + (1 << 20));
//! assert!(store.verify_all()?.is_clean());
//! # Ok::<(), shark_store::StoreError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blob;
pub mod compress;
pub mod digest;
pub mod durable;
mod error;
pub mod heal;
pub mod journal;
mod list;
pub mod pack;
mod pipe;
mod put;
mod restore;
mod sparse;
pub mod statcache;
mod stats;
mod store;
#[cfg(test)]
mod tests;
mod verify;
mod wal;

pub use blob::{BlobReader, Encoding};
pub use digest::{Digest, DigestParseError, EntryKind};
pub use error::{Corruption, StoreError};
pub use heal::Healed;
pub use journal::Swept;
pub use pack::PACK_MAX;
pub use put::PutOutcome;
pub use restore::{RestoreMethod, Staged};
pub use statcache::StatCache;
pub use stats::StoreStats;
pub use store::Store;
pub use verify::VerifyReport;
