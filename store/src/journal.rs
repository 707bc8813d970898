//! The restore journal: temporary names in users' directories that a killed shark leaves, and
//! the sweep that removes them.
//!
//! A restore writes into an anonymous file (`O_TMPFILE`) that a kill simply frees, and links
//! it under the target's name only once it is complete and checked (see [`Store::restore_at`]).
//! Two cases need a name in the target's directory for a moment, which a `kill -9` at the
//! wrong time would leave behind: replacing an existing file (the complete file is linked
//! under a temporary name, then exchanged with the target, and the old file unlinked), and
//! filesystems without `O_TMPFILE` (the content is written under the temporary name). Such a
//! name is `.NAME.XXXXXX.shark-tmp`, where `NAME` is (the first 64 characters of) the target's
//! name and `XXXXXX` six random characters, and it is written into this process's journal
//! *before* it is created.
//!
//! # Format
//!
//! A journal is a file `<store>/restores/<pid>-<random>.journal`, created by a process at its
//! first such restore and held under an exclusive `flock` for the process's lifetime (it is
//! created as `<pid>-<random>.new` and renamed once locked, so that a `.journal` without its
//! lock always means a dead process). Each line records one temporary name, appended (one
//! `write`) before the name is created:
//!
//! ```text
//! <dev> <ino> <hex of the temporary name> <hex of the directory's path>\n
//! ```
//!
//! `dev` and `ino` (decimal) identify the directory. When no restore of the process is
//! between its record and its last rename any more, the journal is emptied; a process that
//! ends normally removes its journal.
//!
//! # The sweep
//!
//! [`Store::sweep`] (run by shark when it starts) takes each journal whose lock it can
//! get, which means the process that wrote it has died, and for each line: opens the
//! directory by its path without following any symbolic link (component by component with
//! `O_NOFOLLOW`), checks that it is still the directory recorded (same `dev` and `ino`), and
//! unlinks the temporary name there if it is not a directory. Then it removes the journal. A
//! `.new` file more than an hour old (a process killed between creating its journal and
//! locking it) is removed too.
//! Why this is safe: a recorded name is one this process chose at random in that directory
//! and would have created there; whatever is under it now is either the new content never
//! renamed into place or the old content just exchanged out of it, and nothing else uses such
//! names. A directory that moved or was replaced is left alone. Names written just before a power loss may be missing from the journal after it
//! (the journal is not fsynced: it is for kills and crashes of shark, not of the machine).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, CWD};

#[cfg(doc)]
use crate::Store;

/// A provisional journal this recently modified may belong to a live process not yet holding
/// its lock; it is left for a later sweep.
const YOUNG: Duration = Duration::from_secs(60 * 60);

/// Suffix of journal files, which are always locked by their process while it lives.
const SUFFIX: &str = ".journal";

/// Suffix of a journal file not yet locked (and so empty).
const NEW: &str = ".new";

/// A store handle's restore journal (shared by its clones), created on first use.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    file: Option<(File, PathBuf)>,
    /// Recorded names whose restores have not finished yet.
    open: usize,
}

impl Journal {
    pub(crate) fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            state: Mutex::default(),
        }
    }

    /// Where the journals are.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `name` is about to be created in `dir`. Every record is followed by one
    /// [`Journal::done`] once the name is gone again (renamed over the target, or unlinked).
    pub(crate) fn record(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
        let stat = rustix::fs::fstat(dir)?;
        let path = fd_path(dir).unwrap_or_default();
        let line = format!(
            "{} {} {} {}\n",
            stat.st_dev,
            stat.st_ino,
            hex(name.as_bytes()),
            hex(path.as_os_str().as_bytes())
        );
        let mut state = self.lock();
        if state.file.is_none() {
            state.file = Some(self.create()?);
        }
        let (file, _) = state.file.as_ref().expect("created above");
        // One write of one line, at the end (O_APPEND).
        (&*file).write_all(line.as_bytes())?;
        state.open += 1;
        Ok(())
    }

    /// A restore that recorded a name has finished with it.
    pub(crate) fn done(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        if state.open == 0 {
            if let Some((file, _)) = &state.file {
                // Nothing of ours is left to sweep; best effort (a stale line is harmless).
                let _ = file.set_len(0);
            }
        }
    }

    /// Creates and locks this process's journal file: under a provisional name, which the
    /// sweep leaves alone, until it is locked.
    fn create(&self) -> io::Result<(File, PathBuf)> {
        fs::create_dir_all(&self.dir)?;
        let stem = format!("{}-{}", std::process::id(), crate::restore::random_tag());
        let new = self.dir.join(format!("{stem}{NEW}"));
        let path = self.dir.join(format!("{stem}{SUFFIX}"));
        let flags = OFlags::CREATE
            | OFlags::EXCL
            | OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CLOEXEC
            | OFlags::NOFOLLOW;
        let fd = rustix::fs::open(&new, flags, Mode::from_raw_mode(0o600))?;
        let locked = rustix::fs::flock(&fd, FlockOperation::LockExclusive)
            .map_err(io::Error::from)
            .and_then(|()| fs::rename(&new, &path));
        if let Err(e) = locked {
            let _ = fs::remove_file(&new);
            return Err(e);
        }
        Ok((File::from(fd), path))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some((_, path)) = &state.file {
            // Still locked: no sweep can be reading it.
            let _ = fs::remove_file(path);
        }
    }
}

