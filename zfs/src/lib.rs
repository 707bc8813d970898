//! `shark-zfs`: filesystem snapshots for undo, on ZFS datasets and btrfs subvolumes.
//!
//! Where a writable root lives on a ZFS dataset or a btrfs subvolume, shark snapshots that
//! filesystem before a run's changes reach it, instead of copying what the run replaces into
//! its store: a snapshot costs the same whatever the size of the files. `shark undo` reads the
//! prior content back from the snapshot, or rolls the dataset back when that is exact.
//!
//! - [`detect`] finds the [`Volume`] (dataset or subvolume) a path is on, from the mount
//!   table: `zfs` (kernel ZFS) or `fuse.zfs` (zfs-fuse) mounts are datasets; on `btrfs`, the
//!   nearest directory above the path that is a subvolume root (inode 256).
//! - [`Volume::access`] says whether this user may snapshot it: root, or ZFS delegation
//!   (`zfs allow`: `snapshot`), or the subvolume's owner on btrfs; otherwise why not.
//! - [`Volume::snapshot`], [`Volume::snapshots`], [`Volume::destroy`], [`Volume::rename`]
//!   manage snapshots named `shark-RUN`: `DATASET@shark-RUN` on ZFS (with the time in the user
//!   property `org.shark:created`), read-only snapshots in `SUBVOLUME/.shark-snapshots/` on
//!   btrfs. [`Retention`] chooses which to prune.
//! - [`Volume::view`] makes a snapshot's files readable: btrfs snapshots are directories;
//!   ZFS ones are read through `.zfs/snapshot/NAME` or, where that does not exist (zfs-fuse),
//!   a temporary clone destroyed when the [`View`] is dropped. [`Volume::is_latest`] and
//!   [`Volume::rollback`] serve `zfs rollback`.
//!
//! ZFS is driven through its command-line tools and btrfs through `btrfs`, behind the
//! [`Tools`] seam, so this crate has no unsafe code and its logic is unit-tested without
//! either filesystem; the end-to-end tests run it on a btrfs loop device and a zfs-fuse pool.
//!
//! ```no_run
//! use std::time::SystemTime;
//! use shark_zfs::{detect, Access, System};
//!
//! let tools = System;
//! if let Some(volume) = detect(std::path::Path::new("/srv/data"), &tools)? {
//!     if volume.access(&tools) == Access::Allowed {
//!         let snap = volume.snapshot(&tools, "shark-42", SystemTime::now())?;
//!         println!("{}", snap.name);
//!     }
//! }
//! # Ok::<(), shark_zfs::ZfsError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod btrfs;
mod error;
mod mountinfo;
mod retention;
mod tools;
mod zfs;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use error::ZfsError;
pub use retention::Retention;
pub use tools::{System, Tools};

/// Which kind of filesystem a [`Volume`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A ZFS dataset (kernel ZFS or zfs-fuse).
    Zfs,
    /// A btrfs subvolume.
    Btrfs,
}

impl Backend {
    /// `zfs` or `btrfs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Zfs => "zfs",
            Backend::Btrfs => "btrfs",
        }
    }

    /// The backend named `name` (`zfs`, `btrfs`).
    pub fn from_name(name: &str) -> Option<Backend> {
        [Backend::Zfs, Backend::Btrfs]
            .into_iter()
            .find(|b| b.as_str() == name)
    }
}

/// A filesystem that can be snapshotted: a ZFS dataset or a btrfs subvolume.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Volume {
    /// Its kind.
    pub backend: Backend,
    /// The dataset's name (ZFS), or the subvolume's path (btrfs).
    pub name: String,
    /// Where its files are: the dataset's mount point, or the subvolume's path.
    pub root: PathBuf,
}

/// Whether this user may snapshot a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Snapshots can be taken.
    Allowed,
    /// They cannot; the text says why and how to allow them.
    Denied(String),
}

/// A snapshot of a [`Volume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its full name: `DATASET@shark-42`, or the snapshot's path on btrfs.
    pub name: String,
    /// Its short name, `shark-42`.
    pub short: String,
    /// When it was taken.
    pub created: SystemTime,
}

/// A snapshot's files, readable under [`View::root`] while the view lives.
#[derive(Debug)]
pub struct View<'t> {
    root: PathBuf,
    clone: Option<(String, &'t dyn Tools)>,
}

