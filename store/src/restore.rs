//! Restoring a blob to a path: checked, atomic, by reflink where the filesystem can.
//!
//! The content goes into a temp file in the target's directory (`.NAME.XXXXXX.shark-tmp`), is
//! checked against the digest, gets the requested mode and is renamed over the target. Until
//! that rename the target is untouched, so a corrupt blob, a full disk or a killed process
//! never leaves a half-written or wrong file where the user expects theirs. Like `cp`, a
//! restore does not wait for the disk: the file reaches it with the filesystem's writeback.
//!
//! A raw blob on btrfs or xfs is cloned (`FICLONE`): the restored file shares the blob's extents
//! and costs no space or copying. The clone is then hashed, since a corrupt blob must never be
//! handed out. Zstd blobs, and raw blobs where cloning is not possible (another filesystem, ext4,
//! tmpfs), are copied: a raw blob inside the kernel (`copy_file_range`), then hashed from the
//! page cache; a zstd blob decoded through the checking [`BlobReader`](crate::BlobReader).
//! A packed blob (see [`crate::pack`]) is small: it is decoded and checked in memory, then
//! written to the temp file. Either way a blob found corrupt is moved aside (see
//! [`crate::blob`]).

use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::blob::{classify, quarantine, Encoding, CHUNK};
use crate::pipe;
use crate::store::Location;
use crate::{Corruption, Digest, Store, StoreError};

/// How a blob was restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMethod {
    /// The file shares the blob's extents (btrfs, xfs).
    Reflink,
    /// The content was copied (and decompressed if need be).
    Copy,
}

impl Store {
    /// Writes `digest`'s content to `target` with permission bits `mode` (`mode & 0o7777`),
    /// replacing whatever file is there; see [`Store::restore_file`].
    pub fn restore(&self, digest: &Digest, target: &Path, mode: u32) -> Result<(), StoreError> {
        self.restore_file(digest, target, mode).map(drop)
    }

    /// Like [`Store::restore`], and says whether the file was cloned or copied.
    ///
    /// The target's directory must exist. A corrupt blob is [`StoreError::Corrupt`], a missing
    /// one [`StoreError::NoSuchBlob`]; in every error case the target is left as it was.
    pub fn restore_file(
        &self,
        digest: &Digest,
        target: &Path,
        mode: u32,
    ) -> Result<RestoreMethod, StoreError> {
        let err = |source| StoreError::Restore {
            digest: *digest,
            path: target.to_owned(),
            source,
        };
        let (blob, encoding) = match self.find(digest)? {
            Location::File(blob, encoding) => (blob, encoding),
            Location::Packed(row) => {
                // Small: decoded and checked in memory before anything is written.
                let content = self.pack.content(digest, row)?;
                let temp = temp_beside(target).map_err(err)?;
                temp.as_file().write_all(&content).map_err(err)?;
                return finish(temp, target, mode, RestoreMethod::Copy).map_err(err);
            }
        };
        let temp = temp_beside(target).map_err(err)?;
        let cloned = match encoding {
            Encoding::Raw => clone_into(&blob, temp.as_file()),
            Encoding::Zstd => None,
        };
        let method = if let Some(source) = cloned {
            check_clone(digest, &temp, &blob, &source).map_err(|e| e.into_store_error(err))?;
            RestoreMethod::Reflink
        } else if encoding == Encoding::Raw {
            // A failed clone should leave the file empty; make sure before copying.
            temp.as_file().set_len(0).map_err(err)?;
            copy_checked(digest, &blob, temp.as_file()).map_err(|e| e.into_store_error(err))?;
            RestoreMethod::Copy
        } else {
            self.copy_into(digest, temp.as_file())
                .map_err(|e| e.into_store_error(err))?;
            RestoreMethod::Copy
        };
        finish(temp, target, mode, method).map_err(err)
    }

