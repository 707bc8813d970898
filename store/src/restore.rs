//! Restoring a blob into a directory: checked, atomic, single-pass, sparse, without debris.
//!
//! A restore works in an open directory on one name ([`Store::restore_at`]): nothing is
//! resolved by path, so no symbolic link is followed on the way (one at the name itself is
//! replaced, like any file), and nothing is written outside that directory. The path-based
//! [`Store::restore`] opens the target's parent and does the same.
//!
//! The content is written into an anonymous file in that directory (`O_TMPFILE`), hashed on
//! the way, and linked under the name (`linkat`) only once its digest matches: a corrupt blob,
//! a full disk or a killed process never leaves a half-written or wrong file where the user
//! expects theirs, and a kill leaves nothing at all (the kernel frees an anonymous file with
//! its last descriptor). An existing file at the name is replaced atomically: the new file is
//! linked under a temporary name, exchanged with the target (`renameat2(RENAME_EXCHANGE)`)
//! and the old one unlinked. That temporary name, and the one a filesystem without
//! `O_TMPFILE` needs for the whole write, is recorded in a journal first, so that the next
//! shark removes it after a kill (see [`crate::journal`]). [`Store::stage_at`] stops before
//! the link, so that a caller can check every file of a run before putting any in place.
//!
//! Each byte is read once: a raw blob is read, hashed and written in one pass (a second thread
//! writes while the first reads and hashes), a zstd blob decoded once the same way, and a
//! packed blob (see [`crate::pack`]) decoded and checked in memory before it is written. On
//! btrfs and xfs a raw blob is cloned instead (`FICLONE`): the file shares the blob's extents
//! and costs no space or copying; the clone is then hashed, since a corrupt blob must never be
//! handed out. Nothing is truncated (on ext4, truncating a fresh file to rewrite it makes the
//! close wait for the data to reach the disk), and replacing a file by exchange rather than by
//! renaming over it avoids the same flush. Like `cp`, a restore does not wait for the disk.
//!
//! Holes stay holes: a blob's holes (a raw blob written sparse) are skipped and every block
//! of zeros is left unwritten (see [`crate::sparse`]), so a 10 GiB file with 4 KiB of data is
//! restored as 4 KiB of data. A blob found corrupt is moved aside (see [`crate::blob`]).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

use crate::blob::{classify, hash, quarantine, Encoding, CHUNK};
use crate::journal::{fd_path, Journal};
use crate::pipe;
use crate::sparse::{hash_file, hash_zeros, Piece, Source, SparseFile, SparseWriter};
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

/// A blob's content, complete and checked, in a file in the target's directory that is not
/// in place yet: [`Staged::commit`] puts it there. Dropping it instead leaves the directory as
/// it was.
#[derive(Debug)]
pub struct Staged<'d> {
    dir: BorrowedFd<'d>,
    name: OsString,
    temp: Temp,
    method: RestoreMethod,
    digest: Digest,
    journal: Arc<Journal>,
}

/// The file a restore writes into.
#[derive(Debug)]
enum Temp {
    /// An `O_TMPFILE` file: no name until it is linked.
    Anonymous(File),
    /// A file under a journaled temporary name (no `O_TMPFILE` here); the name is `None`
    /// once renamed, the file `None` once closed.
    Named(Option<File>, Option<OsString>),
}

impl Temp {
    fn file(&self) -> &File {
        match self {
            Temp::Anonymous(file) | Temp::Named(Some(file), _) => file,
            Temp::Named(None, _) => unreachable!("closed only when dropped"),
        }
    }
}

impl Store {
    /// Writes `digest`'s content to `target` with permission bits `mode` (`mode & 0o7777`),
    /// replacing whatever file is there; see [`Store::restore_file`].
    pub fn restore(&self, digest: &Digest, target: &Path, mode: u32) -> Result<(), StoreError> {
        self.restore_file(digest, target, mode).map(drop)
    }

