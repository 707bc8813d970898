//! The observation fast path: a small library preloaded into the command's dynamically linked
//! programs (`fastpath/*.c`, built by `build.rs` and embedded here) that records their file
//! accesses in memory shared with the supervisor ([`super::shared`]) instead of trapping.
//!
//! **How.** The library wraps the C library's file calls (the open family, `fopen`, `opendir`,
//! the stat family, `access`, `readlink`, the extended-attribute reads). A wrapped call
//! resolves its path as the supervisor would, records the access in the ring with the next
//! number of the global sequence (the supervisor takes its numbers from the same counter at
//! `RECV`, so the merged log keeps the order the calls were made in), and then makes the same
//! system call through a stub mapped at a fixed address chosen per sandbox, with a per-sandbox
//! cookie in `r9`, an argument register none of these calls uses. The one seccomp filter lets a
//! traced call through without a notification only with that cookie *and* from that
//! address, so a signal handler that inherits `r9` mid-call still traps. Everything else
//! traps as before: the dynamic loader, the C library's internal calls (locale files, `fopen`
//! of the library itself, `getdents`), static binaries, programs that clear their environment,
//! calls the library does not wrap, and every exec. What is observed never shrinks.
//!
//! **Exactly the same log.** A path's first access carries a fingerprint taken before the
//! call (see [`crate::Fingerprint`]). The library takes one only where the sandbox's view of
//! the path is provably the host's: its lookup, opened `O_PATH` with `RESOLVE_NO_XDEV`, stayed
//! on the sandbox's root mount (the host's root filesystem bound read-only; overlays, `/proc`,
//! `/dev` and masks are mounts of their own), or failed there as it fails on the host. Or the
//! supervisor already fingerprinted the path (the shared set), or the library recorded it in
//! this process before, or it is under `/dev` or `/sys`. Otherwise the call takes the slow path.
//! Paths through `/proc` and `/dev/fd` always do, and the library stands down once a process
//! changes its root. An open that may append (`O_APPEND`) always takes the slow path, and the
//! filter notifies one even from the stub: before it, the supervisor has the sandbox copy the
//! file and notes the copy's size (the append base). The library stands down entirely with a
//! synthetic root (a mapped root's missing mount point) or a mapped root under `/dev`, `/sys`
//! or `/proc`; paths under other mapped roots leave the root mount, so they take the slow path
//! and are named by host path. A forked process makes itself known with one trapping call before it
//! records, so accesses name host pids as before. The equivalence tests
//! (`sandbox/tests/sandbox/fastpath.rs`) run a corpus of real programs with and without the
//! library and require the same accesses, order and fingerprints.
//!
//! **Invisible.** The sandbox appends the library to `LD_PRELOAD` (after the program's own
//! preloads, which keep working) only for a dynamically linked program; the library removes
//! itself at load, so the program sees the environment it was given, and its exec and
//! `posix_spawn` wrappers hand it on the same way. Left visible: `/dev/shm/.shark` (the library
//! and the shared memory), the library in `/proc/self/maps`, `LD_PRELOAD` in
//! `/proc/self/environ`, and these calls are not thread-cancellation points.
//!
//! **Threat model.** The fast path trusts the program to report its own reads: a program can
//! read the cookie from its memory (or write the shared memory) and hide its reads, or
//! misreport them. That loses what a run depended on; it does not let the program out: its
//! writes are still captured by the overlays, and every refusal of the filter (mounts,
//! namespaces, io_uring, socket calls, `TIOCSTI`, ...) comes before and independent of the
//! cookie, which only skips observation notifications. Without the library a program could
//! hide a read too, by rewriting the path in another thread between the supervisor's read of
//! it and the kernel's; observation assumes programs do not try. [`crate::Spec::fast_path`]`
//! = false` turns the library off.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::shared::{Shared, SHARED_SIZE};
use crate::plan::CStringArray;

