//! Writing into the user's tree without ever leaving it.
//!
//! Every change shark makes to the user's files (applying a run's changes, restoring a
//! reused run's outputs) goes through a [`Tree`]: the writable roots, opened once, and beneath
//! them only directory handles opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`. A parent that is a symlink (or was swapped for one after the run's
//! changes were collected) makes the operation fail with [`TreeError::NotBeneath`] instead of
//! following it out of the roots; the final name is operated on with the `*at` calls, which
//! never follow a symlink there either (a symlink in the way is replaced or removed, not
//! written through). Paths outside every root, or inside an excluded directory (the shark
//! home), are refused outright: a forged record cannot make a restore write anywhere else.
//!
//! New files are written to an anonymous `O_TMPFILE` in the target directory and only linked
//! into place, under a temporary name renamed over the target, once complete.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, CWD};

/// Why a write beneath the roots was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The path is not under any writable root.
    #[error("{} is outside every writable directory", path.display())]
    Outside {
        /// The path.
        path: PathBuf,
    },
    /// The path is inside a directory no write may touch (the shark home).
    #[error("{} is inside {}, which shark never writes into", path.display(), excluded.display())]
    Excluded {
        /// The path.
        path: PathBuf,
        /// The excluded directory.
        excluded: PathBuf,
    },
    /// A parent directory is not a real directory beneath the root (a symlink, a file, a
    /// mount point of another filesystem's magic link), or is missing.
    #[error("{}: a parent directory is missing or is not a real directory", path.display())]
    NotBeneath {
        /// The path.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The operation itself failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl TreeError {
    fn io<'a, E: Into<io::Error>>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(E) -> TreeError + 'a {
        move |e| TreeError::Io {
            op,
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}

/// The writable roots, as directory handles, and the directories never to write into.
#[derive(Debug)]
pub struct Tree {
    /// (canonical root path, its handle), innermost roots last.
    roots: Vec<(PathBuf, OwnedFd)>,
    excluded: Vec<PathBuf>,
}

/// What is at a path, without following a symlink there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Nothing.
    Absent,
    /// A regular file of this size.
    File {
        /// Its size in bytes.
        size: u64,
    },
    /// A directory.
    Dir,
    /// Anything else: a symlink, a fifo, a socket, a device.
    Other,
}

impl Tree {
    /// Opens the roots (canonicalised; missing ones are skipped). Writes under `excluded` are
    /// refused.
    pub fn open(roots: &[PathBuf], excluded: &[PathBuf]) -> Result<Tree, TreeError> {
        let mut opened = Vec::new();
        for root in roots {
            let Ok(real) = std::fs::canonicalize(root) else {
                continue;
            };
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(&real, flags, Mode::empty())
                .map_err(TreeError::io("open writable directory", &real))?;
            opened.push((real, fd));
        }
        opened.sort_by_key(|(p, _)| p.components().count());
        let excluded = excluded
            .iter()
            .map(|e| std::fs::canonicalize(e).unwrap_or_else(|_| e.clone()))
            .collect();
        Ok(Tree {
            roots: opened,
            excluded,
        })
    }

    /// The innermost root holding `path`, and `path` relative to it.
    fn locate<'a>(&'a self, path: &Path) -> Result<(&'a OwnedFd, PathBuf), TreeError> {
        let normal = path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !path.is_absolute() || !normal {
            return Err(TreeError::Outside {
                path: path.to_path_buf(),
            });
        }
        if let Some(excluded) = self.excluded.iter().find(|e| path.starts_with(e)) {
            return Err(TreeError::Excluded {
                path: path.to_path_buf(),
                excluded: excluded.clone(),
            });
        }
        self.roots
            .iter()
            .rev()
            .find_map(|(root, fd)| Some((fd, path.strip_prefix(root).ok()?.to_path_buf())))
            .ok_or_else(|| TreeError::Outside {
                path: path.to_path_buf(),
            })
    }

    /// Whether `path` is beneath a root (and not excluded).
    pub fn contains(&self, path: &Path) -> bool {
        self.locate(path)
            .is_ok_and(|(_, rel)| rel.file_name().is_some())
    }

    /// The parent directory of `path`, opened without following any symlink, and the final
    /// name. The root itself cannot be written as a whole.
    pub fn parent(&self, path: &Path) -> Result<(OwnedFd, OsString), TreeError> {
        let (root, rel) = self.locate(path)?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            return Err(TreeError::Outside {
                path: path.to_path_buf(),
            });
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir =
            rustix::fs::openat2(root, parent, flags, Mode::empty(), resolve).map_err(|e| {
                TreeError::NotBeneath {
                    path: path.to_path_buf(),
                    source: e.into(),
                }
            })?;
        Ok((dir, name))
    }

    /// What is at `path` (a symlink there is [`Entry::Other`], not followed).
    pub fn entry(&self, path: &Path) -> Result<Entry, TreeError> {
        let (dir, name) = self.parent(path)?;
        entry_at(dir.as_fd(), &name).map_err(TreeError::io("look at", path))
    }

    /// Replaces whatever is at `path` by the file `source` (outside the tree), moved there
    /// with a rename; `Ok(false)` when `source` is on another filesystem and was not moved.
    pub fn rename_into(&self, source: &Path, path: &Path) -> Result<bool, TreeError> {
        let (dir, name) = self.parent(path)?;
        clear_dir_at(dir.as_fd(), &name).map_err(TreeError::io("replace", path))?;
        match rustix::fs::renameat(CWD, source, &dir, &name) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::XDEV) => Ok(false),
            Err(e) => Err(TreeError::io("move into place", path)(e)),
        }
    }

    /// Replaces whatever is at `path` by a file with the content `from` yields and mode
    /// `mode`: written anonymously, then linked into place in one step.
    pub fn write_file(&self, path: &Path, from: &mut dyn Read, mode: u32) -> Result<(), TreeError> {
        let (dir, name) = self.parent(path)?;
        let file = match anonymous_file(dir.as_fd()) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                return self.write_named(&dir, &name, from, mode, path)
            }
            Err(source) => {
                return Err(TreeError::Io {
                    op: "create a file for",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut file = File::from(file);
        io::copy(from, &mut file).map_err(|source| TreeError::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        })?;
        file.flush().map_err(|source| TreeError::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        })?;
        self.link_into_place(OwnedFd::from(file), &dir, &name, mode, path)
    }

    /// [`Tree::write_file`] where the filesystem has no anonymous files: a hidden temporary
    /// name, renamed over the target once complete (removed on failure).
    fn write_named(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        from: &mut dyn Read,
        mode: u32,
        path: &Path,
    ) -> Result<(), TreeError> {
        let temp = temp_name(name);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, &temp, flags, Mode::from_raw_mode(0o600))
            .map_err(TreeError::io("create a file for", path))?;
        let written = (|| -> io::Result<()> {
            let mut file = File::from(fd);
            io::copy(from, &mut file)?;
            rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
            Ok(())
        })();
        let moved = written.and_then(|()| {
            clear_dir_at(dir.as_fd(), name)?;
            rustix::fs::renameat(dir, &temp, dir, name).map_err(io::Error::from)
        });
        moved.map_err(|source| {
            let _ = rustix::fs::unlinkat(dir, &temp, AtFlags::empty());
            TreeError::Io {
                op: "write",
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Gives `file` (an anonymous file in `dir`) mode `mode` and the name `name`, replacing
    /// what was there.
    pub fn link_into_place(
        &self,
        file: OwnedFd,
        dir: &OwnedFd,
        name: &OsStr,
        mode: u32,
        path: &Path,
    ) -> Result<(), TreeError> {
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
            .map_err(TreeError::io("set the mode of", path))?;
        clear_dir_at(dir.as_fd(), name).map_err(TreeError::io("replace", path))?;
        let temp = temp_name(name);
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        rustix::fs::linkat(CWD, proc_path.as_str(), dir, &temp, AtFlags::SYMLINK_FOLLOW)
            .map_err(TreeError::io("link into place", path))?;
        rustix::fs::renameat(dir, &temp, dir, name).map_err(|e| {
            let _ = rustix::fs::unlinkat(dir, &temp, AtFlags::empty());
            TreeError::io("move into place", path)(e)
        })
    }

    /// Makes `path` a directory with mode `mode` (replacing anything else there).
    pub fn make_dir(&self, path: &Path, mode: u32) -> Result<(), TreeError> {
        let (dir, name) = self.parent(path)?;
        let made = match entry_at(dir.as_fd(), &name) {
            Ok(Entry::Dir) => Ok(()),
            Ok(Entry::Absent) => mkdir_at(dir.as_fd(), &name).map_err(io::Error::from),
            Ok(_) => rustix::fs::unlinkat(&dir, &name, AtFlags::empty())
                .and_then(|()| mkdir_at(dir.as_fd(), &name))
                .map_err(io::Error::from),
            Err(e) => Err(e),
        };
        made.map_err(TreeError::io("make directory", path))?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, &name, flags, Mode::empty())
            .map_err(TreeError::io("open directory", path))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(TreeError::io("set the mode of", path))
    }

    /// Makes `path` a symlink to `target` (replacing anything else there, atomically for a
    /// file or symlink).
    pub fn make_symlink(&self, path: &Path, target: &Path) -> Result<(), TreeError> {
        let (dir, name) = self.parent(path)?;
        clear_dir_at(dir.as_fd(), &name).map_err(TreeError::io("replace", path))?;
        let temp = temp_name(&name);
        rustix::fs::symlinkat(target, &dir, &temp)
            .map_err(TreeError::io("create symlink", path))?;
        rustix::fs::renameat(&dir, &temp, &dir, &name).map_err(|e| {
            let _ = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty());
            TreeError::io("move into place", path)(e)
        })
    }

    /// Removes whatever is at `path` (a directory with everything in it); nothing there is
    /// fine. Never follows a symlink.
    pub fn remove(&self, path: &Path) -> Result<(), TreeError> {
        let (dir, name) = self.parent(path)?;
        remove_at(dir.as_fd(), &name).map_err(TreeError::io("remove", path))
    }

    /// Appends `bytes` to the file at `path` (created with `mode` if absent).
    pub fn append(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), TreeError> {
        let (dir, name) = self.parent(path)?;
        let flags =
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, &name, flags, Mode::from_raw_mode(mode))
            .map_err(TreeError::io("append to", path))?;
        File::from(fd)
            .write_all(bytes)
            .map_err(|source| TreeError::Io {
                op: "append to",
                path: path.to_path_buf(),
                source,
            })
    }

    /// Opens the regular file at `path` for reading, without following a symlink.
    pub fn open_file(&self, path: &Path) -> Result<File, TreeError> {
        let (dir, name) = self.parent(path)?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(&dir, &name, flags, Mode::empty())
            .map_err(TreeError::io("open", path))?;
        Ok(File::from(fd))
    }
}

