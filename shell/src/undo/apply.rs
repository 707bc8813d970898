//! Carrying out an undo plan.
//!
//! Content comes from the store (checked against its digest as it is read) or from a
//! snapshot's files (cloned where the filesystem can, so a btrfs undo costs the same whatever
//! the size). A ZFS dataset is rolled back instead when the snapshot is its latest and nothing
//! on it but the run's own paths changed since (compared entry by entry, without reading
//! content); everything else is restored path by path.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use shark_lineage::SnapshotRecord;
use shark_store::Store;
use shark_zfs::{Backend, System, View, Volume};

use super::fsops;
use super::plan::{Action, Source};
use super::snap;

/// Why an undo step failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The snapshot holding prior content is gone.
    #[error("snapshot {name} was pruned by the retention policy")]
    Pruned {
        /// Its name.
        name: String,
    },
    /// A snapshot could not be read or rolled back to.
    #[error("cannot use snapshot {name}")]
    Snapshot {
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: shark_zfs::ZfsError,
    },
    /// A path could not be restored.
    #[error("cannot restore {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The snapshots an undo reads from, made readable.
pub(crate) struct Views<'t> {
    open: HashMap<String, (Volume, View<'t>)>,
}

impl<'t> Views<'t> {
    /// Opens every snapshot that `actions` read from.
    pub(crate) fn open(
        tools: &'t System,
        actions: &[Action],
        snapshots: &[SnapshotRecord],
        scratch: &Path,
    ) -> Result<Views<'t>, ApplyError> {
        let mut open = HashMap::new();
        for a in actions {
            let Action::File {
                from: Source::Snapshot(name),
                ..
            } = a
            else {
                continue;
            };
            if open.contains_key(name) {
                continue;
            }
            let record = snapshots.iter().find(|s| &s.name == name);
            let (Some(record), Some(volume)) = (record, record.and_then(snap::volume_of)) else {
                return Err(ApplyError::Pruned { name: name.clone() });
            };
            if record.pruned {
                return Err(ApplyError::Pruned { name: name.clone() });
            }
            let view =
                volume
                    .view(tools, name, scratch)
                    .map_err(|source| ApplyError::Snapshot {
                        name: name.clone(),
                        source,
                    })?;
            open.insert(name.clone(), (volume, view));
        }
        Ok(Views { open })
    }

    /// Rolls back every ZFS dataset whose snapshot is its latest and on which nothing but
    /// `touched` changed since; returns the actions left to carry out.
    pub(crate) fn roll_back(
        &self,
        tools: &System,
        actions: Vec<Action>,
        touched: &HashSet<PathBuf>,
    ) -> Result<(Vec<Action>, Vec<String>), ApplyError> {
        let mut rolled = Vec::new();
        for (name, (volume, view)) in &self.open {
            if volume.backend != Backend::Zfs || !volume.is_latest(tools, name).unwrap_or(false) {
                continue;
            }
            if !same_except(view.root(), &volume.root, touched) {
                continue;
            }
            volume
                .rollback(tools, name)
                .map_err(|source| ApplyError::Snapshot {
                    name: name.clone(),
                    source,
                })?;
            rolled.push((name.clone(), volume.root.clone()));
        }
        let left = actions
            .into_iter()
            .filter(|a| !rolled.iter().any(|(_, root)| a.path().starts_with(root)))
            .collect();
        Ok((left, rolled.into_iter().map(|(n, _)| n).collect()))
    }
}

/// Carries out `actions` in order.
pub(crate) fn apply(actions: &[Action], store: &Store, views: &Views) -> Result<(), ApplyError> {
    for a in actions {
        let path = a.path().to_owned();
        let io_err = |source| ApplyError::Io {
            path: path.clone(),
            source,
        };
        match a {
            Action::Remove { path } => fsops::remove(path).map_err(io_err)?,
            Action::Dir { path, mode } => fsops::ensure_dir(path, *mode).map_err(io_err)?,
            Action::Symlink { path, target } => {
                fsops::write_symlink(path, target.as_ref()).map_err(io_err)?
            }
            Action::File { path, mode, from } => {
                restore_file(path, *mode, from, store, views).map_err(io_err)?
            }
        }
    }
    Ok(())
}

fn restore_file(
    path: &Path,
    mode: u32,
    from: &Source,
    store: &Store,
    views: &Views,
) -> io::Result<()> {
    match from {
        Source::Store(digest) => {
            let mut reader = store.open_blob(digest).map_err(io::Error::other)?;
            fsops::write_file(path, mode, |f| copy_big(&mut reader, f))
        }
        Source::Snapshot(name) => {
            let (volume, view) = views.open.get(name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("snapshot {name} is not open"),
                )
            })?;
            let source = view.locate(volume, path).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the path is not on the snapshot's volume",
                )
            })?;
            let src = File::open(&source)?;
            fsops::write_file(path, mode, |f| clone_or_copy(&src, f))
        }
    }
}

/// Copies with a buffer large enough that a gigabyte is a thousand writes.
fn copy_big(from: &mut impl io::Read, to: &mut File) -> io::Result<()> {
    use io::Write;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Clones `src` into the empty `dest` where the filesystem shares extents, else copies it.
fn clone_or_copy(src: &File, dest: &mut File) -> io::Result<()> {
    if rustix::fs::ioctl_ficlone(&*dest, src).is_ok() {
        return Ok(());
    }
    let mut src = src;
    copy_big(&mut src, dest)
}

/// Whether the tree at `live` matches the snapshot's tree at `snap` everywhere except at
/// `touched` paths (and below them): the same names, kinds, modes, sizes, inode numbers and
/// change times (a snapshot keeps them all), directories' own times aside.
fn same_except(snap: &Path, live: &Path, touched: &HashSet<PathBuf>) -> bool {
    let names = |dir: &Path| -> Option<HashSet<std::ffi::OsString>> {
        let entries = std::fs::read_dir(dir).ok()?;
        entries.map(|e| e.ok().map(|e| e.file_name())).collect()
    };
    let (Some(a), Some(b)) = (names(snap), names(live)) else {
        return false;
    };
    for name in a.union(&b) {
        let live_path = live.join(name);
        if touched.contains(&live_path) || name == ".zfs" {
            continue;
        }
        let (Ok(x), Ok(y)) = (
            std::fs::symlink_metadata(snap.join(name)),
            std::fs::symlink_metadata(&live_path),
        ) else {
            return false;
        };
        if x.file_type() != y.file_type() || x.mode() != y.mode() {
            return false;
        }
        if x.is_dir() {
            if !same_except(&snap.join(name), &live_path, touched) {
                return false;
            }
        } else if (
            x.len(),
            x.ino(),
            x.mtime(),
            x.mtime_nsec(),
            x.ctime(),
            x.ctime_nsec(),
        ) != (
            y.len(),
            y.ino(),
            y.mtime(),
            y.mtime_nsec(),
            y.ctime(),
            y.ctime_nsec(),
        ) {
            return false;
        }
    }
    true
}
