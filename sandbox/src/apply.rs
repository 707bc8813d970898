//! Applying changes to the real filesystem, as if the command had run there.
//!
//! Files are renamed out of the upper layer when it shares the target's filesystem; otherwise
//! they are copied to a temporary file beside the target and renamed over it, so no reader ever
//! sees a half-written file. Modes are set exactly, regardless of the umask.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Change, SandboxError};

/// Applies `changes` in order.
pub fn apply_changes(changes: &[Change]) -> Result<(), SandboxError> {
    for change in changes {
        apply_one(change).map_err(|source| SandboxError::Apply {
            path: change.path().to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn apply_one(change: &Change) -> io::Result<()> {
    match change {
        Change::Deleted { path } => delete(path),
        Change::Dir { path, mode } => {
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(path)?;
                    fs::create_dir(path)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(path)?,
                Err(e) => return Err(e),
            }
            fs::set_permissions(path, fs::Permissions::from_mode(*mode))
        }
        Change::Symlink { path, target } => {
            let temp = temp_beside(path);
            std::os::unix::fs::symlink(target, &temp)?;
            rename_or_clean(&temp, path)
        }
        Change::File { path, source, mode } => {
            fs::set_permissions(source, fs::Permissions::from_mode(*mode))?;
            match fs::rename(source, path) {
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                    copy_into_place(source, path, *mode)
                }
                other => other,
            }
        }
    }
}

fn delete(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A hidden name in the same directory as `path`, for atomic replacement.
fn temp_beside(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.shark-{}-{n}", std::process::id()))
}

fn rename_or_clean(temp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(temp, path).inspect_err(|_| {
        let _ = fs::remove_file(temp);
    })
}

fn copy_into_place(source: &Path, path: &Path, mode: u32) -> io::Result<()> {
    let temp = temp_beside(path);
    let result = (|| {
        let mut from = fs::File::open(source)?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        io::copy(&mut from, &mut to)?;
        to.set_permissions(fs::Permissions::from_mode(mode))?;
        to.sync_all()
    })();
    match result {
        Ok(()) => rename_or_clean(&temp, path),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}
