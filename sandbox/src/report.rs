//! What a sandboxed run returns: exit status, resource usage, accesses, processes and changes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::apply::apply_changes;
use crate::scratch::Scratch;
use crate::SandboxError;

/// How the command's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl Status {
    /// The status a shell would report: the exit code, or 128 + the signal number.
    pub fn code(&self) -> i32 {
        match *self {
            Status::Exited(code) => code,
            Status::Signaled(signal) => 128 + signal,
        }
    }

    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        *self == Status::Exited(0)
    }
}

/// Resource usage of the whole process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rusage {
    /// CPU time spent in user mode.
    pub user: Duration,
    /// CPU time spent in the kernel.
    pub system: Duration,
    /// Peak resident set size of the largest process, in KiB.
    pub max_rss_kib: u64,
}

/// How a path was used. The reads come first, then the writes; the executor derives what a
/// run depended on from the order of these accesses on each path (see `ARCHITECTURE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessKind {
    /// Opened for reading only: a file's content, or a directory opened as a handle.
    Read,
    /// A directory's entries read (`getdents`): its listing.
    List,
    /// The target of `execve`/`execveat`, or the interpreter named by a `#!` line.
    Exec,
    /// Looked up for metadata or existence: the stat family, `access`, `chdir`, `chroot`,
    /// `O_PATH` opens, the old name of a hard link.
    Stat,
    /// Read as a symbolic link (`readlink`).
    ReadLink,
    /// Extended attributes read (`getxattr`, `listxattr` and their variants).
    Xattr,
    /// Opened with `O_TRUNC` (or `creat`), created if need be: the old content is discarded
    /// unread; only something other than a file in the way (a directory) would matter.
    Create,
    /// Opened for writing without `O_CREAT`, `O_TRUNC` or `O_APPEND`: fails where nothing
    /// is, else as [`AccessKind::Update`]. A program probing for its own output this way
    /// (GDAL's update-open) only learns whether it exists.
    Reopen,
    /// Opened write-only (`O_CREAT`) without `O_TRUNC` or `O_APPEND`: what is not overwritten
    /// stays.
    Overwrite,
    /// Opened for reading and writing (`O_CREAT`) without `O_TRUNC`: the old content can be
    /// read.
    Update,
    /// Opened with `O_APPEND` (without `O_TRUNC`): the old content stays, and the writes go
    /// after it.
    Append,
    /// Created with `O_CREAT | O_EXCL`: fails if anything is there.
    CreateNew,
    /// Truncated to length zero (`truncate`, `ftruncate`).
    Truncate,
    /// Truncated or extended to a nonzero length.
    Resize,
    /// `mkdir`.
    Mkdir,
    /// `mknod` (a fifo, socket or device node).
    Mknod,
    /// A symbolic link created at this path.
    Symlink,
    /// A new name that must not exist yet: a hard link, or a `RENAME_NOREPLACE` target.
    Link,
    /// `unlink` or `rmdir`.
    Delete,
    /// The old name of a rename (or either name of an exchange): its content moves away.
    RenameFrom,
    /// The new name of a rename: whatever was there is replaced.
    RenameTo,
    /// Metadata changed: mode, owner, times, extended attributes.
    SetAttr,
}

impl AccessKind {
    /// Whether the access can change the path (or, for a write that fails, was meant to).
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            AccessKind::Read
                | AccessKind::List
                | AccessKind::Exec
                | AccessKind::Stat
                | AccessKind::ReadLink
                | AccessKind::Xattr
        )
    }

    /// Whether, as the first access to a path, it leaves what was there before unread: the
    /// run then depends only on there being no directory in the way.
    pub fn discards_old(self) -> bool {
        matches!(self, AccessKind::Create | AccessKind::RenameTo)
    }
}

/// The identity and stat of what a path named when a run first touched it, taken before the
/// call went ahead: comparing it with the path after the run tells whether it changed while
/// the run was using it (an input edited during a run must not be recorded as read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fingerprint {
    /// Nothing was there (or it could not be looked up).
    Absent,
    /// Something was, with this stat (symlinks followed).
    Present {
        /// Device.
        dev: u64,
        /// Inode.
        ino: u64,
        /// File type and permission bits (`st_mode`).
        mode: u32,
        /// Size in bytes.
        size: u64,
        /// Modification time, nanoseconds since the epoch.
        mtime_ns: i128,
        /// Status change time, nanoseconds since the epoch.
        ctime_ns: i128,
    },
}

impl Fingerprint {
    /// The fingerprint of `path` on this machine now.
    pub fn of(path: &std::path::Path) -> Fingerprint {
        match std::fs::metadata(path) {
            Ok(meta) => Fingerprint::of_metadata(&meta),
            Err(_) => Fingerprint::Absent,
        }
    }

    /// The fingerprint of something whose metadata is `meta`.
    pub fn of_metadata(meta: &std::fs::Metadata) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Fingerprint::Present {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One path a process touched. Paths are absolute and lexically normalised without crossing
/// symbolic links; the caller resolves symlinks on the host afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    /// The path as the process named it, joined to its working directory or directory fd.
    pub path: PathBuf,
    /// How it was used.
    pub kind: AccessKind,
    /// The (host) process id of the first process that made this access.
    pub pid: u32,
    /// On the first access of a path: the path's fingerprint just before the call, so that
    /// the caller can tell whether it changed while the command ran (an input edited, a file
    /// the command replaces rewritten by someone else meanwhile).
    pub fingerprint: Option<Fingerprint>,
}

/// A program the command executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its (host) process id.
    pub pid: u32,
    /// Its argument vector.
    pub argv: Vec<OsString>,
}

