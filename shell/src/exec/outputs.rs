//! Outputs: storing what a run changed, and putting it back when a run is reused.
//!
//! Outputs are an ordered list: applying them in order (deletions, then directories before
//! what they contain) reproduces the filesystem the command left behind. Restoring never
//! leaves a half-written file (each file is written beside its target and renamed), and every
//! blob a reuse needs is checked before the first change is made, so a corrupt blob means
//! "run the command instead" with nothing touched.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use shark_lineage::{Output, OutputKind};
use shark_sandbox::Change;
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
    /// The filesystem refused a change.
    #[error("cannot restore {path}")]
    Io {
        /// The output's path.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
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

/// Makes the filesystem look as the recorded run left it. Files that already hold the right
/// content and mode are left alone.
pub fn restore(outputs: &[Output], store: &Store, cache: &StatCache) -> Result<(), RestoreError> {
    let pending: Vec<&Output> = outputs
        .iter()
        .filter(|o| !(o.kind == OutputKind::File && already_there(o, cache)))
        .collect();
    for o in &pending {
        if let (OutputKind::File, Some(d)) = (&o.kind, &o.digest) {
            store.verify(d).map_err(|source| RestoreError::Blob {
                path: o.path.clone(),
                source,
            })?;
        }
    }
    for o in outputs {
        restore_one(o, &pending, store, cache)?;
    }
    Ok(())
}

fn restore_one(
    o: &Output,
    pending: &[&Output],
    store: &Store,
    cache: &StatCache,
) -> Result<(), RestoreError> {
    let path = Path::new(&o.path);
    let io_err = |source| RestoreError::Io {
        path: o.path.clone(),
        source,
    };
    match o.kind {
        OutputKind::Deleted => remove_any(path).map_err(io_err),
        OutputKind::Dir => make_dir(path, o.mode.unwrap_or(0o755)).map_err(io_err),
        OutputKind::Symlink => {
            let target = o.symlink_target.as_deref().unwrap_or_default();
            replace_with_symlink(path, Path::new(target)).map_err(io_err)
        }
        OutputKind::File => {
            if !pending.iter().any(|p| std::ptr::eq(*p, o)) {
                return Ok(());
            }
            let digest = o.digest.expect("file outputs carry a digest");
            if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(path).map_err(io_err)?;
            }
            store
                .restore(&digest, path, o.mode.unwrap_or(0o644))
                .map_err(|source| RestoreError::Store {
                    path: o.path.clone(),
                    source,
                })?;
            if let Ok(meta) = fs::metadata(path) {
                let _ = cache.remember(path, &meta, digest);
            }
            Ok(())
        }
    }
}

/// True when `o`'s path already holds its recorded content and mode.
fn already_there(o: &Output, cache: &StatCache) -> bool {
    let path = Path::new(&o.path);
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file()
        && Some(meta.permissions().mode() & MODE_BITS) == o.mode
        && cache.digest_file(path).ok() == o.digest
}

fn remove_any(path: &Path) -> io::Result<()> {
    let res = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    match res {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            fs::remove_file(path)?;
            fs::create_dir_all(path)?;
        }
        Err(_) => fs::create_dir_all(path)?,
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & MODE_BITS))
}

fn replace_with_symlink(path: &Path, target: &Path) -> io::Result<()> {
    if fs::read_link(path).is_ok_and(|t| t == target) {
        return Ok(());
    }
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(path)?;
    }
    let tmp = sibling_temp(path);
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// A temporary name beside `path`, on the same filesystem, so a rename replaces atomically.
fn sibling_temp(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.shark-{}", std::process::id()))
}