impl View<'_> {
    /// The directory that holds the volume's files as they were in the snapshot.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `path` (a path on the volume) was in the snapshot.
    pub fn locate(&self, volume: &Volume, path: &Path) -> Option<PathBuf> {
        path.strip_prefix(&volume.root)
            .ok()
            .map(|rel| self.root.join(rel))
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        if let Some((clone, tools)) = self.clone.take() {
            zfs::destroy_clone(tools, &clone);
        }
    }
}

/// The snapshot-capable volume `path` is on, or `None` when it is on another filesystem.
/// `path` should be absolute; symlinks in it are resolved.
pub fn detect(path: &Path, tools: &dyn Tools) -> Result<Option<Volume>, ZfsError> {
    let path = std::fs::canonicalize(path).map_err(error::io_err(path))?;
    let mounts = mountinfo::current().map_err(error::io_err("/proc/self/mountinfo"))?;
    let Some(mount) = mountinfo::containing(&mounts, &path) else {
        return Ok(None);
    };
    let _ = tools;
    match mount.fstype.as_str() {
        "zfs" | "fuse.zfs" => Ok(Some(Volume {
            backend: Backend::Zfs,
            name: mount.source.clone(),
            root: mount.point.clone(),
        })),
        "btrfs" => Ok(btrfs::subvolume_of(&path, &mount.point).map(|root| Volume {
            backend: Backend::Btrfs,
            name: root.to_string_lossy().into_owned(),
            root,
        })),
        _ => Ok(None),
    }
}

impl Volume {
    /// Whether this user may take snapshots here.
    pub fn access(&self, tools: &dyn Tools) -> Access {
        match self.backend {
            Backend::Zfs => zfs::access(tools, &self.name),
            Backend::Btrfs => btrfs::access(&self.root),
        }
    }

    /// Takes a snapshot called `short` (`shark-42`) now.
    pub fn snapshot(
        &self,
        tools: &dyn Tools,
        short: &str,
        created: SystemTime,
    ) -> Result<Snapshot, ZfsError> {
        match self.backend {
            Backend::Zfs => zfs::snapshot(tools, &self.name, short, created),
            Backend::Btrfs => btrfs::snapshot(tools, &self.root, short),
        }
    }

    /// Renames `snap` to `short`.
    pub fn rename(
        &self,
        tools: &dyn Tools,
        snap: &Snapshot,
        short: &str,
    ) -> Result<Snapshot, ZfsError> {
        match self.backend {
            Backend::Zfs => zfs::rename(tools, &self.name, snap, short),
            Backend::Btrfs => btrfs::rename(&self.root, snap, short),
        }
    }

    /// The snapshots shark took here (named `shark-...`), oldest first.
    pub fn snapshots(&self, tools: &dyn Tools) -> Result<Vec<Snapshot>, ZfsError> {
        let mut list = match self.backend {
            Backend::Zfs => zfs::list(tools, &self.name)?,
            Backend::Btrfs => btrfs::list(&self.root)?,
        };
        list.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(list)
    }

    /// Destroys the snapshot named `name` (a [`Snapshot::name`]).
    pub fn destroy(&self, tools: &dyn Tools, name: &str) -> Result<(), ZfsError> {
        match self.backend {
            Backend::Zfs => zfs::destroy(tools, name),
            Backend::Btrfs => btrfs::destroy(tools, Path::new(name)),
        }
    }

    /// Makes the snapshot `name` readable; `scratch` is a directory for a clone's mount point.
    pub fn view<'t>(
        &self,
        tools: &'t dyn Tools,
        name: &str,
        scratch: &Path,
    ) -> Result<View<'t>, ZfsError> {
        match self.backend {
            Backend::Zfs => zfs::view(tools, self, name, scratch),
            Backend::Btrfs => Ok(View {
                root: PathBuf::from(name),
                clone: None,
            }),
        }
    }

    /// Whether `name` is the newest snapshot of this dataset (any snapshot, not only shark's);
    /// always false on btrfs, which has no rollback.
    pub fn is_latest(&self, tools: &dyn Tools, name: &str) -> Result<bool, ZfsError> {
        match self.backend {
            Backend::Zfs => zfs::is_latest(tools, &self.name, name),
            Backend::Btrfs => Ok(false),
        }
    }

    /// Rolls the dataset back to snapshot `name`, which must be the latest.
    pub fn rollback(&self, tools: &dyn Tools, name: &str) -> Result<(), ZfsError> {
        zfs::rollback(tools, name)
    }
}
