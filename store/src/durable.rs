//! When a put's bytes reach the disk: the store's durability model.
//!
//! Two properties are kept apart:
//!
//! - **Atomicity** (always): a blob file appears under its digest only by the rename of a
//!   complete temp file from `tmp/`, so a process that crashes or is killed at any point
//!   leaves at most a temp file, never a partial blob; a packed blob (see [`crate::pack`]) is
//!   one row inserted by one SQLite transaction, which is in the pack whole or not at all
//!   after a crash, a `kill -9` or a power loss. This holds whatever the durability.
//! - **Durability** (across a power loss or kernel crash): a blob is durable once its data and
//!   the directory entry naming it are on the disk.
//!
//! A handle from [`Store::open`] is *immediate*: each put fsyncs its temp file before the
//! rename and the shard directory after it, so a blob is durable when the put returns. That
//! costs two disk flushes per new blob, which dominates storing many small files.
//!
//! A handle from [`Store::batched`] is *batched*: its puts skip both flushes and remember what
//! they wrote; [`Store::sync`] then makes all of it durable at once, before the caller records
//! anything that names those blobs (the executor syncs once per run, just before recording
//! it). A sync of a few new blobs fsyncs each of them and their directories; a sync of more
//! than [`SYNC_EACH_MAX`] flushes the store's filesystem once (`syncfs(2)`): one journal
//! commit instead of two per blob, at the price of also waiting for whatever else is dirty on
//! that filesystem (which is why a few blobs are fsynced one by one). Puts that find their
//! blob already stored write nothing and leave nothing to sync.
//!
//! What a power loss can cost with a batched handle: blobs renamed into place but not yet
//! synced may come back empty or truncated under their names. No record names them (the
//! caller had not synced, so it had not recorded), and they cannot be mistaken for good
//! content: every read, restore and verification re-hashes (a damaged blob is moved aside
//! and the command runs again), and a put that finds a blob whose size cannot be right for
//! its content replaces it instead of trusting it. The one gap: a second process that puts
//! the same content before the first has synced finds the blob present and records it after
//! its own (empty) sync; if the power fails before the kernel writes the blob back, that run
//! names a damaged blob, which is caught on reuse as above.
//!
//! # Packed blobs
//!
//! The pack runs in WAL mode with `synchronous = NORMAL`: a commit appends the transaction's
//! pages to `pack.db-wal` and returns without flushing anything. Committed frames are durable
//! once the WAL file is fsynced; SQLite itself fsyncs only at a checkpoint, and in that
//! order: the WAL first, then the frames are copied into `pack.db`, then `pack.db` is fsynced,
//! and only after that may a later writer start the WAL over. A row is therefore never only
//! in a file that has not been flushed since it was moved there: an fsync of the WAL at any
//! moment after the commit makes it durable, whether it is still in the WAL or has already
//! been checkpointed (and if the WAL is gone altogether, its rows are in the synced
//! `pack.db`). What fsyncing a file cannot cover is its name: the store's directory is fsynced
//! too the first time a handle meets a given WAL (or `pack.db`) file, since a new one may have
//! been created since anything flushed the directory.
//!
//! So an immediate handle's packed put fsyncs the WAL after its commit (one flush per new
//! small blob instead of a file's two). A batched handle's packed puts are not even committed
//! one by one: the rows wait in memory (read back at once through the store's handles in this
//! process, bounded to a few MiB, past which they go in early) and [`Store::sync`] inserts
//! them all in one transaction, then fsyncs the WAL once (a `syncfs` covers it too). A
//! thousand small outputs are then one commit of a few dozen pages instead of a thousand
//! commits of two pages each. Other processes see the rows from that sync on; none needs
//! them earlier, since a caller records the blobs it names only after the sync. A batched
//! handle dropped without a sync still inserts its rows (not durably). Unlike a blob
//! file's, a packed put that finds its row already there sets the flag as well: the row may
//! be another batched handle's, committed but not yet synced, and one fsync of the WAL then
//! makes it durable before this handle's caller records anything naming it, which closes, for
//! packed blobs, the gap described above for files.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::pack::Pack;
use crate::{Store, StoreError};

/// Up to this many new blobs, a sync fsyncs each one; past it, the whole filesystem at once.
pub const SYNC_EACH_MAX: usize = 16;

/// Whether a store handle's puts are durable on return or at the next [`Store::sync`].
#[derive(Debug, Clone, Default)]
pub(crate) enum Durability {
    /// Each put fsyncs before it returns.
    #[default]
    Immediate,
    /// Puts record what they wrote here; [`Store::sync`] flushes it.
    Batched(Arc<Batch>),
}

/// The state shared by a batched handle and its clones.
#[derive(Debug)]
pub(crate) struct Batch {
    pending: Mutex<Pending>,
    pack: Pack,
}

impl Drop for Batch {
    /// Small blobs the handle deferred go into the pack when its last clone goes, synced or
    /// not, so that a put is never lost to other handles (just not made durable).
    fn drop(&mut self) {
        let _ = self.pack.flush();
    }
}

/// What batched puts wrote and no sync has flushed yet.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    /// Whether a put inserted (or found) a row of the pack.
    pack: bool,
}

impl Durability {
    /// Whether a put must flush its own writes before returning.
    pub(crate) fn immediate(&self) -> bool {
        matches!(self, Durability::Immediate)
    }

    /// Remembers a new blob file (and the directories whose entries changed) for the next sync.
    pub(crate) fn defer(&self, file: PathBuf, dirs: &[&Path]) {
        if let Durability::Batched(batch) = self {
            let mut p = batch.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.files.push(file);
            p.dirs.extend(dirs.iter().map(|d| d.to_path_buf()));
        }
    }

    /// Remembers that the pack's WAL holds rows this handle has put (or relied on) since the
    /// last sync.
    pub(crate) fn defer_pack(&self) {
        if let Durability::Batched(batch) = self {
            batch.pending.lock().unwrap_or_else(|e| e.into_inner()).pack = true;
        }
    }
}

impl Store {
    /// A handle on the same store whose puts are atomic but not durable until [`Store::sync`]
    /// (see [`crate::durable`]). Clones of the returned handle share its pending writes.
    pub fn batched(&self) -> Store {
        let mut store = self.clone();
        store.durability = Durability::Batched(Arc::new(Batch {
            pending: Mutex::default(),
            pack: self.pack.clone(),
        }));
        store
    }

    /// Makes every blob put through this handle (and its clones) since the last sync durable.
    /// Nothing to do for an immediate handle, or when every put found its blob already stored
    /// as a file; a put of small content (new or found in the pack) leaves the pack's WAL to
    /// fsync.
    pub fn sync(&self) -> Result<(), StoreError> {
        let Durability::Batched(batch) = &self.durability else {
            return Ok(());
        };
        let Pending { files, dirs, pack } = {
            let mut p = batch.pending.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
        };
        // The small blobs put since the last sync go into the pack first, in one transaction.
        if pack {
            self.pack.flush()?;
        }
        if files.len() > SYNC_EACH_MAX {
            // Flushes the pack's WAL and the store's directory too: one filesystem.
            let blobs = File::open(&self.blobs).map_err(|e| sync_err(&self.blobs, e))?;
            return rustix::fs::syncfs(&blobs).map_err(|e| sync_err(&self.blobs, e.into()));
        }
        // Data before names: a directory entry must not become durable before its file.
        for path in files.iter().chain(&dirs) {
            File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| sync_err(path, e))?;
        }
        if pack {
            self.pack.sync()?;
        }
        Ok(())
    }
}

fn sync_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Write {
        path: path.to_owned(),
        source,
    }
}
