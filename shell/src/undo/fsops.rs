//! Writing to the user's files for undo without following symlinks and without tearing files.
//!
//! Every operation opens the parent directory of its path with `openat2` from `/`, with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a symlink anywhere in the parents (one a user or a
//! later command put there) makes the operation fail instead of writing elsewhere. Everything
//! then happens relative to that directory handle. A file's new content is written to an
//! unnamed file in the target's directory (`O_TMPFILE`), given its mode, linked under a hidden
//! name and renamed over the target in one step, so a reader (or a kill at any moment) sees
//! the old file or the new one, never a torn one; where the filesystem has no `O_TMPFILE`
//! (FUSE), a hidden named file takes its place and is removed on failure. A hidden name that
//! a killed undo left behind (it exists only between the link and the rename) is swept the
//! next time an undo writes into that directory.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};

/// A directory handle and a name in it.
pub(crate) struct Parent {
    dir: OwnedFd,
    name: OsString,
}

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    Absent,
    File { mode: u32 },
    Dir { mode: u32 },
    Symlink { target: OsString },
    Other,
}

/// Opens `path`'s parent directory, refusing symlinks anywhere on the way.
pub(crate) fn parent(path: &Path) -> io::Result<Parent> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a path to a file",
        ));
    };
    Ok(Parent {
        dir: open_dir(dir)?,
        name: name.to_owned(),
    })
}

/// Removes what an undo killed between linking and renaming left in `dir`: hidden
/// `.NAME.shark-undo-PID-N` entries of processes that no longer run. Once per directory.
fn sweep(p: &Parent) {
    use std::sync::Mutex;
    static SWEPT: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    let Ok(st) = rfs::fstat(&p.dir) else { return };
    let id = (st.st_dev, st.st_ino);
    match SWEPT.lock() {
        Ok(mut swept) if !swept.contains(&id) => swept.push(id),
        _ => return,
    }
    for name in names(&p.dir).unwrap_or_default() {
        let text = name.to_string_lossy();
        let pid = text
            .strip_prefix('.')
            .and_then(|t| t.rsplit_once(".shark-undo-"))
            .and_then(|(_, rest)| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = rfs::unlinkat(&p.dir, &name, AtFlags::empty());
        }
    }
}

/// Opens directory `dir` (absolute), refusing symlinks anywhere in it.
pub(crate) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let root = rfs::open("/", OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let rel = dir.strip_prefix("/").unwrap_or(dir);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    Ok(rfs::openat2(&root, rel, flags, Mode::empty(), resolve)?)
}

/// What is at `path` now. Only reading: symlinks in the parents are followed, as any reader
/// would (a path under a parent that is no directory is absent).
pub(crate) fn lookup(path: &Path) -> io::Result<Found> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Found::Absent)
        }
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    let kind = meta.file_type();
    Ok(if kind.is_file() {
        Found::File { mode }
    } else if kind.is_dir() {
        Found::Dir { mode }
    } else if kind.is_symlink() {
        Found::Symlink {
            target: std::fs::read_link(path)?.into_os_string(),
        }
    } else {
        Found::Other
    })
}

impl Parent {
    fn found(&self) -> io::Result<Found> {
        let st = match rfs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(Found::Absent),
            Err(e) => return Err(e.into()),
        };
        let mode = st.st_mode & 0o7777;
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Found::File { mode },
            FileType::Directory => Found::Dir { mode },
            FileType::Symlink => {
                let target = rfs::readlinkat(&self.dir, &self.name, Vec::new())?;
                Found::Symlink {
                    target: OsStr::from_bytes(target.as_bytes()).to_owned(),
                }
            }
            _ => Found::Other,
        })
    }
}

/// Replaces whatever is at `path` with a file of mode `mode` whose content `fill` writes.
pub(crate) fn write_file(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let p = parent(path)?;
    sweep(&p);
    let tmp = temp_name(&p.name);
    let file = match rfs::openat(
        &p.dir,
        ".",
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => Tmp::Unnamed(File::from(fd)),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL) => {
            let fd = rfs::openat(
                &p.dir,
                &tmp,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            Tmp::Named(File::from(fd))
        }
        Err(e) => return Err(e.into()),
    };
    let named = matches!(file, Tmp::Named(_));
    let result = (|| {
        let mut f = match file {
            Tmp::Unnamed(f) | Tmp::Named(f) => f,
        };
        fill(&mut f)?;
        rfs::fchmod(&f, Mode::from_raw_mode(mode & 0o7777))?;
        if !named {
            let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
            rfs::linkat(
                CWD,
                proc_path.as_str(),
                &p.dir,
                &tmp,
                AtFlags::SYMLINK_FOLLOW,
            )?;
        }
        clear_dir(&p)?;
        rfs::renameat(&p.dir, &tmp, &p.dir, &p.name).map_err(io::Error::from)
    })();
    if result.is_err() {
        let _ = rfs::unlinkat(&p.dir, &tmp, AtFlags::empty());
    }
    result
}

