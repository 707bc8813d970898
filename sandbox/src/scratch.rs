//! The per-run scratch directory holding the overlay upper/work directories and the mount point
//! of the new root.
//!
//! Scratch directories are recycled, and cleaned off the critical path. Creating and deleting
//! directories is the slow part of a short run on ext4 (each waits for the journal, for
//! milliseconds when other processes sync), and a run needs one plus an upper and a work
//! directory per writable root, in which overlayfs makes four more (`work/`, and with
//! `volatile` its `incompat/volatile/dirty` marker, which must be gone before the next mount).
//!
//! So a directory goes through three states, each a name in the same parent, and moves between
//! them by renames (atomic, so two processes never take the same directory):
//!
//! - `.shark-sandbox-PID-N`: in use by a run;
//! - `.shark-used-PID-N`: a finished run's, as it left it: its drop only renames it;
//! - `.shark-pool-PID-N`: washed (its upper and work layers empty), ready for the next run.
//!
//! A run takes a washed directory if there is one, else creates one; then a thread of its
//! process washes the used directories while the command runs (`.shark-washing-PID-N` while it
//! does; one whose process died is taken over by the next washer). So a run neither creates
//! nor deletes a directory once two are in circulation. A run never sees another run's changes: only a directory whose layers are empty is
//! handed out (a claimed directory with anything left in a layer is discarded all the same).
//! At most [`POOL_MAX`] directories wait, used or washed; a run that finds them all taken
//! deletes its own.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::SandboxError;

/// Name prefix of a washed scratch directory waiting for its next run.
const POOL_PREFIX: &str = ".shark-pool-";
/// Name prefix of a finished run's directory, to be washed.
const USED_PREFIX: &str = ".shark-used-";
/// Name prefix of a directory being washed.
const WASHING_PREFIX: &str = ".shark-washing-";

/// Recycled scratch directories kept per parent at most.
pub(crate) const POOL_MAX: usize = 4;