    /// Like [`Store::restore`], and says whether the file was cloned or copied.
    ///
    /// The target's directory must exist (it is opened by its path, symbolic links
    /// followed; [`Store::restore_at`] takes an open directory instead). A corrupt blob is
    /// [`StoreError::Corrupt`], a missing one [`StoreError::NoSuchBlob`]; in every error case
    /// the target is left as it was.
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
        let Some(name) = target.file_name() else {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the target has no file name",
            )));
        };
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let dir =
            rustix::fs::openat(CWD, parent, flags, Mode::empty()).map_err(|e| err(e.into()))?;
        let staged = self
            .stage_in(digest, dir.as_fd(), name, mode)
            .map_err(|f| f.into_store_error(err))?;
        staged.commit_in().map_err(err)
    }

    /// Writes `digest`'s content into the directory `dir` under `name` (one component: no
    /// `/`, not `.` or `..`) with permission bits `mode & 0o7777`, replacing what is there
    /// (a symbolic link at `name` is replaced, never followed; a directory is not replaced:
    /// `EISDIR`). Nothing is written anywhere but in `dir`, and nothing is left there if
    /// this fails or the process is killed (see [`crate::journal`] for the one moment a
    /// name is, and how the next shark removes it).
    pub fn restore_at(
        &self,
        digest: &Digest,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        mode: u32,
    ) -> Result<RestoreMethod, StoreError> {
        let staged = self.stage_at(digest, dir, name, mode)?;
        staged.commit()
    }

    /// The first half of [`Store::restore_at`]: the content, complete and checked, in a file
    /// in `dir` that is not linked under `name` yet. A caller restoring many files stages
    /// them all (so that a corrupt or missing blob stops it before any file changes), then
    /// commits each. A staged file holds a descriptor until it is committed or dropped.
    pub fn stage_at<'d>(
        &self,
        digest: &Digest,
        dir: BorrowedFd<'d>,
        name: &OsStr,
        mode: u32,
    ) -> Result<Staged<'d>, StoreError> {
        self.stage_in(digest, dir, name, mode)
            .map_err(|f| f.into_store_error(|source| at_err(digest, dir, name, source)))
    }

    fn stage_in<'d>(
        &self,
        digest: &Digest,
        dir: BorrowedFd<'d>,
        name: &OsStr,
        mode: u32,
    ) -> Result<Staged<'d>, Failure> {
        check_name(name).map_err(Failure::Target)?;
        let location = self.find(digest).map_err(Failure::Blob)?;
        let journal = self.journal.clone();
        let mut staged = Staged {
            dir,
            name: name.to_owned(),
            temp: create_temp(dir, name, &journal).map_err(Failure::Target)?,
            method: RestoreMethod::Copy,
            digest: *digest,
            journal,
        };
        staged.method = self.fill(digest, location, staged.temp.file())?;
        let mode = Mode::from_raw_mode(mode & 0o7777);
        rustix::fs::fchmod(staged.temp.file(), mode).map_err(|e| Failure::Target(e.into()))?;
        Ok(staged)
    }

    /// Writes and checks `digest`'s content, found at `location`, into the empty file `out`.
    fn fill(
        &self,
        digest: &Digest,
        location: Location,
        out: &File,
    ) -> Result<RestoreMethod, Failure> {
        let (path, encoding) = match location {
            Location::File(path, encoding) => (path, encoding),
            Location::Packed(row) => {
                // Small: decoded and checked in memory before anything is written.
                let content = self.pack.content(digest, row).map_err(Failure::Blob)?;
                let mut sink = SparseWriter::new(out);
                sink.write_all(&content).map_err(Failure::Target)?;
                sink.finish().map_err(Failure::Target)?;
                return Ok(RestoreMethod::Copy);
            }
        };
        if encoding == Encoding::Zstd {
            self.decode_into(digest, out)?;
            return Ok(RestoreMethod::Copy);
        }
        let blob = File::open(&path).map_err(|e| Failure::Blob(classify(*digest, &path, e)))?;
        if rustix::fs::ioctl_ficlone(out, &blob).is_ok() {
            check_clone(digest, out, &path, &blob)?;
            return Ok(RestoreMethod::Reflink);
        }
        // A failed clone may have cloned a part: the same bytes at the same offsets as the
        // copy writes, so the copy's result is the blob's content all the same.
        copy_raw(digest, &path, &blob, out)?;
        Ok(RestoreMethod::Copy)
    }

    /// Decodes and checks `digest`'s content into `out`, in one pass.
    fn decode_into(&self, digest: &Digest, out: &File) -> Result<(), Failure> {
        let mut reader = self.open_blob(digest).map_err(Failure::Blob)?;
        let (read, written) = pipe::with_writer(SparseWriter::new(out), None, |feeder| loop {
            let mut buf = feeder.buffer();
            match reader.by_ref().take(CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Failure::Blob(reader.classify(e))),
            }
            if feeder.send(buf).is_err() {
                return Ok(()); // the writer's error is returned below
            }
        });
        let sink = written.map_err(Failure::Target)?;
        read?;
        sink.finish().map_err(Failure::Target)?;
        Ok(())
    }
}