/// What is at `name` in `dir`, not following a symlink.
pub fn entry_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Entry> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(Entry::Absent),
        Err(e) => Err(e.into()),
        Ok(st) => {
            let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
            Ok(match kind {
                rustix::fs::FileType::RegularFile => Entry::File {
                    size: st.st_size as u64,
                },
                rustix::fs::FileType::Directory => Entry::Dir,
                _ => Entry::Other,
            })
        }
    }
}

/// A new anonymous regular file in `dir` (nothing to clean up if the process dies), or where
/// the filesystem has no `O_TMPFILE`, a named one removed from the directory at once.
pub fn anonymous_file(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, ".", flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL) => {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
        Err(e) => Err(e.into()),
    }
}

/// A hidden name beside `name` for an atomic replacement.
fn temp_name(name: &OsStr) -> OsString {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".shark-tmp-{}-{n}", std::process::id()));
    temp
}

fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), rustix::io::Errno> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
}

/// Removes a directory at `name` so a file can take its place; anything else stays (a rename
/// replaces it atomically).
fn clear_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), rustix::io::Errno> {
    match entry_at(dir, name) {
        Ok(Entry::Dir) => remove_at(dir, name),
        _ => Ok(()),
    }
}

/// Removes `name` in `dir` and, for a directory, everything in it, through handles opened
/// without following symlinks.
fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), rustix::io::Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let sub = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        // Overlayfs can leave directories without permissions: let the owner in.
        Err(rustix::io::Errno::ACCESS) => {
            let path_fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY
                    | OFlags::DIRECTORY
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC
                    | OFlags::PATH,
                Mode::empty(),
            )?;
            let proc_path = format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&path_fd)
            );
            rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(0o700))?;
            rustix::fs::openat(dir, name, flags, Mode::empty())?
        }
        Err(e) => return Err(e),
    };
    let names: Vec<OsString> = {
        let mut entries = rustix::fs::Dir::read_from(&sub)?;
        let mut names = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names
    };
    for n in names {
        remove_at(sub.as_fd(), &n)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> (PathBuf, Tree) {
        let root = dir.canonicalize().unwrap().join("root");
        std::fs::create_dir(&root).unwrap();
        let tree = Tree::open(std::slice::from_ref(&root), &[root.join("home")]).unwrap();
        (root, tree)
    }

    #[test]
    fn writes_stay_beneath_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let (root, tree) = tree(dir.path());
        let victim = dir.path().canonicalize().unwrap().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::os::unix::fs::symlink(&victim, root.join("out")).unwrap();
        let f = root.join("out/f");
        assert!(matches!(
            tree.write_file(&f, &mut &b"x"[..], 0o644),
            Err(TreeError::NotBeneath { .. })
        ));
        assert!(matches!(
            tree.make_dir(&root.join("out/d"), 0o755),
            Err(TreeError::NotBeneath { .. })
        ));
        assert!(matches!(
            tree.remove(&root.join("out/x")),
            Err(TreeError::NotBeneath { .. })
        ));
        assert!(matches!(
            tree.write_file(&victim.join("g"), &mut &b"x"[..], 0o644),
            Err(TreeError::Outside { .. })
        ));
        assert!(matches!(
            tree.write_file(&root.join("home/db"), &mut &b"x"[..], 0o644),
            Err(TreeError::Excluded { .. })
        ));
        assert!(matches!(
            tree.write_file(&root.join("a/../b"), &mut &b"x"[..], 0o644),
            Err(TreeError::Outside { .. })
        ));
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        // The symlink itself, as the final name, is replaced rather than followed.
        tree.write_file(&root.join("out"), &mut &b"file now"[..], 0o600)
            .unwrap();
        assert_eq!(std::fs::read(root.join("out")).unwrap(), b"file now");
        assert!(victim.exists());
    }

    #[test]
    fn files_dirs_symlinks_appends_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        let (root, tree) = tree(dir.path());
        tree.make_dir(&root.join("d"), 0o750).unwrap();
        tree.write_file(&root.join("d/f"), &mut &b"abc"[..], 0o640)
            .unwrap();
        tree.append(&root.join("d/f"), b"def", 0o644).unwrap();
        assert_eq!(std::fs::read(root.join("d/f")).unwrap(), b"abcdef");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&root.join("d")), 0o750);
        assert_eq!(mode(&root.join("d/f")), 0o640);
        tree.make_symlink(&root.join("l"), Path::new("d/f"))
            .unwrap();
        assert_eq!(
            std::fs::read_link(root.join("l")).unwrap(),
            Path::new("d/f")
        );
        assert_eq!(tree.entry(&root.join("l")).unwrap(), Entry::Other);
        assert_eq!(
            tree.entry(&root.join("d/f")).unwrap(),
            Entry::File { size: 6 }
        );
        std::fs::create_dir_all(root.join("d/sub/deeper")).unwrap();
        std::fs::set_permissions(root.join("d/sub"), PermissionsExt::from_mode(0o000)).unwrap();
        tree.remove(&root.join("d")).unwrap();
        assert_eq!(tree.entry(&root.join("d")).unwrap(), Entry::Absent);
        tree.remove(&root.join("d")).unwrap();
        assert_eq!(
            std::fs::read_dir(&root)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>(),
            ["l"]
        );
    }
}