/// A run's scratch directory (also the new root's mount point): `upper-N/` and `work-N/` per
/// writable root.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
    parent: PathBuf,
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The entries of `parent` whose name starts with `prefix`.
fn named(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
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
        };
        if !scratch.claim() {
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
        start_washer(parent);
        Ok(scratch)
    }

    /// Takes a washed directory under our own name; false if none could be had.
    fn claim(&self) -> bool {
        for candidate in named(&self.parent, POOL_PREFIX) {
            // Another run may claim the same one first: then this rename fails and we go on.
            if fs::rename(&candidate, &self.dir).is_err() {
                continue;
            }
            if layers_empty(&self.dir) {
                return true;
            }
            let _ = remove_tree(&self.dir);
        }
        false
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

    /// Leaves the directory, as the run left it, for a washer.
    fn recycle(&self) -> io::Result<()> {
        let waiting = [POOL_PREFIX, USED_PREFIX, WASHING_PREFIX]
            .iter()
            .map(|p| named(&self.parent, p).len())
            .sum::<usize>();
        if waiting >= POOL_MAX {
            return Err(io::Error::other("the pool is full"));
        }
        let name = format!("{USED_PREFIX}{}", unique_suffix());
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

/// Whether every layer directory in `dir` is empty (or absent).
fn layers_empty(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries
        .flatten()
        .all(|e| fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none()))
}

/// Empties every layer of a scratch directory: what a run left in its upper layers, and
/// overlayfs's work directories (a `volatile` overlay marks its work directory, and overlayfs
/// refuses to mount one so marked again).
fn wash_layers(dir: &Path) -> io::Result<()> {
    for layer in fs::read_dir(dir)? {
        for entry in fs::read_dir(layer?.path())? {
            let entry = entry?;
            match entry.file_type()?.is_dir() {
                true => remove_tree(&entry.path())?,
                false => fs::remove_file(entry.path())?,
            }
        }
    }
    Ok(())
}

/// Whether a directory named `name` is waiting to be washed: used, or left half-washed by a
/// process that is gone.
fn needs_washing(name: &str) -> bool {
    if name.starts_with(USED_PREFIX) {
        return true;
    }
    let pid = name
        .strip_prefix(WASHING_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    pid.is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists())
}

/// Washes the used directories under `parent` into the pool.
pub(crate) fn wash(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !needs_washing(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let washing = parent.join(format!("{WASHING_PREFIX}{}", unique_suffix()));
        if fs::rename(entry.path(), &washing).is_err() {
            continue; // another washer took it
        }
        let washed = wash_layers(&washing).is_ok() && layers_empty(&washing);
        let pooled = parent.join(format!("{POOL_PREFIX}{}", unique_suffix()));
        if !washed || fs::rename(&washing, pooled).is_err() {
            let _ = remove_tree(&washing);
        }
    }
}

/// Washes the used directories under `parent` on a thread of their own, which dies with the
/// process if it is not done by then (the next washer finishes its work).
fn start_washer(parent: &Path) {
    let waiting = fs::read_dir(parent).into_iter().flatten().flatten();
    if !waiting
        .into_iter()
        .any(|e| needs_washing(&e.file_name().to_string_lossy()))
    {
        return;
    }
    let parent = parent.to_path_buf();
    let _ = std::thread::Builder::new()
        .name("shark-washer".into())
        .spawn(move || wash(&parent));
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

    fn waiting(parent: &Path, prefix: &str) -> Vec<PathBuf> {
        named(parent, prefix)
    }

    #[test]
    fn a_finished_run_is_left_used_then_washed_into_the_pool() {
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
        fs::create_dir_all(first.work(0).join("work/incompat/volatile")).unwrap();
        fs::set_permissions(first.upper(0).join("a"), fs::Permissions::from_mode(0o000)).unwrap();
        let first_dir = first.root();
        drop(first);
        assert!(!first_dir.exists());
        let used = waiting(parent.path(), USED_PREFIX);
        assert_eq!(used.len(), 1, "the drop only renames it");
        assert_eq!(fs::read_dir(used[0].join("upper-0")).unwrap().count(), 2);

        wash(parent.path());
        let pool = waiting(parent.path(), POOL_PREFIX);
        assert_eq!(pool.len(), 1);
        assert!(waiting(parent.path(), USED_PREFIX).is_empty());
        assert!(layers_empty(&pool[0]), "washed: both layers empty");

        let second = Scratch::create(parent.path(), &roots).unwrap();
        assert!(
            waiting(parent.path(), POOL_PREFIX).is_empty(),
            "the washed directory was claimed"
        );
        assert_eq!(fs::read_dir(second.upper(0)).unwrap().count(), 0);
        assert!(second.work(0).is_dir());
    }

    #[test]
    fn a_used_directory_is_washed_before_anyone_gets_it() {
        let parent = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let roots = vec![root.path().to_path_buf()];
        let used = parent.path().join(format!("{USED_PREFIX}1-1"));
        fs::create_dir_all(used.join("upper-0/d")).unwrap();
        fs::write(used.join("upper-0/d/left-over"), "old run").unwrap();
        fs::create_dir_all(used.join("work-0/work")).unwrap();
        let scratch = Scratch::create(parent.path(), &roots).unwrap();
        assert_ne!(scratch.root(), used);
        assert_eq!(fs::read_dir(scratch.upper(0)).unwrap().count(), 0);
        assert_eq!(fs::read_dir(scratch.work(0)).unwrap().count(), 0);
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
    fn a_washer_that_died_is_taken_over() {
        let parent = tempfile::tempdir().unwrap();
        // No process has this pid (above the kernel's limit).
        let orphan = parent.path().join(format!("{WASHING_PREFIX}4294967295-1"));
        fs::create_dir_all(orphan.join("upper-0/x")).unwrap();
        let alive = parent
            .path()
            .join(format!("{WASHING_PREFIX}{}-x", std::process::id()));
        fs::create_dir_all(alive.join("upper-0/y")).unwrap();
        wash(parent.path());
        let pool = waiting(parent.path(), POOL_PREFIX);
        assert_eq!(pool.len(), 1);
        assert!(layers_empty(&pool[0]));
        assert!(alive.exists(), "a live washer's directory is left to it");
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
        let left = fs::read_dir(parent.path()).unwrap().count();
        assert_eq!(left, POOL_MAX, "the others were deleted");
    }
}
