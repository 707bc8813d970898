//! The per-run scratch directory holding the overlay upper/work directories and the mount point
//! of the new root.
//!
//! Scratch directories are recycled. Creating a directory is the slow part of a short run on
//! filesystems that are slow to allocate inodes (ext4 without a journal scans for recently
//! deleted inodes on every allocation), and a run needs one plus an upper and a work directory
//! per writable root. So a finished run empties its upper layers and renames its directory to
//! `.shark-pool-PID-N` in the same parent, and the next run claims one by renaming it to its own
//! `.shark-sandbox-PID-N` name: a rename is atomic, so two runs never claim the same directory,
//! and a directory is put in the pool only once its layers are empty, so a run never sees another
//! run's changes (a claimed directory with anything left in a layer is discarded all the same).
//! At most [`POOL_MAX`] directories wait in a pool; a run that finds it full deletes its own.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::SandboxError;

/// Name prefix of a recycled scratch directory waiting for its next run.
const POOL_PREFIX: &str = ".shark-pool-";

/// Recycled scratch directories kept per parent at most.
pub(crate) const POOL_MAX: usize = 4;

/// A run's scratch directory (also the new root's mount point): `upper-N/` and `work-N/` per
/// writable root.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
    parent: PathBuf,
    roots: usize,
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

impl Scratch {
    /// A private scratch directory under `parent` for a run with writable roots `roots`, whose
    /// upper layers are empty and carry the roots' permission bits (the root of an overlay
    /// shows its upper layer's mode, so `/tmp` keeps its sticky bit).
    pub(crate) fn create(parent: &Path, roots: &[PathBuf]) -> Result<Scratch, SandboxError> {
        let io_err = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::Io { op, path, source }
        };
        fs::create_dir_all(parent).map_err(io_err("create scratch directory", parent))?;
        let dir = parent.join(format!(".shark-sandbox-{}", unique_suffix()));
        if dir.exists() {
            remove_tree(&dir).map_err(io_err("remove stale scratch directory", &dir))?;
        }
        let scratch = Scratch {
            dir,
            parent: parent.to_path_buf(),
            roots: roots.len(),
        };
        if !scratch.claim_pooled() {
            fs::create_dir(&scratch.dir)
                .map_err(io_err("create scratch directory", &scratch.dir))?;
            fs::set_permissions(&scratch.dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("chmod scratch directory", &scratch.dir))?;
        }
        for (i, root) in roots.iter().enumerate() {
            let upper = scratch.upper(i);
            for sub in [&upper, &scratch.work(i)] {
                match fs::create_dir(sub) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(io_err("create scratch directory", sub)(e))
                    }
                    _ => {}
                }
            }
            // Best effort: where the mode cannot be read or set, the root shows the default.
            if let Ok(meta) = fs::metadata(root) {
                let mode = meta.permissions().mode() & 0o7777;
                let _ = fs::set_permissions(&upper, fs::Permissions::from_mode(mode | 0o700));
            }
        }
        Ok(scratch)
    }

    /// Takes a directory from the pool under our own name; false if none could be had.
    fn claim_pooled(&self) -> bool {
        let Ok(entries) = fs::read_dir(&self.parent) else {
            return false;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(POOL_PREFIX) {
                continue;
            }
            // Another run may claim the same one first: then this rename fails and we go on.
            if fs::rename(entry.path(), &self.dir).is_err() {
                continue;
            }
            if self.layers_empty() {
                return true;
            }
            let _ = remove_tree(&self.dir);
        }
        false
    }

    /// Whether every layer directory in the directory is empty (or absent).
    fn layers_empty(&self) -> bool {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return false;
        };
        entries
            .flatten()
            .all(|e| fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none()))
    }

    /// The mount point of the sandbox's root: the scratch directory itself. The overlays hold
    /// their upper and work directories before the root is bound over them, and one directory
    /// fewer to create and delete per run matters on filesystems slow to allocate inodes.
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The upper layer of writable root `i`.
    pub(crate) fn upper(&self, i: usize) -> PathBuf {
        self.dir.join(format!("upper-{i}"))
    }

    /// The overlay work directory of writable root `i`.
    pub(crate) fn work(&self, i: usize) -> PathBuf {
        self.dir.join(format!("work-{i}"))
    }

    /// Empties the upper and work layers and puts the directory in the pool.
    fn recycle(&self) -> io::Result<()> {
        let pooled = fs::read_dir(&self.parent)?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(POOL_PREFIX))
            .count();
        if pooled >= POOL_MAX {
            return Err(io::Error::other("the pool is full"));
        }
        // The work directories go too: a `volatile` overlay marks its work directory, and
        // overlayfs refuses to mount one so marked again.
        let layers = (0..self.roots).flat_map(|i| [self.upper(i), self.work(i)]);
        for layer in layers {
            for entry in fs::read_dir(layer)? {
                let entry = entry?;
                match entry.file_type()?.is_dir() {
                    true => remove_tree(&entry.path())?,
                    false => fs::remove_file(entry.path())?,
                }
            }
        }
        let name = format!("{POOL_PREFIX}{}", unique_suffix());
        fs::rename(&self.dir, self.parent.join(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover scratch directory wastes space but breaks nothing (and the
        // next shark sweeps it once this process is gone).
        if self.recycle().is_err() {
            let _ = remove_tree(&self.dir);
        }
    }
}

/// Removes a directory tree, making directories writable where overlayfs left them mode 000.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_up(dir)?;
            fs::remove_dir_all(dir)
        }
        other => other,
    }
}