    /// Decodes and checks `digest`'s content into `out`.
    fn copy_into(&self, digest: &Digest, out: &File) -> Result<(), Failure> {
        let mut reader = self.open_blob(digest).map_err(Failure::Blob)?;
        let (read, written) = pipe::with_writer(out, out, |feeder| {
            loop {
                let mut buf = feeder.buffer();
                match reader.by_ref().take(CHUNK as u64).read_to_end(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(Failure::Blob(reader.classify(e))),
                }
                if feeder.send(buf).is_err() {
                    return Ok(()); // the writer's error is returned below
                }
            }
        });
        written.map_err(Failure::Target)?;
        read
    }
}

/// Gives a complete, checked temp file its mode and renames it over `target`.
fn finish(
    temp: NamedTempFile,
    target: &Path,
    mode: u32,
    method: RestoreMethod,
) -> io::Result<RestoreMethod> {
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode & 0o7777))?;
    temp.persist(target).map_err(|e| e.error)?;
    Ok(method)
}

/// A restore failed on the blob's side, or on the target's.
enum Failure {
    Blob(StoreError),
    Target(io::Error),
}

impl Failure {
    fn into_store_error(self, target_err: impl FnOnce(io::Error) -> StoreError) -> StoreError {
        match self {
            Failure::Blob(e) => e,
            Failure::Target(e) => target_err(e),
        }
    }
}

/// A fresh temp file in `target`'s directory, named after it.
fn temp_beside(target: &Path) -> io::Result<NamedTempFile> {
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the target has no file name")
    })?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(&format!(".{}.", short_name(name)))
        .suffix(".shark-tmp")
        .tempfile_in(dir)
}

/// At most 64 characters of a file name, so that prefix and suffix still fit `NAME_MAX`.
fn short_name(name: &OsStr) -> String {
    name.to_string_lossy().chars().take(64).collect()
}

/// Clones the blob at `blob` into the empty file `dest` and returns the blob's open file;
/// `None` if the filesystem cannot.
fn clone_into(blob: &Path, dest: &File) -> Option<File> {
    let src = File::open(blob).ok()?;
    rustix::fs::ioctl_ficlone(dest, &src).is_ok().then_some(src)
}

/// Copies a raw blob into `out` inside the kernel (`copy_file_range`, as `cp` does), then
/// hashes the blob, now in the page cache, on all cores; the copy is kept only if the blob's
/// content matches `digest` (a mismatch moves the blob aside). The kernel copied the very
/// bytes that were hashed: blobs are immutable once renamed into place.
fn copy_checked(digest: &Digest, blob: &Path, out: &File) -> Result<(), Failure> {
    let source = File::open(blob).map_err(|e| Failure::Blob(classify(*digest, blob, e)))?;
    loop {
        match rustix::fs::copy_file_range(&source, None, out, None, 1 << 30) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Failure::Target(e.into())),
        }
    }
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_mmap_rayon(blob)
        .map_err(|e| Failure::Blob(classify(*digest, blob, e)))?;
    let actual = Digest::from(hasher.finalize());
    if actual != *digest {
        quarantine(digest, blob, &source);
        return Err(Failure::Blob(StoreError::Corrupt {
            digest: *digest,
            reason: Corruption::Mismatch { actual },
        }));
    }
    Ok(())
}

/// Hashes a freshly cloned temp file: the bytes the user will get. A mismatch moves the blob
/// (`blob`, opened as `source`) aside.
fn check_clone(
    digest: &Digest,
    temp: &NamedTempFile,
    blob: &Path,
    source: &File,
) -> Result<(), Failure> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_mmap_rayon(temp.path())
        .map_err(Failure::Target)?;
    let actual = Digest::from(hasher.finalize());
    if actual != *digest {
        quarantine(digest, blob, source);
        return Err(Failure::Blob(StoreError::Corrupt {
            digest: *digest,
            reason: Corruption::Mismatch { actual },
        }));
    }
    Ok(())
}
