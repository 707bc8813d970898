//! Reading the overlay upper layers after a run: the exact list of what the command changed.
//!
//! In an upper layer, a regular file is a created or modified file (overlayfs copies the whole
//! file up, and `metacopy` is off in a user namespace), a directory is new, changed or merely on
//! the path to a change, a symlink is a created link, a 0/0 character device is a whiteout
//! (deletion), and a directory with the `opaque` xattr replaced whatever was there. Order: each
//! directory before its contents; a deletion before anything created at or under its path.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::scratch::Scratch;
use crate::{Change, SandboxError};

const OPAQUE_XATTRS: [&str; 2] = ["user.overlay.opaque", "trusted.overlay.opaque"];
const WHITEOUT_XATTRS: [&str; 2] = ["user.overlay.whiteout", "trusted.overlay.whiteout"];

/// The changes under every writable root, in apply order.
pub(crate) fn collect(roots: &[PathBuf], scratch: &Scratch) -> Result<Vec<Change>, SandboxError> {
    let mut changes = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        walk(&scratch.upper(i), root, &mut changes)?;
    }
    Ok(changes)
}

fn walk(upper: &Path, real: &Path, changes: &mut Vec<Change>) -> Result<(), SandboxError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::Changes { path, source }
    };
    let mut entries = fs::read_dir(upper)
        .map_err(err(upper))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(err(upper))?;
    entries.sort();
    for name in entries {
        let source = upper.join(&name);
        let path = real.join(&name);
        let meta = fs::symlink_metadata(&source).map_err(err(&source))?;
        entry(&source, path, &meta, changes)?;
    }
    Ok(())
}

fn entry(
    source: &Path,
    path: PathBuf,
    meta: &fs::Metadata,
    changes: &mut Vec<Change>,
) -> Result<(), SandboxError> {
    let err = |source| SandboxError::Changes {
        path: path.clone(),
        source,
    };
    let kind = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    let host = fs::symlink_metadata(&path).ok();
    if is_whiteout(source, meta) {
        changes.push(Change::Deleted { path });
        return Ok(());
    }
    if kind.is_dir() {
        let opaque = has_xattr(source, &OPAQUE_XATTRS);
        let host_dir = host.as_ref().filter(|h| h.is_dir());
        if opaque || (host.is_some() && host_dir.is_none()) {
            changes.push(Change::Deleted { path: path.clone() });
            changes.push(Change::Dir {
                path: path.clone(),
                mode,
            });
        } else if host_dir.is_none_or(|h| h.permissions().mode() & 0o7777 != mode) {
            changes.push(Change::Dir {
                path: path.clone(),
                mode,
            });
        }
        return walk(source, &path, changes);
    }
    if host.as_ref().is_some_and(|h| h.is_dir()) {
        changes.push(Change::Deleted { path: path.clone() });
    }
    if kind.is_symlink() {
        let target = fs::read_link(source).map_err(err)?;
        changes.push(Change::Symlink { path, target });
    } else if kind.is_file() {
        changes.push(Change::File {
            path,
            source: source.to_path_buf(),
            mode,
        });
    }
    // Sockets, fifos and devices made in the sandbox are not outputs.
    Ok(())
}

fn is_whiteout(source: &Path, meta: &fs::Metadata) -> bool {
    let kind = meta.file_type();
    (kind.is_char_device() && meta.rdev() == 0)
        || (kind.is_file() && meta.len() == 0 && has_xattr(source, &WHITEOUT_XATTRS))
}

fn has_xattr(path: &Path, names: &[&str]) -> bool {
    let Ok(cpath) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    names.iter().any(|name| {
        let Ok(cname) = std::ffi::CString::new(*name) else {
            return false;
        };
        // SAFETY: valid C strings; a zero-sized query only returns the value's length.
        let len =
            unsafe { libc::lgetxattr(cpath.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        len >= 0
    })
}
