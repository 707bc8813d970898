//! Which system calls are traced and how their arguments name paths.

use crate::AccessKind;

/// The traced system calls (x86_64 numbers).
pub(crate) const TRACED: [i64; 43] = [
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_chdir,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_rmdir,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_truncate,
    libc::SYS_chmod,
    libc::SYS_fchmodat,
    libc::SYS_fchmodat2,
    libc::SYS_chown,
    libc::SYS_lchown,
    libc::SYS_fchownat,
    libc::SYS_utime,
    libc::SYS_utimes,
    libc::SYS_futimesat,
    libc::SYS_utimensat,
    libc::SYS_name_to_handle_at,
    libc::SYS_uselib,
];

/// One path argument of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathArg {
    /// The directory fd it is relative to (`AT_FDCWD` for the cwd).
    pub(crate) dirfd: i32,
    /// The address of the path string in the tracee (0 for none: the dirfd itself).
    pub(crate) addr: u64,
    pub(crate) kind: AccessKind,
}

/// What a traced call does with paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// One or two path arguments.
    Paths([Option<PathArg>; 2]),
    /// `openat2`: the flags live in the `open_how` struct at this address.
    OpenHow { arg: PathArg, how: u64 },
    /// An exec of this path with the argv array at this address.
    Exec { arg: PathArg, argv: u64 },
    /// Nothing to record.
    Nothing,
}

/// How an `open` with these flags uses its path.
pub(crate) fn open_kind(flags: u64) -> AccessKind {
    let flags = flags as i32;
    let creat_excl = libc::O_CREAT | libc::O_EXCL;
    if flags & libc::O_PATH != 0 {
        AccessKind::Stat
    } else if flags & libc::O_ACCMODE == libc::O_RDONLY {
        AccessKind::Read
    } else if flags & creat_excl == creat_excl {
        AccessKind::Probe
    } else if flags & libc::O_TRUNC != 0 {
        AccessKind::Create
    } else {
        AccessKind::Modify
    }
}

fn at(dirfd: u64, addr: u64, kind: AccessKind) -> Option<PathArg> {
    Some(PathArg {
        dirfd: dirfd as i32,
        addr,
        kind,
    })
}

fn cwd(addr: u64, kind: AccessKind) -> Option<PathArg> {
    at(libc::AT_FDCWD as u64, addr, kind)
}

/// Decodes the path arguments of traced call `nr` with arguments `a`.
pub(crate) fn decode(nr: i64, a: &[u64; 6]) -> Call {
    use AccessKind::*;
    let one = |arg| Call::Paths([arg, None]);
    let two = |x, y| Call::Paths([x, y]);
    match nr {
        libc::SYS_open => one(cwd(a[0], open_kind(a[1]))),
        libc::SYS_openat => one(at(a[0], a[1], open_kind(a[2]))),
        libc::SYS_openat2 => match at(a[0], a[1], Read) {
            Some(arg) => Call::OpenHow { arg, how: a[2] },
            None => Call::Nothing,
        },
        libc::SYS_creat => one(cwd(a[0], Create)),
        libc::SYS_execve => exec(cwd(a[0], Exec), a[1]),
        libc::SYS_execveat => exec(at(a[0], a[1], Exec), a[2]),
        libc::SYS_stat | libc::SYS_lstat | libc::SYS_access | libc::SYS_chdir => {
            one(cwd(a[0], Stat))
        }
        libc::SYS_newfstatat | libc::SYS_statx | libc::SYS_faccessat | libc::SYS_faccessat2 => {
            one(at(a[0], a[1], Stat))
        }
        libc::SYS_name_to_handle_at => one(at(a[0], a[1], Stat)),
        libc::SYS_readlink => one(cwd(a[0], ReadLink)),
        libc::SYS_readlinkat => one(at(a[0], a[1], ReadLink)),
        libc::SYS_truncate => one(cwd(a[0], if a[1] == 0 { Probe } else { Modify })),
        libc::SYS_uselib => one(cwd(a[0], Read)),
        libc::SYS_unlink
        | libc::SYS_rmdir
        | libc::SYS_mkdir
        | libc::SYS_mknod
        | libc::SYS_chmod => one(cwd(a[0], Probe)),
        libc::SYS_chown | libc::SYS_lchown | libc::SYS_utime | libc::SYS_utimes => {
            one(cwd(a[0], Probe))
        }
        libc::SYS_unlinkat | libc::SYS_mkdirat | libc::SYS_mknodat | libc::SYS_fchmodat => {
            one(at(a[0], a[1], Probe))
        }
        libc::SYS_fchmodat2 | libc::SYS_fchownat | libc::SYS_futimesat | libc::SYS_utimensat => {
            one(at(a[0], a[1], Probe))
        }
        libc::SYS_rename | libc::SYS_link => two(cwd(a[0], Probe), cwd(a[1], Probe)),
        libc::SYS_renameat | libc::SYS_renameat2 | libc::SYS_linkat => {
            two(at(a[0], a[1], Probe), at(a[2], a[3], Probe))
        }
        libc::SYS_symlink => one(cwd(a[1], Probe)),
        libc::SYS_symlinkat => one(at(a[1], a[2], Probe)),
        _ => Call::Nothing,
    }
}

fn exec(arg: Option<PathArg>, argv: u64) -> Call {
    match arg {
        Some(arg) => Call::Exec { arg, argv },
        None => Call::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_map_to_kinds() {
        let f = |flags: i32| open_kind(flags as u64);
        assert_eq!(f(libc::O_RDONLY | libc::O_CLOEXEC), AccessKind::Read);
        assert_eq!(f(libc::O_RDONLY | libc::O_DIRECTORY), AccessKind::Read);
        assert_eq!(f(libc::O_RDWR), AccessKind::Modify);
        assert_eq!(
            f(libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT),
            AccessKind::Modify
        );
        assert_eq!(
            f(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
            AccessKind::Create
        );
        assert_eq!(
            f(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL),
            AccessKind::Probe
        );
        assert_eq!(f(libc::O_PATH), AccessKind::Stat);
    }

    #[test]
    fn every_traced_call_is_decoded() {
        let args = [libc::AT_FDCWD as u64, 0x1000, 0x2000, 0x3000, 0, 0];
        for nr in TRACED {
            assert_ne!(decode(nr, &args), Call::Nothing, "syscall {nr}");
        }
    }
}