/// The library's path in the sandbox (`fastpath/layout.h`: `SHARK_SELF`).
pub(crate) const LIBRARY_PATH: &str = "/dev/shm/.shark/fast.so";
/// Where the sandbox's own files live; accesses to them are not the command's.
pub(crate) const DIR: &str = "/dev/shm/.shark";
/// The dirfd of the call by which a forked process makes itself known.
pub(crate) const ANNOUNCE_FD: i32 = -0x5348;
/// Where the kernel reports a stub call's instruction pointer, from the stub's start.
const STUB_RETURN: u64 = 30;
/// Marks the configuration block in the library (`layout.h`: `SHARK_CONFIG_MARKER`).
const MARKER: &[u8; 16] = b"shark-fast-cfg:1";
/// The stub's page is chosen in this range: above the sanitizers' shadow memory and below
/// where the kernel puts ordinary mappings.
const STUB_RANGE: (u64, u64) = (0x7e80_0000_0000, 0x7ee0_0000_0000);

static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/shark-fast.so"));

/// What the filter requires of a call made without a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cookie {
    /// The secret in the sixth argument register.
    pub(crate) value: u64,
    /// The instruction pointer the kernel reports for the stub's system call.
    pub(crate) ip: u64,
}

/// The fast path's part of a sandbox's plan.
#[derive(Debug)]
pub(crate) struct FastPlan {
    pub(crate) cookie: Cookie,
    dir: CString,
    library_path: CString,
    ring_path: CString,
    /// The library with this sandbox's cookie and stub address.
    library: Vec<u8>,
    /// The command's environment with the library appended to `LD_PRELOAD`.
    pub(crate) envp: CStringArray,
    /// For each candidate program of the plan, whether it is dynamically linked.
    pub(crate) dynamic: Vec<bool>,
}

fn random_u64() -> Option<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most the 8 bytes of the local buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), 8, 0) };
    (n == 8).then(|| u64::from_ne_bytes(bytes))
}

impl FastPlan {
    /// The plan for a command with environment `env` whose program is one of `programs`;
    /// `None` when no secret could be drawn or the library is malformed.
    pub(crate) fn build(
        env: &[(OsString, OsString)],
        programs: &[CString],
        cwd: &Path,
        mapped: &[crate::MappedRoot],
    ) -> Option<FastPlan> {
        let value = random_u64().filter(|v| *v != 0)?;
        let pages = (STUB_RANGE.1 - STUB_RANGE.0) / 4096;
        let stub = STUB_RANGE.0 + (random_u64()? % pages) * 4096;
        let library = patched(value, stub)?;
        let envp = CStringArray::new(
            with_library(env)
                .iter()
                .map(|(k, v)| {
                    let mut entry = k.as_bytes().to_vec();
                    entry.push(b'=');
                    entry.extend_from_slice(v.as_bytes());
                    CString::new(entry).ok()
                })
                .collect::<Option<Vec<_>>>()?,
        );
        let dynamic = programs
            .iter()
            .map(|p| {
                let named = cwd.join(std::ffi::OsStr::from_bytes(p.as_bytes()));
                is_dynamic(&crate::mapped::to_host(&named, mapped), mapped, 0)
            })
            .collect();
        Some(FastPlan {
            cookie: Cookie {
                value,
                ip: stub + STUB_RETURN,
            },
            dir: CString::new(DIR).ok()?,
            library_path: CString::new(LIBRARY_PATH).ok()?,
            ring_path: CString::new(format!("{DIR}/ring")).ok()?,
            library,
            envp,
            dynamic,
        })
    }

    /// Creates the library and the shared memory in the sandbox's `/dev/shm`. Runs in the
    /// command process before `execve` (raw system calls only). False if anything failed:
    /// the command then runs without the library.
    pub(crate) fn install(&self) -> bool {
        // SAFETY: raw calls on C strings and a buffer owned by the plan; every descriptor
        // opened here is closed here.
        unsafe {
            if libc::mkdir(self.dir.as_ptr(), 0o755) != 0 {
                return false;
            }
            let ok = write_file(&self.library_path, &self.library, 0o444)
                && create_ring(&self.ring_path);
            libc::chmod(self.dir.as_ptr(), 0o555);
            ok
        }
    }
}

