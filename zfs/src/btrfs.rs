//! btrfs: a subvolume is snapshotted read-only into `SUBVOLUME/.shark-snapshots/shark-RUN`
//! with `btrfs subvolume snapshot -r`, which its owner may do without privileges. A nested
//! subvolume is not part of its parent's snapshots, so earlier snapshots cost nothing in later
//! ones.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::io_err;
use crate::tools::args;
use crate::{Access, Snapshot, Tools, ZfsError};

/// The directory holding a subvolume's snapshots.
pub(crate) const DIR: &str = ".shark-snapshots";

/// The inode number of every subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`).
const SUBVOLUME_ROOT_INO: u64 = 256;

/// The nearest directory at or above `path`, not above `mount`, that is a subvolume root.
pub(crate) fn subvolume_of(path: &Path, mount: &Path) -> Option<PathBuf> {
    let mut dir = path;
    loop {
        let meta = std::fs::symlink_metadata(dir).ok()?;
        if meta.is_dir() && meta.ino() == SUBVOLUME_ROOT_INO {
            return Some(dir.to_path_buf());
        }
        if dir == mount {
            return None;
        }
        dir = dir.parent()?;
    }
}

pub(crate) fn access(root: &Path) -> Access {
    let euid = rustix::process::geteuid();
    match std::fs::metadata(root) {
        Ok(m) if euid.is_root() || m.uid() == euid.as_raw() => Access::Allowed,
        Ok(m) => Access::Denied(format!(
            "btrfs subvolume {} belongs to uid {}, and only its owner (or root) may \
             snapshot it",
            root.display(),
            m.uid()
        )),
        Err(e) => Access::Denied(format!("cannot stat {}: {e}", root.display())),
    }
}

pub(crate) fn snapshot(tools: &dyn Tools, root: &Path, short: &str) -> Result<Snapshot, ZfsError> {
    let dir = root.join(DIR);
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(&dir, perms).map_err(io_err(&dir))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(&dir)(e)),
    }
    let dest = dir.join(short);
    // `btrfs subvolume snapshot` would put the snapshot inside an existing directory.
    if dest.symlink_metadata().is_ok() {
        return Err(ZfsError::Exists {
            name: dest.to_string_lossy().into_owned(),
        });
    }
    tools.run(
        "btrfs",
        &args([
            "subvolume".as_ref(),
            "snapshot".as_ref(),
            "-r".as_ref(),
            root.as_os_str(),
            dest.as_os_str(),
        ]),
    )?;
    Ok(Snapshot {
        created: created(&dest)?,
        name: dest.to_string_lossy().into_owned(),
        short: short.to_owned(),
    })
}

/// When a snapshot was taken: its root's birth time (btrfs records it), else its mtime.
fn created(path: &Path) -> Result<SystemTime, ZfsError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    meta.created()
        .or_else(|_| meta.modified())
        .map_err(io_err(path))
}

pub(crate) fn rename(root: &Path, snap: &Snapshot, short: &str) -> Result<Snapshot, ZfsError> {
    let dest = root.join(DIR).join(short);
    if dest.symlink_metadata().is_ok() {
        return Err(ZfsError::Exists {
            name: dest.to_string_lossy().into_owned(),
        });
    }
    std::fs::rename(&snap.name, &dest).map_err(io_err(&dest))?;
    Ok(Snapshot {
        name: dest.to_string_lossy().into_owned(),
        short: short.to_owned(),
        created: snap.created,
    })
}

pub(crate) fn list(root: &Path) -> Result<Vec<Snapshot>, ZfsError> {
    let dir = root.join(DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let short = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_subvolume = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_dir() && m.ino() == SUBVOLUME_ROOT_INO);
        if short.starts_with("shark-") && is_subvolume {
            out.push(Snapshot {
                created: created(&path)?,
                name: path.to_string_lossy().into_owned(),
                short,
            });
        }
    }
    Ok(out)
}

/// Deletes a snapshot: `btrfs subvolume delete` (root, or a filesystem mounted with
/// `user_subvol_rm_allowed`), else as its owner may: made writable, emptied, removed.
pub(crate) fn destroy(tools: &dyn Tools, path: &Path) -> Result<(), ZfsError> {
    let deleted = tools.run(
        "btrfs",
        &args(["subvolume".as_ref(), "delete".as_ref(), path.as_os_str()]),
    );
    match deleted {
        Ok(_) => Ok(()),
        Err(e) if rustix::process::geteuid().is_root() => Err(e),
        Err(_) => {
            tools.run(
                "btrfs",
                &args([
                    "property".as_ref(),
                    "set".as_ref(),
                    "-ts".as_ref(),
                    path.as_os_str(),
                    "ro".as_ref(),
                    "false".as_ref(),
                ]),
            )?;
            std::fs::remove_dir_all(path).map_err(io_err(path))
        }
    }
}
