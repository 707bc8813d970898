//! Which system calls are traced and how their arguments name paths.
//!
//! Each traced call becomes one or two [`AccessKind`]s on the paths it names (or on the file an
//! open descriptor refers to). The kinds are precise about what the call does to the state the
//! path had before the run, because the executor derives a run's dependencies from the *order*
//! of these accesses: an open with `O_TRUNC` discards the old content, one without it keeps it,
//! `O_APPEND` keeps it and adds to it, `rename` moves content away from one name and over
//! another, and so on.

use crate::AccessKind;

/// The traced system calls (x86_64 numbers).
pub(crate) const TRACED: [i64; 59] = [
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
    libc::SYS_chroot,
    libc::SYS_getdents,
    libc::SYS_getdents64,
    libc::SYS_getxattr,
    libc::SYS_lgetxattr,
    libc::SYS_fgetxattr,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_flistxattr,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
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
    libc::SYS_ftruncate,
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
    libc::SYS_fsetxattr,
    libc::SYS_fremovexattr,
];

/// The traced calls the fast path's library makes through its stub (`fastpath/`): the filter
/// lets them through without a notification when they carry the sandbox's cookie from the
/// stub's address. Never an exec, `chdir` or `chroot`, nor anything that is refused.
pub(crate) const FAST: [i64; 12] = [
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_faccessat2,
    libc::SYS_readlinkat,
    libc::SYS_getxattr,
    libc::SYS_lgetxattr,
    libc::SYS_fgetxattr,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_flistxattr,
];

/// Calls refused inside the sandbox with `ENOSYS`, as if the kernel lacked them: io_uring
/// submits opens and reads that no system call of the submitting process names, so they could
/// not be observed. Programs that use it fall back to ordinary calls, as they do in container
/// runtimes that refuse it.
///
/// `clone3` is refused the same way, as container runtimes do, because its flags live in
/// memory a filter cannot read: C libraries fall back to `clone`, whose flags [`DENIED`]'s
/// namespace rule can see.
pub(crate) const REFUSED: [i64; 4] = [
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_clone3,
];

/// Calls that fail with `EPERM` inside the sandbox, as in a container runtime's default
/// profile: mounts and namespaces (a bind mount would show a file under a name shark does not
/// record, a nested sandbox would hide what runs in it), the kernel keyrings (shared with the
/// host), BPF, performance counters, userfaultfd, kernel modules and kexec, swap, accounting,
/// quotas, file handles, raw port I/O and the kernel log.
pub(crate) const DENIED: [i64; 34] = [
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_lookup_dcookie,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    libc::SYS_reboot,
];

/// The `clone` flags that make new namespaces: refused like `unshare`.
pub(crate) const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u32;

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
    /// `chroot`: later absolute paths of the process are relative to the new root.
    Chroot(PathArg),
    /// Nothing to record.
    Nothing,
}