impl Staged<'_> {
    /// Puts the staged file in place under its name, replacing what is there (see
    /// [`Store::restore_at`]), and says how the content was restored.
    pub fn commit(self) -> Result<RestoreMethod, StoreError> {
        let (digest, dir, name) = (self.digest, self.dir, self.name.clone());
        self.commit_in()
            .map_err(|source| at_err(&digest, dir, &name, source))
    }

    /// The file restored into, not in place yet.
    pub fn file(&self) -> &File {
        self.temp.file()
    }

    fn commit_in(mut self) -> io::Result<RestoreMethod> {
        match &mut self.temp {
            Temp::Anonymous(file) => match link_fd(file, self.dir, &self.name) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => {
                    let temp = link_temp(file, self.dir, &self.name, &self.journal)?;
                    let replaced = replace(self.dir, &temp, &self.name);
                    self.journal.done();
                    replaced?;
                }
                Err(e) => return Err(e),
            },
            Temp::Named(_, temp) => {
                let name = temp.take().expect("a staged file is committed once");
                let replaced = replace(self.dir, &name, &self.name);
                self.journal.done();
                replaced?;
            }
        }
        Ok(self.method)
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Temp::Named(file, Some(name)) = &mut self.temp {
            // Closed first: a FUSE filesystem keeps a file unlinked while open under a
            // hidden name until it is released.
            drop(file.take());
            let _ = rustix::fs::unlinkat(self.dir, &*name, AtFlags::empty());
            self.journal.done();
        }
    }
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

/// The error of a restore into `dir` under `name`, naming the path the directory has now.
fn at_err(digest: &Digest, dir: BorrowedFd<'_>, name: &OsStr, source: io::Error) -> StoreError {
    let path = fd_path(dir).map_or_else(|| PathBuf::from(name), |d| d.join(name));
    StoreError::Restore {
        digest: *digest,
        path,
        source,
    }
}

/// `name` must be one ordinary path component.
fn check_name(name: &OsStr) -> io::Result<()> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(n)), None) if n == name => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a restore target name must be one path component",
        )),
    }
}

/// A fresh file in `dir` for `name`'s content: anonymous where the filesystem can, else under a
/// temporary name recorded in `journal` first.
fn create_temp(dir: BorrowedFd<'_>, name: &OsStr, journal: &Journal) -> io::Result<Temp> {
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, ".", flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => return Ok(Temp::Anonymous(File::from(fd))),
        // No O_TMPFILE on this filesystem (EOPNOTSUPP), or in this kernel (EISDIR).
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    loop {
        let temp = temp_name(name);
        journal.record(dir, &temp)?;
        match rustix::fs::openat(dir, &temp, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok(Temp::Named(Some(File::from(fd)), Some(temp))),
            Err(e) => {
                journal.done();
                if e != Errno::EXIST {
                    return Err(e.into());
                }
            }
        }
    }
}

/// Links the anonymous `file` into `dir` under a fresh temporary name for `name`, recorded in
/// `journal` first; the caller calls [`Journal::done`] once the name is gone.
fn link_temp(
    file: &File,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    journal: &Journal,
) -> io::Result<OsString> {
    loop {
        let temp = temp_name(name);
        journal.record(dir, &temp)?;
        match link_fd(file, dir, &temp) {
            Ok(()) => return Ok(temp),
            Err(e) => {
                journal.done();
                if e.raw_os_error() != Some(Errno::EXIST.raw_os_error()) {
                    return Err(e);
                }
            }
        }
    }
}

