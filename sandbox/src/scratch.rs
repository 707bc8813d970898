//! The per-run scratch directory holding the overlay upper/work directories and the mount point
//! of the new root. It is deleted when dropped.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::SandboxError;

/// A run's scratch directory (also the new root's mount point): `upper-N/` and `work-N/` per
/// writable root.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates a fresh, private scratch directory under `parent`.
    pub(crate) fn create(parent: &Path, roots: usize) -> Result<Scratch, SandboxError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let io_err = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::Io { op, path, source }
        };
        fs::create_dir_all(parent).map_err(io_err("create scratch directory", parent))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!(".shark-sandbox-{}-{n}", std::process::id()));
        if dir.exists() {
            remove_tree(&dir).map_err(io_err("remove stale scratch directory", &dir))?;
        }
        fs::create_dir(&dir).map_err(io_err("create scratch directory", &dir))?;
        let scratch = Scratch { dir };
        fs::set_permissions(&scratch.dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod scratch directory", &scratch.dir))?;
        let mut subdirs = Vec::new();
        for i in 0..roots {
            subdirs.push(scratch.upper(i));
            subdirs.push(scratch.work(i));
        }
        for sub in subdirs {
            fs::create_dir(&sub).map_err(io_err("create scratch directory", &sub))?;
        }
        Ok(scratch)
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
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover scratch directory wastes space but breaks nothing.
        let _ = remove_tree(&self.dir);
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