fn open_up(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_up(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled(parent: &Path) -> Vec<PathBuf> {
        fs::read_dir(parent)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(POOL_PREFIX))
            .map(|e| e.path())
            .collect()
    }

    #[test]
    fn a_finished_run_leaves_an_empty_directory_that_the_next_one_claims() {
        let parent = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let roots = vec![root.path().to_path_buf()];
        let first = Scratch::create(parent.path(), &roots).unwrap();
        let mode = fs::metadata(first.upper(0)).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o7777,
            0o1777,
            "the upper layer carries the root's mode"
        );
        fs::create_dir_all(first.upper(0).join("a/b")).unwrap();
        fs::write(first.upper(0).join("a/b/f"), "x").unwrap();
        fs::write(first.upper(0).join("g"), "y").unwrap();
        fs::set_permissions(first.upper(0).join("a"), fs::Permissions::from_mode(0o000)).unwrap();
        let first_dir = first.root();
        drop(first);
        assert!(!first_dir.exists());
        let pool = pooled(parent.path());
        assert_eq!(pool.len(), 1);
        assert_eq!(fs::read_dir(pool[0].join("upper-0")).unwrap().count(), 0);

        let second = Scratch::create(parent.path(), &roots).unwrap();
        assert!(
            pooled(parent.path()).is_empty(),
            "the pooled directory was claimed"
        );
        assert_eq!(fs::read_dir(second.upper(0)).unwrap().count(), 0);
        assert!(second.work(0).is_dir());
    }

    #[test]
    fn a_pooled_directory_with_leftovers_is_never_handed_out() {
        let parent = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let roots = vec![root.path().to_path_buf()];
        let stale = parent.path().join(format!("{POOL_PREFIX}1-1"));
        fs::create_dir_all(stale.join("upper-0")).unwrap();
        fs::write(stale.join("upper-0/left-over"), "old run").unwrap();
        let scratch = Scratch::create(parent.path(), &roots).unwrap();
        assert_eq!(fs::read_dir(scratch.upper(0)).unwrap().count(), 0);
        assert!(!stale.exists(), "the tainted directory was discarded");
    }

    #[test]
    fn the_pool_stays_bounded() {
        let parent = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let roots = vec![root.path().to_path_buf()];
        let many: Vec<Scratch> = (0..POOL_MAX + 3)
            .map(|_| Scratch::create(parent.path(), &roots).unwrap())
            .collect();
        drop(many);
        assert_eq!(pooled(parent.path()).len(), POOL_MAX);
        let left = fs::read_dir(parent.path()).unwrap().count();
        assert_eq!(left, POOL_MAX, "the others were deleted");
    }
}