/// How an `open` with these flags uses its path.
pub(crate) fn open_kind(flags: u64) -> AccessKind {
    let flags = flags as i32;
    let creat_excl = libc::O_CREAT | libc::O_EXCL;
    let access = flags & libc::O_ACCMODE;
    if flags & libc::O_PATH != 0 {
        AccessKind::Stat
    } else if access == libc::O_RDONLY && flags & libc::O_TRUNC == 0 {
        AccessKind::Read
    } else if flags & creat_excl == creat_excl {
        AccessKind::CreateNew
    } else if flags & libc::O_TRUNC != 0 {
        AccessKind::Create
    } else if flags & libc::O_APPEND != 0 {
        AccessKind::Append
    } else if flags & libc::O_CREAT == 0 {
        AccessKind::Reopen
    } else if access == libc::O_WRONLY {
        AccessKind::Overwrite
    } else {
        AccessKind::Update
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

/// The open file `fd` itself (its path is what the descriptor points to).
fn fd(fd: u64, kind: AccessKind) -> Option<PathArg> {
    at(fd, 0, kind)
}

fn truncation(len: u64) -> AccessKind {
    if len == 0 {
        AccessKind::Truncate
    } else {
        AccessKind::Resize
    }
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
        libc::SYS_chroot => cwd(a[0], Stat).map_or(Call::Nothing, Call::Chroot),
        libc::SYS_newfstatat | libc::SYS_statx | libc::SYS_faccessat | libc::SYS_faccessat2 => {
            one(at(a[0], a[1], Stat))
        }
        libc::SYS_name_to_handle_at => one(at(a[0], a[1], Stat)),
        libc::SYS_readlink => one(cwd(a[0], ReadLink)),
        libc::SYS_readlinkat => one(at(a[0], a[1], ReadLink)),
        libc::SYS_getdents | libc::SYS_getdents64 => one(fd(a[0], List)),
        libc::SYS_getxattr | libc::SYS_lgetxattr | libc::SYS_listxattr | libc::SYS_llistxattr => {
            one(cwd(a[0], Xattr))
        }
        libc::SYS_fgetxattr | libc::SYS_flistxattr => one(fd(a[0], Xattr)),
        libc::SYS_setxattr
        | libc::SYS_lsetxattr
        | libc::SYS_removexattr
        | libc::SYS_lremovexattr => one(cwd(a[0], SetAttr)),
        libc::SYS_fsetxattr | libc::SYS_fremovexattr => one(fd(a[0], SetAttr)),
        libc::SYS_truncate => one(cwd(a[0], truncation(a[1]))),
        libc::SYS_ftruncate => one(fd(a[0], truncation(a[1]))),
        libc::SYS_uselib => one(cwd(a[0], Read)),
        libc::SYS_unlink | libc::SYS_rmdir => one(cwd(a[0], Delete)),
        libc::SYS_unlinkat => one(at(a[0], a[1], Delete)),
        libc::SYS_mkdir => one(cwd(a[0], Mkdir)),
        libc::SYS_mkdirat => one(at(a[0], a[1], Mkdir)),
        libc::SYS_mknod => one(cwd(a[0], Mknod)),
        libc::SYS_mknodat => one(at(a[0], a[1], Mknod)),
        libc::SYS_chmod | libc::SYS_chown | libc::SYS_lchown | libc::SYS_utime => {
            one(cwd(a[0], SetAttr))
        }
        libc::SYS_utimes => one(cwd(a[0], SetAttr)),
        libc::SYS_fchmodat | libc::SYS_fchmodat2 | libc::SYS_fchownat => {
            one(at(a[0], a[1], SetAttr))
        }
        // A null path with a descriptor changes the open file (`futimens`).
        libc::SYS_futimesat | libc::SYS_utimensat => one(at(a[0], a[1], SetAttr)),
        libc::SYS_rename => two(cwd(a[0], RenameFrom), cwd(a[1], RenameTo)),
        libc::SYS_renameat => two(at(a[0], a[1], RenameFrom), at(a[2], a[3], RenameTo)),
        libc::SYS_renameat2 => {
            let (from, to) = rename2_kinds(a[4]);
            two(at(a[0], a[1], from), at(a[2], a[3], to))
        }
        // The new name shares the old one's inode: its content is what the run depends on.
        libc::SYS_link => two(cwd(a[0], Stat), cwd(a[1], Link)),
        libc::SYS_linkat => two(at(a[0], a[1], Stat), at(a[2], a[3], Link)),
        libc::SYS_symlink => one(cwd(a[1], Symlink)),
        libc::SYS_symlinkat => one(at(a[1], a[2], Symlink)),
        _ => Call::Nothing,
    }
}

/// The kinds of `renameat2`'s two paths for its flags: an exchange moves both contents, and
/// `RENAME_NOREPLACE` fails when the target exists, so its absence is what the run relied on.
fn rename2_kinds(flags: u64) -> (AccessKind, AccessKind) {
    let flags = flags as u32;
    if flags & libc::RENAME_EXCHANGE != 0 {
        (AccessKind::RenameFrom, AccessKind::RenameFrom)
    } else if flags & libc::RENAME_NOREPLACE != 0 {
        (AccessKind::RenameFrom, AccessKind::Link)
    } else {
        (AccessKind::RenameFrom, AccessKind::RenameTo)
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
        assert_eq!(f(libc::O_RDWR), AccessKind::Reopen);
        assert_eq!(f(libc::O_WRONLY | libc::O_APPEND), AccessKind::Append);
        assert_eq!(f(libc::O_WRONLY), AccessKind::Reopen);
        assert_eq!(f(libc::O_RDWR | libc::O_CREAT), AccessKind::Update);
        assert_eq!(f(libc::O_WRONLY | libc::O_CREAT), AccessKind::Overwrite);
        assert_eq!(
            f(libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT),
            AccessKind::Append
        );
        assert_eq!(
            f(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
            AccessKind::Create
        );
        assert_eq!(f(libc::O_RDWR | libc::O_TRUNC), AccessKind::Create);
        assert_eq!(
            f(libc::O_RDONLY | libc::O_CREAT | libc::O_TRUNC),
            AccessKind::Create
        );
        assert_eq!(
            f(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL),
            AccessKind::CreateNew
        );
        assert_eq!(f(libc::O_PATH), AccessKind::Stat);
    }

    #[test]
    fn fast_calls_are_traced_and_refuse_nothing() {
        for nr in FAST {
            assert!(TRACED.contains(&nr), "syscall {nr}");
            assert!(
                !REFUSED.contains(&nr) && !DENIED.contains(&nr),
                "syscall {nr}"
            );
            assert!(
                !super::super::sockets::SOCKET_CALLS.contains(&nr),
                "syscall {nr}"
            );
            assert!(
                ![libc::SYS_ioctl, libc::SYS_clone].contains(&nr),
                "syscall {nr}"
            );
        }
    }

    #[test]
    fn every_traced_call_is_decoded() {
        let args = [libc::AT_FDCWD as u64, 0x1000, 0x2000, 0x3000, 0, 0];
        for nr in TRACED {
            assert_ne!(decode(nr, &args), Call::Nothing, "syscall {nr}");
        }
    }

    #[test]
    fn renames_move_content() {
        let a = |flags: u32| {
            let args = [
                libc::AT_FDCWD as u64,
                1,
                libc::AT_FDCWD as u64,
                2,
                flags as u64,
                0,
            ];
            match decode(libc::SYS_renameat2, &args) {
                Call::Paths([Some(x), Some(y)]) => (x.kind, y.kind),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(a(0), (AccessKind::RenameFrom, AccessKind::RenameTo));
        assert_eq!(
            a(libc::RENAME_EXCHANGE),
            (AccessKind::RenameFrom, AccessKind::RenameFrom)
        );
        assert_eq!(
            a(libc::RENAME_NOREPLACE),
            (AccessKind::RenameFrom, AccessKind::Link)
        );
    }
}
