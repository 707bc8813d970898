//! Outputs: storing what a run changed, and putting it back when a run is reused.
//!
//! Outputs are an ordered list: applying them in order (deletions, then directories before
//! what they contain) reproduces the filesystem the command left behind. Restoring never
//! leaves a half-written file (each file is written beside its target and renamed), and every
//! blob a reuse needs is checked before the first change is made, so a corrupt blob means
//! "run the command instead" with nothing touched.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use shark_lineage::{Output, OutputKind};
use shark_sandbox::{Change, Tree, TreeError};
use shark_store::{Digest, StatCache, Store, StoreError};

/// Mode bits kept for files and directories (permissions, setuid/setgid, sticky).
const MODE_BITS: u32 = 0o7777;

/// Stores every file a run wrote and describes its changes as outputs.
///
/// Returns `None` for a change whose path is not UTF-8: such a run cannot be recorded
/// faithfully and must not be reused.
pub fn record(changes: &[Change], store: &Store) -> Result<(Vec<Output>, bool), StoreError> {
    let mut outputs = Vec::with_capacity(changes.len());
    let mut faithful = true;
    for change in changes {
        let (path, out) = match change {
            Change::File { path, source, mode } => {
                let put = store.put_file(source)?;
                (
                    path,
                    out(
                        OutputKind::File,
                        Some(put.digest),
                        Some(mode & MODE_BITS),
                        None,
                    ),
                )
            }
            Change::Dir { path, mode } => (
                path,
                out(OutputKind::Dir, None, Some(mode & MODE_BITS), None),
            ),
            Change::Symlink { path, target } => {
                let digest = Digest::of_symlink(target.as_os_str().as_bytes());
                match target.to_str() {
                    Some(t) => (
                        path,
                        out(OutputKind::Symlink, Some(digest), None, Some(t.into())),
                    ),
                    None => {
                        faithful = false;
                        continue;
                    }
                }
            }
            Change::Deleted { path } => (path, out(OutputKind::Deleted, None, None, None)),
        };
        match path.to_str() {
            Some(p) => outputs.push(Output {
                path: p.to_owned(),
                ..out
            }),
            None => faithful = false,
        }
    }
    Ok((outputs, faithful))
}

fn out(
    kind: OutputKind,
    digest: Option<Digest>,
    mode: Option<u32>,
    target: Option<String>,
) -> Output {
    Output {
        path: String::new(),
        kind,
        digest,
        mode,
        symlink_target: target,
    }
}

/// Why a reuse could not restore its outputs.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A blob is missing or corrupt; nothing was changed, and the command should run instead.
    #[error("recorded output {path} cannot be restored")]
    Blob {
        /// The output's path.
        path: String,
        /// The store's complaint.
        #[source]
        source: StoreError,
    },
    /// The output cannot be put in its place: outside the writable roots, in the shark home,
    /// under a parent that is not a real directory, or refused by the filesystem.
    #[error("cannot restore {path}")]
    Place {
        /// The output's path.
        path: String,
        /// Why.
        #[source]
        source: TreeError,
    },
    /// A restored file could not be written from the store.
    #[error("cannot restore {path}")]
    Store {
        /// The output's path.
        path: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// Makes the filesystem look as the recorded run left it, writing only beneath `tree` (the
/// invocation's writable roots, never the shark home) and never through a symlink in a parent
/// directory. Files that already hold the right content and mode are left alone.
///
/// Everything that can be checked is checked before the first change: every blob to restore,
/// and every path's place (beneath the roots, its parent a real directory or one that an
/// earlier output makes). A failure there changes nothing, and the command runs instead.
pub fn restore(
    outputs: &[Output],
    store: &Store,
    cache: &StatCache,
    tree: &Tree,
) -> Result<(), RestoreError> {
    let pending: Vec<&Output> = outputs
        .iter()
        .filter(|o| !(o.kind == OutputKind::File && already_there(o, cache, tree)))
        .collect();
    preflight(outputs, tree)?;
    for o in &pending {
        if let (OutputKind::File, Some(d)) = (&o.kind, &o.digest) {
            store.verify(d).map_err(|source| RestoreError::Blob {
                path: o.path.clone(),
                source,
            })?;
        }
    }
    for o in outputs {
        restore_one(o, &pending, store, cache, tree)?;
    }
    Ok(())
}

/// Checks that every output can be written where it belongs: beneath the roots, in a parent
/// that is a real directory now or is made by an earlier output.
fn preflight(outputs: &[Output], tree: &Tree) -> Result<(), RestoreError> {
    let mut made: std::collections::HashSet<&Path> = std::collections::HashSet::new();
    for o in outputs {
        let path = Path::new(&o.path);
        let parent_made = path.parent().is_some_and(|p| made.contains(p));
        if !parent_made {
            tree.parent(path).map_err(|source| RestoreError::Place {
                path: o.path.clone(),
                source,
            })?;
        }
        match o.kind {
            OutputKind::Dir => {
                made.insert(path);
            }
            OutputKind::Deleted => {
                made.retain(|m| !m.starts_with(path));
            }
            _ => {}
        }
    }
    Ok(())
}

fn restore_one(
    o: &Output,
    pending: &[&Output],
    store: &Store,
    cache: &StatCache,
    tree: &Tree,
) -> Result<(), RestoreError> {
    let path = Path::new(&o.path);
    let place = |source| RestoreError::Place {
        path: o.path.clone(),
        source,
    };
    match o.kind {
        OutputKind::Deleted => tree.remove(path).map_err(place),
        OutputKind::Dir => tree
            .make_dir(path, o.mode.unwrap_or(0o755) & MODE_BITS)
            .map_err(place),
        OutputKind::Symlink => {
            let target = o.symlink_target.as_deref().unwrap_or_default();
            tree.make_symlink(path, Path::new(target)).map_err(place)
        }
        OutputKind::File => {
            if !pending.iter().any(|p| std::ptr::eq(*p, o)) {
                return Ok(());
            }
            let digest = o.digest.expect("file outputs carry a digest");
            // Written by the store straight into the parent directory, opened beneath the
            // roots: never through a symlink, sparse where the content is, no debris.
            let (dir, name) = tree.parent(path).map_err(place)?;
            if matches!(tree.entry(path), Ok(shark_sandbox::Entry::Dir)) {
                tree.remove(path).map_err(place)?;
            }
            let mode = o.mode.unwrap_or(0o644) & MODE_BITS;
            store
                .restore_at(&digest, dir.as_fd(), &name, mode)
                .map_err(|source| RestoreError::Store {
                    path: o.path.clone(),
                    source,
                })?;
            if let Ok(meta) = fs::symlink_metadata(path) {
                let _ = cache.remember(path, &meta, digest);
            }
            Ok(())
        }
    }
}

/// True when `o`'s path already holds its recorded content and mode (reached without
/// following a symlink anywhere).
fn already_there(o: &Output, cache: &StatCache, tree: &Tree) -> bool {
    let path = Path::new(&o.path);
    if !matches!(tree.entry(path), Ok(shark_sandbox::Entry::File { .. })) {
        return false;
    }
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file()
        && Some(meta.permissions().mode() & MODE_BITS) == o.mode
        && cache.digest_file(path).ok() == o.digest
}