enum Tmp {
    Unnamed(File),
    Named(File),
}

/// Replaces whatever is at `path` with a symlink to `target`.
pub(crate) fn write_symlink(path: &Path, target: &OsStr) -> io::Result<()> {
    let p = parent(path)?;
    sweep(&p);
    let tmp = temp_name(&p.name);
    rfs::symlinkat(target, &p.dir, &tmp)?;
    let result = clear_dir(&p)
        .and_then(|()| rfs::renameat(&p.dir, &tmp, &p.dir, &p.name).map_err(io::Error::from));
    if result.is_err() {
        let _ = rfs::unlinkat(&p.dir, &tmp, AtFlags::empty());
    }
    result
}

/// Makes `path` a directory of mode `mode`, replacing a file or symlink that is there.
pub(crate) fn ensure_dir(path: &Path, mode: u32) -> io::Result<()> {
    let p = parent(path)?;
    match p.found()? {
        Found::Dir { .. } => {}
        Found::Absent => rfs::mkdirat(&p.dir, &p.name, Mode::from_raw_mode(0o700))?,
        _ => {
            rfs::unlinkat(&p.dir, &p.name, AtFlags::empty())?;
            rfs::mkdirat(&p.dir, &p.name, Mode::from_raw_mode(0o700))?;
        }
    }
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
    let dir = rfs::openat(&p.dir, &p.name, flags, Mode::empty())?;
    rfs::fchmod(&dir, Mode::from_raw_mode(mode & 0o7777)).map_err(Into::into)
}

/// Removes whatever is at `path` (a directory with everything in it); absent is fine.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    let p = match parent(path) {
        Ok(p) => p,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    remove_at(&p.dir, &p.name)
}

/// A directory in the way of a file or symlink goes first (a rename cannot replace one).
fn clear_dir(p: &Parent) -> io::Result<()> {
    match p.found()? {
        Found::Dir { .. } => remove_at(&p.dir, &p.name),
        _ => Ok(()),
    }
}

fn remove_at(dir: &impl AsFd, name: &OsStr) -> io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
    let sub = rfs::openat(dir, name, flags, Mode::empty())?;
    for name in names(&sub)? {
        remove_at(&sub, &name)?;
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The names in an open directory, `.` and `..` left out.
pub(crate) fn names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let dup = rfs::openat(
        dir,
        ".",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(&dup)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(out)
}

/// The names in directory `path`, sorted (reading: symlinks in the parents are followed).
pub(crate) fn list(path: &Path) -> io::Result<Vec<OsString>> {
    let mut names = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// A hidden name beside `name` for this process.
fn temp_name(name: &OsStr) -> OsString {
    static N: AtomicU64 = AtomicU64::new(0);
    let short: String = name.to_string_lossy().chars().take(64).collect();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(".{short}.shark-undo-{}-{n}", std::process::id()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_symlinks_and_dirs_replace_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        write_file(&p, 0o640, |f| f.write_all(b"one")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(lookup(&p).unwrap(), Found::File { mode: 0o640 });
        ensure_dir(&p, 0o750).unwrap();
        std::fs::write(p.join("inner"), "x").unwrap();
        write_symlink(&p, OsStr::new("elsewhere")).unwrap();
        assert_eq!(
            lookup(&p).unwrap(),
            Found::Symlink {
                target: "elsewhere".into()
            }
        );
        ensure_dir(&p, 0o700).unwrap();
        std::fs::write(p.join("inner"), "x").unwrap();
        write_file(&p, 0o600, |f| f.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        remove(&p).unwrap();
        assert_eq!(lookup(&p).unwrap(), Found::Absent);
        // Nothing else was left beside it.
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn a_symlink_among_the_parents_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let through = dir.path().join("link/f");
        assert!(write_file(&through, 0o644, |f| f.write_all(b"x")).is_err());
        assert!(ensure_dir(&through, 0o755).is_err());
        assert!(!real.join("f").exists());
        std::fs::write(real.join("g"), "keep").unwrap();
        assert!(remove(&dir.path().join("link/g")).is_err());
        assert!(real.join("g").exists());
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_debris() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "old").unwrap();
        let err = write_file(&p, 0o644, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::other("blob corrupt"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
