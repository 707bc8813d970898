//! Applying changes to the real filesystem, as if the command had run there.
//!
//! Every write goes through a [`Tree`] of the writable roots, so a change never lands outside
//! them or follows a symlink in a parent directory (see [`crate::beneath`]). Files are renamed
//! out of the upper layer when it shares the target's filesystem; otherwise they are copied into
//! an anonymous file in the target's directory and linked into place, so no reader ever sees a
//! half-written file. Modes are set exactly, regardless of the umask.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::beneath::Tree;
use crate::{Change, SandboxError};

/// Applies `changes` in order beneath `tree`.
pub fn apply_changes(tree: &Tree, changes: &[Change]) -> Result<(), SandboxError> {
    for change in changes {
        apply_one(tree, change).map_err(|source| SandboxError::Apply {
            path: change.path().to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Applies one change beneath `tree`.
pub fn apply_one(tree: &Tree, change: &Change) -> Result<(), crate::TreeError> {
    match change {
        Change::Deleted { path } => tree.remove(path),
        Change::Dir { path, mode } => tree.make_dir(path, *mode),
        Change::Symlink { path, target } => tree.make_symlink(path, target),
        Change::File { path, source, mode } => {
            let io = |source| crate::TreeError::Io {
                op: "prepare",
                path: path.clone(),
                source,
            };
            fs::set_permissions(source, fs::Permissions::from_mode(*mode)).map_err(io)?;
            if tree.rename_into(source, path)? {
                return Ok(());
            }
            let mut from = fs::File::open(source).map_err(io)?;
            tree.write_file(path, &mut from, *mode)
        }
    }
}
