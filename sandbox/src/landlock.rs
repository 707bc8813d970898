//! Landlock: confines the command's writes to the writable roots and a few device files, as a
//! second line of defence behind the read-only mounts (and the only one against a command that
//! is root in its user namespace and could otherwise remount).
//!
//! The supervisor creates the ruleset; the command's process adds the path rules after the new
//! root is in place (rules bind to the overlay inodes, not the host's) and restricts itself.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::{LandlockGap, LandlockStatus, SandboxError};

const CREATE_RULESET_VERSION: u32 = 1;
pub(crate) const RULE_PATH_BENEATH: libc::c_int = 1;

const WRITE_FILE: u64 = 1 << 1;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_ALL: u64 = 0b111_1111 << 6; // char, dir, reg, sock, fifo, block, sym
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;

/// `struct landlock_path_beneath_attr` (packed in the kernel ABI).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathBeneath {
    pub(crate) allowed_access: u64,
    pub(crate) parent_fd: i32,
}

/// The write rights this ABI knows.
fn handled(abi: u32) -> u64 {
    let mut rights = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_ALL;
    if abi >= 2 {
        rights |= REFER;
    }
    if abi >= 3 {
        rights |= TRUNCATE;
    }
    rights
}

/// The kernel's Landlock ABI version, or why there is none.
pub(crate) fn abi() -> Result<u32, LandlockGap> {
    // SAFETY: with a NULL attr and size 0 this syscall only returns the ABI version.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0,
            CREATE_RULESET_VERSION,
        )
    };
    if ret >= 0 {
        return Ok(ret as u32);
    }
    match nix::errno::Errno::last() {
        nix::errno::Errno::ENOSYS => Err(LandlockGap::NotBuilt),
        nix::errno::Errno::EOPNOTSUPP => Err(LandlockGap::Disabled),
        e => Err(LandlockGap::Failed(e as i32)),
    }
}

/// `LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL` (ABI 6): no connection to
/// an abstract Unix socket, and no signal, outside the sandbox's own Landlock domain. With the
/// network on, the sandbox shares the host's network namespace, where the host's abstract
/// sockets (a session bus, X11) live.
const SCOPED: u64 = 0b11;

/// `struct landlock_ruleset_attr` as of ABI 6.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// Creates a ruleset handling every write right of `abi` (and, from ABI 6, scoping abstract
/// Unix sockets and signals to the sandbox).
pub(crate) fn create_ruleset(abi: u32) -> Result<OwnedFd, LandlockGap> {
    let attr = RulesetAttr {
        handled_access_fs: handled(abi),
        handled_access_net: 0,
        scoped: if abi >= 6 { SCOPED } else { 0 },
    };
    // The kernel accepts a prefix of the struct: ABI 1 knows only `handled_access_fs`.
    let size = if abi >= 6 {
        std::mem::size_of::<RulesetAttr>()
    } else {
        std::mem::size_of::<u64>()
    };
    // SAFETY: `attr` is a valid `landlock_ruleset_attr` (or prefix) of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
            0,
        )
    };
    if fd < 0 {
        return Err(LandlockGap::Failed(nix::errno::Errno::last() as i32));
    }
    // SAFETY: the syscall returned a fresh file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Probes Landlock and prepares a ruleset: the ruleset (if any) and the status to report.
pub(crate) fn prepare() -> (Option<(OwnedFd, u32)>, LandlockStatus) {
    match abi().and_then(|abi| Ok((create_ruleset(abi)?, abi))) {
        Ok((fd, abi)) => (Some((fd, abi)), LandlockStatus::Enforced { abi }),
        Err(gap) => (None, LandlockStatus::NotEnforced(gap)),
    }
}

/// The path rules: full write access beneath the writable roots and `/dev/shm`, file writes on
/// the device files, `/dev/pts` and `/proc`.
pub(crate) fn rules(
    roots: &[PathBuf],
    abi: u32,
    cpath: fn(&Path) -> Result<CString, SandboxError>,
) -> Result<Vec<(CString, u64)>, SandboxError> {
    let all = handled(abi);
    let file = WRITE_FILE | (all & TRUNCATE);
    let mut rules = Vec::new();
    for root in roots {
        rules.push((cpath(root)?, all));
    }
    rules.push((cpath(Path::new("/dev/shm"))?, all));
    for dev in crate::plan::DEVICES {
        rules.push((cpath(&Path::new("/dev").join(dev))?, file));
    }
    rules.push((cpath(Path::new("/dev/pts"))?, file));
    rules.push((cpath(Path::new("/proc"))?, file));
    Ok(rules)
}