/// Gives the anonymous `file` the name `name` in `dir` (fails with `EEXIST` if taken).
fn link_fd(file: &File, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::linkat(file, c"", dir, name, AtFlags::EMPTY_PATH) {
        Ok(()) => return Ok(()),
        // Linking a descriptor needs CAP_DAC_READ_SEARCH on kernels before 6.10; linking its
        // /proc name is the documented way for anyone.
        Err(Errno::NOENT | Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(CWD, proc.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW).map_err(Into::into)
}

/// Puts the file at `temp` in place of `name` in `dir`, atomically; `temp` is gone after,
/// whatever happens. An existing file is exchanged with it and then unlinked, rather than
/// renamed over: on ext4 a rename over a file waits for the new file's data to be allocated.
fn replace(dir: BorrowedFd<'_>, temp: &OsStr, name: &OsStr) -> io::Result<()> {
    let unlink_temp = || {
        let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
    };
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            unlink_temp();
            return Err(Errno::ISDIR.into());
        }
        Ok(_) => match rustix::fs::renameat_with(dir, temp, dir, name, RenameFlags::EXCHANGE) {
            Ok(()) => return unlink_exchanged(dir, temp, name),
            // Gone meanwhile, or a filesystem that cannot exchange: a plain rename.
            Err(Errno::NOENT | Errno::INVAL | Errno::NOSYS) => {}
            Err(e) => {
                unlink_temp();
                return Err(e.into());
            }
        },
        Err(Errno::NOENT) => {}
        Err(e) => {
            unlink_temp();
            return Err(e.into());
        }
    }
    rustix::fs::renameat(dir, temp, dir, name).map_err(|e| {
        unlink_temp();
        e.into()
    })
}

/// After an exchange, `temp` holds what was at `name`: unlinked, unless a directory slipped in
/// at `name` since it was looked at, which is exchanged back and left alone.
fn unlink_exchanged(dir: BorrowedFd<'_>, temp: &OsStr, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, temp, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {
            rustix::fs::renameat_with(dir, temp, dir, name, RenameFlags::EXCHANGE)?;
            let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
            Err(Errno::ISDIR.into())
        }
        // The new file is in place; the old one stays under the journaled name, for the
        // sweep.
        Err(_) => Ok(()),
    }
}

/// A fresh temporary name for `name`: `.NAME.XXXXXX.shark-tmp`.
fn temp_name(name: &OsStr) -> OsString {
    let short: String = name.to_string_lossy().chars().take(64).collect();
    OsString::from(format!(".{short}.{}.shark-tmp", random_tag()))
}

/// Six random characters from `[A-Za-z0-9]`.
pub(crate) fn random_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // RandomState is seeded from the OS once per process and varied per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let mut bits = hasher.finish();
    (0..6)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize];
            bits /= ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

/// Copies a raw blob into `out` in one pass: each chunk is read, hashed, and handed to a
/// writer thread; holes are hashed as zeros and left holes. The copy is kept only if the
/// content matches `digest` (a mismatch moves the blob aside).
fn copy_raw(digest: &Digest, path: &Path, blob: &File, out: &File) -> Result<(), Failure> {
    let size = blob
        .metadata()
        .map_err(|e| Failure::Blob(classify(*digest, path, e)))?
        .len();
    let mut source = SparseFile::new(blob, size);
    let produce = |feeder: &pipe::Feeder| -> io::Result<Option<blake3::Hasher>> {
        let mut hasher = blake3::Hasher::new();
        loop {
            let mut buf = feeder.buffer();
            let sent = match source.next_piece(&mut buf, CHUNK)? {
                Piece::Data(_) => {
                    hash(&mut hasher, &buf);
                    feeder.send(buf)
                }
                Piece::Zeros(n) => {
                    hash_zeros(&mut hasher, n);
                    feeder.zeros(n)
                }
                Piece::End => return Ok(Some(hasher)),
            };
            if sent.is_err() {
                return Ok(None); // the writer's error is returned below
            }
        }
    };
    let (hashed, written) = pipe::with_writer(SparseWriter::new(out), None, produce);
    let sink = written.map_err(Failure::Target)?;
    let hasher = hashed
        .map_err(|e| Failure::Blob(classify(*digest, path, e)))?
        .expect("a writer error is returned first");
    sink.finish().map_err(Failure::Target)?;
    check(digest, hasher.finalize().into(), path, blob)
}

/// Hashes a freshly cloned file: the bytes the user will get.
fn check_clone(digest: &Digest, out: &File, path: &Path, blob: &File) -> Result<(), Failure> {
    let (actual, _) = hash_file(out).map_err(Failure::Target)?;
    check(digest, actual.into(), path, blob)
}

/// A mismatch between `digest` and the content's `actual` digest moves the blob (`path`,
/// opened as `blob`) aside and is corruption.
fn check(digest: &Digest, actual: Digest, path: &Path, blob: &File) -> Result<(), Failure> {
    if actual == *digest {
        return Ok(());
    }
    quarantine(digest, path, blob);
    Err(Failure::Blob(StoreError::Corrupt {
        digest: *digest,
        reason: Corruption::Mismatch { actual },
    }))
}