/// One change the command made to the filesystem, as seen in the overlay upper layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A regular file was created or modified; `source` holds its new content.
    File {
        /// Where it lives on the real filesystem.
        path: PathBuf,
        /// The file in the upper layer holding the content.
        source: PathBuf,
        /// Its permission bits (including setuid/setgid/sticky).
        mode: u32,
    },
    /// A directory was created, its mode changed, or it was recreated (after a `Deleted`).
    Dir {
        /// Where it lives on the real filesystem.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link was created.
    Symlink {
        /// Where it lives on the real filesystem.
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// The path was deleted (recursively, if a directory).
    Deleted {
        /// Where it lived on the real filesystem.
        path: PathBuf,
    },
}

impl Change {
    /// The real path this change is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Change::File { path, .. }
            | Change::Dir { path, .. }
            | Change::Symlink { path, .. }
            | Change::Deleted { path } => path,
        }
    }
}

/// Whether Landlock confined the command's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockStatus {
    /// Enforced at this Landlock ABI version.
    Enforced {
        /// The kernel's Landlock ABI version.
        abi: u32,
    },
    /// Not enforced; the read-only mounts still apply.
    NotEnforced(LandlockGap),
}

/// Why Landlock was not enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockGap {
    /// The kernel was built without Landlock.
    NotBuilt,
    /// Landlock is built in but not enabled (add `landlock` to the `lsm=` boot parameter).
    Disabled,
    /// Creating the ruleset failed with this errno.
    Failed(i32),
}

/// How the accesses of a run were observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// System calls the supervisor was notified of (each a round trip through the kernel).
    pub notifications: u64,
    /// Accesses the fast path's preloaded library recorded without a notification (at most
    /// one per path and kind and process; the calls it let through are not counted).
    pub fast_path: u64,
    /// The command truncated the memory shared with the fast path's library: accesses the
    /// library recorded may be lost, so what the run read is not known in full.
    pub damaged: bool,
}

/// The outcome of one sandboxed command. It owns the overlay upper layers that `Change::File`
/// sources point into; dropping the report deletes them.
#[derive(Debug)]
pub struct Report {
    /// How the main process ended.
    pub status: Status,
    /// CPU time and peak memory of the whole tree.
    pub rusage: Rusage,
    /// Wall-clock time from spawn to the end of the tree.
    pub wall: Duration,
    /// Every path touched, in the order the kernel saw the calls, deduplicated by (path,
    /// kind): the first access of each kind to each path is kept, with the first process that
    /// made it. So for every path, the order of its first read, first write, etc. is exact.
    pub accesses: Vec<Access>,
    /// Every program executed, by pid (the order they were forked in, barring pid wrap-around),
    /// then in exec order.
    pub processes: Vec<Process>,
    /// Filesystem changes, ordered so that applying them in order reproduces the result.
    pub changes: Vec<Change>,
    /// Whether Landlock was enforced.
    pub landlock: LandlockStatus,
    /// The writable roots the command ran with, resolved (real paths, nested ones merged):
    /// the only places its changes may be applied to.
    pub roots: Vec<PathBuf>,
    /// Host Unix sockets (beneath a writable root; any other is refused) the command
    /// connected or sent to: what the service behind one replied is no input anyone recorded.
    pub services: Vec<PathBuf>,
    /// Whether the command read from a terminal: a read of descriptor 0, 1 or 2 while it
    /// referred to a terminal, or an open of a terminal device (`/dev/tty`, `/dev/pts/N`) for
    /// reading. Its result then depends on what someone typed, which no input records.
    pub terminal_input: bool,
    /// How the accesses were observed.
    pub stats: TraceStats,
    /// Files the command appended to (host paths, as in `accesses`) with the size each had
    /// when the sandbox copied it: the command's appended bytes are what lies past that size
    /// in its copy, even if another process appended to the real file in the meantime.
    pub append_bases: std::collections::HashMap<PathBuf, u64>,
    pub(crate) _upper_layers: Option<Scratch>,
    /// The sandbox's private `/dev/shm`, opened while the sandbox was alive: an open
    /// directory keeps its tmpfs readable after the namespaces are gone.
    pub(crate) private_shm: Option<std::os::fd::OwnedFd>,
}

impl Report {
    /// Applies the changes to the real filesystem, exactly as if the command had run there,
    /// never outside the writable roots (see [`crate::beneath`]). File contents are moved out
    /// of the upper layer where possible, so apply only once.
    pub fn apply(&self) -> Result<(), SandboxError> {
        let tree = crate::Tree::open(&self.roots, &[]).map_err(|source| SandboxError::Apply {
            path: self.roots.first().cloned().unwrap_or_default(),
            source,
        })?;
        apply_changes(&tree, &self.changes)
    }

    /// The content of the regular file `name` that the command left directly in its private
    /// `/dev/shm`, a tmpfs of its own that is neither a writable root nor an input, and is
    /// gone with the sandbox: a side channel for what the caller's own wrapper code leaves
    /// behind, at the cost of no inode on a real filesystem. `None` when there is no such
    /// file (or `name` is not a plain file name).
    pub fn read_private(&self, name: &str) -> Option<Vec<u8>> {
        use nix::fcntl::{openat, OFlag};
        use nix::sys::stat::Mode;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let dir = self.private_shm.as_ref()?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = openat(dir, name, flags, Mode::empty()).ok()?;
        let mut file = std::fs::File::from(fd);
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        Some(bytes)
    }
}