/// Writes `bytes` to a new file at `path` with `mode`.
///
/// # Safety
/// Only raw system calls: safe between `clone` and `execve`.
unsafe fn write_file(path: &CString, bytes: &[u8], mode: libc::mode_t) -> bool {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: per the function's contract.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, mode);
        if fd < 0 {
            return false;
        }
        let mut done = 0;
        while done < bytes.len() {
            let n = libc::write(fd, bytes[done..].as_ptr().cast(), bytes.len() - done);
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        let ok = done == bytes.len() && libc::fchmod(fd, mode) == 0;
        libc::close(fd);
        ok
    }
}

/// Creates the zero-filled shared memory, writable by every uid of the sandbox.
///
/// # Safety
/// Only raw system calls: safe between `clone` and `execve`.
unsafe fn create_ring(path: &CString) -> bool {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: per the function's contract.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o666);
        if fd < 0 {
            return false;
        }
        let ok =
            libc::ftruncate(fd, SHARED_SIZE as libc::off_t) == 0 && libc::fchmod(fd, 0o666) == 0;
        libc::close(fd);
        ok
    }
}

/// The library with the cookie and the stub's address written into its configuration block.
fn patched(cookie: u64, stub: u64) -> Option<Vec<u8>> {
    let at = LIBRARY.windows(MARKER.len()).position(|w| w == MARKER)?;
    let mut library = LIBRARY.to_vec();
    library[at + 16..at + 24].copy_from_slice(&cookie.to_le_bytes());
    library[at + 24..at + 32].copy_from_slice(&stub.to_le_bytes());
    Some(library)
}

/// `env` with the library appended to (the first) `LD_PRELOAD`, as the library's exec
/// wrappers do (`fastpath/exec.c`) and as it removes itself at load.
pub(crate) fn with_library(env: &[(OsString, OsString)]) -> Vec<(OsString, OsString)> {
    let mut env = env.to_vec();
    match env.iter_mut().find(|(k, _)| k == "LD_PRELOAD") {
        Some((_, v)) => {
            v.push(":");
            v.push(LIBRARY_PATH);
        }
        None => env.push(("LD_PRELOAD".into(), LIBRARY_PATH.into())),
    }
    env
}

/// Whether the program at `path` starts through the dynamic loader: an ELF file with an
/// interpreter, or a script whose interpreter is one.
pub(crate) fn is_dynamic(path: &Path, mapped: &[crate::MappedRoot], depth: u32) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let mut head = [0u8; 256];
    // Without blocking on a fifo; only a regular file can be executed.
    let Ok(mut file) = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let n = file.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let interpreter = line
            .split(|&b| b == b' ' || b == b'\t')
            .find(|w| !w.is_empty());
        return depth < 2
            && interpreter.is_some_and(|i| {
                let named = Path::new(std::ffi::OsStr::from_bytes(i));
                is_dynamic(&crate::mapped::to_host(named, mapped), mapped, depth + 1)
            });
    }
    elf_has_interpreter(&file, head)
}

fn elf_has_interpreter(file: &File, head: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let phoff = u64::from_le_bytes(head[32..40].try_into().unwrap_or_default());
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    if phentsize != 56 || phnum == 0 || phnum > 64 {
        return false;
    }
    let mut table = vec![0u8; phentsize * phnum];
    if file.read_exact_at(&mut table, phoff).is_err() {
        return false;
    }
    const PT_INTERP: u32 = 3;
    table
        .chunks_exact(phentsize)
        .any(|ph| u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == PT_INTERP)
}

/// Maps the shared memory the command process created in the sandbox's `/dev/shm` (open as
/// `shm`), and publishes it to the library. `None` if it is not there (the library then finds
/// no header and stands down).
pub(crate) fn open_shared(shm: &OwnedFd) -> Option<Shared> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(shm.as_fd(), ".shark/ring", flags, Mode::empty()).ok()?;
    Shared::map(&File::from(fd)).ok()
}
