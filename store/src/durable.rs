//! When a put's bytes reach the disk: the store's durability model.
//!
//! Two properties are kept apart:
//!
//! - **Atomicity** (always): a blob file appears under its digest only by the rename of a
//!   complete temp file from `tmp/`, so a process that crashes or is killed at any point
//!   leaves at most a temp file, never a partial blob. This holds whatever the durability.
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

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    Batched(Arc<Mutex<Pending>>),
}

/// What batched puts wrote and no sync has flushed yet.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl Durability {
    /// Whether a put must flush its own writes before returning.
    pub(crate) fn immediate(&self) -> bool {
        matches!(self, Durability::Immediate)
    }

    /// Remembers a new blob file (and the directories whose entries changed) for the next sync.
    pub(crate) fn defer(&self, file: PathBuf, dirs: &[&Path]) {
        if let Durability::Batched(pending) = self {
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.files.push(file);
            p.dirs.extend(dirs.iter().map(|d| d.to_path_buf()));
        }
    }
}

impl Store {
    /// A handle on the same store whose puts are atomic but not durable until [`Store::sync`]
    /// (see [`crate::durable`]). Clones of the returned handle share its pending writes.
    pub fn batched(&self) -> Store {
        let mut store = self.clone();
        store.durability = Durability::Batched(Arc::default());
        store
    }

    /// Makes every blob put through this handle (and its clones) since the last sync durable.
    /// Nothing to do for an immediate handle, or when every put found its blob already stored.
    pub fn sync(&self) -> Result<(), StoreError> {
        let Durability::Batched(pending) = &self.durability else {
            return Ok(());
        };
        let Pending { files, dirs } = {
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
        };
        if files.is_empty() && dirs.is_empty() {
            return Ok(());
        }
        if files.len() > SYNC_EACH_MAX {
            let blobs = File::open(&self.blobs).map_err(|e| sync_err(&self.blobs, e))?;
            return rustix::fs::syncfs(&blobs).map_err(|e| sync_err(&self.blobs, e.into()));
        }
        // Data before names: a directory entry must not become durable before its file.
        for path in files.iter().chain(&dirs) {
            File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| sync_err(path, e))?;
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