/// What [`Store::sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// The temporary files removed from users' directories, by the paths they had.
    pub removed: Vec<PathBuf>,
    /// Journals of dead processes read and removed.
    pub journals: usize,
    /// Temp files of dead processes' puts removed from the store.
    pub temps: usize,
}

/// Sweeps the journals in `dir` (see the module's documentation) into `swept`. Only a
/// directory that cannot be listed is an error.
pub(crate) fn sweep(dir: &Path, swept: &mut Swept) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(SUFFIX) && sweep_journal(&path, swept) {
            swept.journals += 1;
        } else if name.ends_with(NEW) && is_old(&path) && fs::remove_file(&path).is_ok() {
            // Created by a process killed before it could lock it: empty.
            swept.journals += 1;
        }
    }
    Ok(())
}

/// Sweeps one journal if its process is gone; whether it did.
fn sweep_journal(path: &Path, swept: &mut Swept) -> bool {
    let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let Ok(fd) = rustix::fs::open(path, flags, Mode::empty()) else {
        return false;
    };
    if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false; // its process is alive
    }
    let mut file = File::from(fd);
    let mut text = Vec::new();
    if file.read_to_end(&mut text).is_err() {
        return false;
    }
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(removed) = parse(line).and_then(|entry| remove(&entry)) {
            swept.removed.push(removed);
        }
    }
    // Still locked by us: a concurrent sweep that opened it too finds the same lines.
    fs::remove_file(path).is_ok()
}

fn is_old(path: &Path) -> bool {
    let modified = fs::symlink_metadata(path).and_then(|m| m.modified());
    modified.is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() > YOUNG)
}

/// One journal line.
struct Entry {
    dev: u64,
    ino: u64,
    name: OsString,
    dir: PathBuf,
}

fn parse(line: &[u8]) -> Option<Entry> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split(' ');
    let dev = fields.next()?.parse().ok()?;
    let ino = fields.next()?.parse().ok()?;
    let name = OsString::from_vec(unhex(fields.next()?)?);
    let dir = PathBuf::from(OsString::from_vec(unhex(fields.next()?)?));
    let single = Path::new(&name).components().count() == 1
        && matches!(
            Path::new(&name).components().next(),
            Some(Component::Normal(_))
        );
    single.then_some(Entry {
        dev,
        ino,
        name,
        dir,
    })
}

/// Removes `entry`'s name if its directory is the one recorded and the name is not a
/// directory; the path removed.
fn remove(entry: &Entry) -> Option<PathBuf> {
    let dir = open_dir_nofollow(&entry.dir).ok()?;
    let stat = rustix::fs::fstat(&dir).ok()?;
    if (stat.st_dev as u64, stat.st_ino as u64) != (entry.dev, entry.ino) {
        return None;
    }
    let at = rustix::fs::statat(&dir, &entry.name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    if FileType::from_raw_mode(at.st_mode) == FileType::Directory {
        return None;
    }
    rustix::fs::unlinkat(&dir, &entry.name, AtFlags::empty()).ok()?;
    Some(entry.dir.join(&entry.name))
}

/// Opens the absolute directory `path` without following a symbolic link anywhere in it.
fn open_dir_nofollow(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if !path.is_absolute() {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let mut dir = rustix::fs::openat(CWD, "/", flags, Mode::empty())?;
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => dir = rustix::fs::openat(&dir, name, flags, Mode::empty())?,
            _ => return Err(io::ErrorKind::InvalidInput.into()),
        }
    }
    Ok(dir)
}

/// The path an open directory has now, as the kernel names it.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let path = fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).ok()?;
    path.is_absolute().then_some(path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_back_and_strange_names_do_not() {
        let line = format!("5 7 {} {}", hex(b".a b.XyZ123.shark-tmp"), hex(b"/w/d\ne"));
        let entry = parse(line.as_bytes()).unwrap();
        assert_eq!((entry.dev, entry.ino), (5, 7));
        assert_eq!(entry.name, ".a b.XyZ123.shark-tmp");
        assert_eq!(entry.dir, Path::new("/w/d\ne"));
        for name in ["..", ".", "a/b", ""] {
            let line = format!("5 7 {} {}", hex(name.as_bytes()), hex(b"/w"));
            assert!(parse(line.as_bytes()).is_none(), "{name:?}");
        }
        assert!(parse(b"5 7 zz 2f").is_none());
        assert!(parse(b"5 7").is_none());
    }
}
