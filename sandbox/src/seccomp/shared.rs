//! The memory the supervisor shares with the preloaded library (`fastpath/`), one file in the
//! sandbox's private `/dev/shm`. This module's doc is its format; `fastpath/layout.h` holds the
//! same numbers, and the tests below compare the two.
//!
//! All integers little-endian (x86_64). Offsets in bytes.
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | magic `SHARKFP1` (written last by the supervisor: the library uses nothing before) |
//! | 8 | 4 | version, 1 |
//! | 12 | 4 | nonzero once a process of the sandbox changed its root (the library then stands down) |
//! | 64 | 8 | the global sequence counter: each access takes the next number, on either path |
//! | 128 | 8 | the ring's reservation counter (producers) |
//! | 1024 | 64 x 32 | the library's own table of programs (`fastpath/layout.h`, `H_PROGRAMS`) |
//! | 4096 | 16384 x 512 | the ring: one access per slot |
//! | 8 MiB + 4 KiB | 65536 x 16 | the fingerprinted set: `{hash u64, offset u32, length u32}` |
//! | 9 MiB + 4 KiB | 4 MiB | the set's string arena |
//!
//! **Ring slot**: `state u64` (at position `p`, lap `l = p / 16384`: `2l` while free, `2l + 1`
//! once committed), `seq u64`, `pid u32` (in the sandbox's pid namespace), `kind u8` (the
//! [`AccessKind`] in declaration order), `has_fingerprint u8`, `path_len u16`, then the
//! fingerprint (`dev`, `ino`, `size` u64, `mtime`, `ctime` i64 seconds, their nanoseconds u32,
//! `mode` u32, `present` u32) and from offset 80 the path: absolute, by its components (no
//! empty or `.` component, no trailing `/`). Producers reserve a slot with a compare-and-swap
//! on the reservation counter and commit it by storing its state (release); the supervisor
//! reads committed slots in order and frees them for the next lap. A full ring makes the
//! library take the slow path.
//!
//! **Fingerprinted set**: the paths (by components, as above) whose first access the
//! supervisor fingerprinted; hash FNV-1a 64 (raised to 3 if below), linear probing, a slot
//! published by storing its hash last. A later access to such a path needs no fingerprint, so
//! the library records it without the supervisor. Only the supervisor writes the set.
//!
//! The sandboxed program can write all of this memory: everything read from it is bounded
//! and checked, and the worst it can do is hide its own reads (see `fast.rs`). It can also
//! truncate the file, after which touching the mapping raises `SIGBUS`: a handler replaces
//! the damaged mapping with zeros so the supervisor carries on, and the report says that the
//! command damaged its observation ([`Shared::damaged`]), so the run is never reused.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::{AccessKind, Fingerprint};

pub(crate) const MAGIC: u64 = 0x3150_464b_5241_4853;
pub(crate) const VERSION: u64 = 1;
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
pub(crate) const H_CHROOTED: usize = 12;
pub(crate) const H_SEQ: usize = 64;
pub(crate) const H_HEAD: usize = 128;
pub(crate) const RING_OFFSET: usize = 4096;
const RING_SHIFT: u32 = 14;
pub(crate) const RING_SLOTS: usize = 1 << RING_SHIFT;
pub(crate) const SLOT_SIZE: usize = 512;
pub(crate) const SET_OFFSET: usize = RING_OFFSET + RING_SLOTS * SLOT_SIZE;
pub(crate) const SET_SLOTS: usize = 1 << 16;
const SET_SLOT_SIZE: usize = 16;
pub(crate) const ARENA_OFFSET: usize = SET_OFFSET + SET_SLOTS * SET_SLOT_SIZE;
pub(crate) const ARENA_SIZE: usize = 4 << 20;
pub(crate) const SHARED_SIZE: usize = ARENA_OFFSET + ARENA_SIZE;
/// The supervisor stops inserting into the set at this load, so lookups stay short.
const SET_MAX: usize = SET_SLOTS / 2;

/// Offsets of a ring slot's fields.
pub(crate) mod slot {
    pub(crate) const STATE: usize = 0;
    pub(crate) const SEQ: usize = 8;
    pub(crate) const PID: usize = 16;
    pub(crate) const KIND: usize = 20;
    pub(crate) const HAS_FP: usize = 21;
    pub(crate) const PATH_LEN: usize = 22;
    pub(crate) const DEV: usize = 24;
    pub(crate) const INO: usize = 32;
    pub(crate) const SIZE: usize = 40;
    pub(crate) const MTIME: usize = 48;
    pub(crate) const CTIME: usize = 56;
    pub(crate) const MTIME_NSEC: usize = 64;
    pub(crate) const CTIME_NSEC: usize = 68;
    pub(crate) const MODE: usize = 72;
    pub(crate) const PRESENT: usize = 76;
    pub(crate) const PATH: usize = 80;
}

/// The access kinds by their number in the ring.
pub(crate) const KINDS: [AccessKind; 22] = {
    use AccessKind::*;
    [
        Read, List, Exec, Stat, ReadLink, Xattr, Create, Reopen, Overwrite, Update, Append,
        CreateNew, Truncate, Resize, Mkdir, Mknod, Symlink, Link, Delete, RenameFrom, RenameTo,
        SetAttr,
    ]
};

/// FNV-1a 64 over `bytes`, never below 3 (`layout.h`: `shark_hash`).
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if h < 3 {
        h + 3
    } else {
        h
    }
}

/// `path` by its components, as the library spells it: how `Path` compares paths.
pub(crate) fn canonical(path: &Path) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.as_os_str().len());
    for component in path.components() {
        match component {
            Component::Normal(name) => {
                out.push(b'/');
                out.extend_from_slice(name.as_bytes());
            }
            Component::ParentDir => out.extend_from_slice(b"/.."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// One access the library recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    /// The process, by its pid in the sandbox's pid namespace.
    pub(crate) pid: u32,
    pub(crate) kind: AccessKind,
    pub(crate) path: PathBuf,
    pub(crate) fingerprint: Option<Fingerprint>,
}

/// The supervisor's mapping of the shared memory.
#[derive(Debug)]
pub(crate) struct Shared {
    base: *mut u8,
    /// Its entry in [`GUARDED`] (a mapping without one is never made).
    guard: usize,
    /// The lowest sequence number to hand out next (one past the last one): numbers stay
    /// increasing even if the memory holding the counter is lost.
    seq_floor: std::cell::Cell<u64>,
    /// The memory was found zeroed or rewound (truncated and extended again), with no fault.
    lost: bool,
    /// Next ring position to read.
    tail: u64,
    set_count: usize,
    arena_used: usize,
}

// SAFETY: the mapping is process-wide memory; `Shared` is used by one thread at a time.
unsafe impl Send for Shared {}

impl Shared {
    /// Maps `file` (at least [`SHARED_SIZE`] bytes, zero-filled) and publishes the header:
    /// from then on, the library uses it.
    pub(crate) fn map(file: &std::fs::File) -> std::io::Result<Shared> {
        if file.metadata()?.len() < SHARED_SIZE as u64 {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a shared mapping of a file we hold open; nothing else in this process maps it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SHARED_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let Some(guard) = guard(base as usize) else {
            // No fault of this mapping could be caught: run without the fast path.
            // SAFETY: unmaps the mapping just made.
            unsafe { libc::munmap(base, SHARED_SIZE) };
            return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
        };
        let shared = Shared {
            base: base.cast(),
            guard,
            seq_floor: std::cell::Cell::new(0),
            lost: false,
            tail: 0,
            set_count: 0,
            arena_used: 0,
        };
        shared
            .u32_at(H_VERSION)
            .store(VERSION as u32, Ordering::Relaxed);
        shared.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(shared)
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= SHARED_SIZE);
        // SAFETY: in bounds and aligned (the mapping is page-aligned); atomics may alias memory
        // other processes write.
        unsafe { AtomicU64::from_ptr(self.base.add(offset).cast()) }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= SHARED_SIZE);
        // SAFETY: as in `u64_at`.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    fn byte_at(&self, offset: usize) -> u8 {
        assert!(offset < SHARED_SIZE);
        // SAFETY: in bounds; a volatile read of memory another process may write.
        unsafe { self.base.add(offset).read_volatile() }
    }

    /// The next number of the global sequence, shared with the library.
    pub(crate) fn next_seq(&self) -> u64 {
        let seq = self
            .u64_at(H_SEQ)
            .fetch_add(1, Ordering::SeqCst)
            .max(self.seq_floor.get());
        self.seq_floor.set(seq + 1);
        seq
    }

    /// Whether the command truncated the shared file under the mapping: what the library
    /// recorded since may be lost.
    pub(crate) fn damaged(&self) -> bool {
        self.lost || GUARDED[self.guard].damaged.load(Ordering::Acquire)
    }

    /// Tells the library that a process changed its root: paths can no longer be resolved
    /// without the supervisor, and no program started from now on gets the library.
    pub(crate) fn set_chrooted(&self) {
        self.u32_at(H_CHROOTED).store(1, Ordering::Release);
    }

    /// Adds a path (by components) whose first access was fingerprinted.
    pub(crate) fn insert(&mut self, path: &[u8]) {
        if self.set_count >= SET_MAX || self.arena_used + path.len() > ARENA_SIZE {
            return;
        }
        let h = hash(path);
        for i in 0..SET_SLOTS {
            let at = SET_OFFSET + ((h as usize).wrapping_add(i) & (SET_SLOTS - 1)) * SET_SLOT_SIZE;
            let slot_hash = self.u64_at(at).load(Ordering::Acquire);
            if slot_hash == 0 {
                // SAFETY: the arena range was checked above; the bytes are ours to write.
                unsafe {
                    let dst = self.base.add(ARENA_OFFSET + self.arena_used);
                    std::ptr::copy_nonoverlapping(path.as_ptr(), dst, path.len());
                }
                self.u32_at(at + 8)
                    .store(self.arena_used as u32, Ordering::Relaxed);
                self.u32_at(at + 12)
                    .store(path.len() as u32, Ordering::Relaxed);
                self.u64_at(at).store(h, Ordering::Release);
                self.arena_used += path.len();
                self.set_count += 1;
                return;
            }
            if slot_hash == h && self.set_entry(at) == Some(path) {
                return;
            }
        }
    }

    fn set_entry(&self, at: usize) -> Option<&[u8]> {
        let off = self.u32_at(at + 8).load(Ordering::Relaxed) as usize;
        let len = self.u32_at(at + 12).load(Ordering::Relaxed) as usize;
        if off.checked_add(len)? > ARENA_SIZE {
            return None;
        }
        // SAFETY: in bounds; only the supervisor writes the arena (the program could scribble
        // on it, which at worst makes a lookup miss).
        Some(unsafe { std::slice::from_raw_parts(self.base.add(ARENA_OFFSET + off), len) })
    }

    /// Moves the committed entries at the head of the ring into `out`. With `all` (every
    /// process gone), reads up to the last reserved position, skipping slots reserved by a
    /// process that died before committing them.
    pub(crate) fn drain(&mut self, all: bool, out: &mut Vec<Entry>) {
        // At most a ring's worth is outstanding (the program could write any number here).
        let head = self.u64_at(H_HEAD).load(Ordering::Acquire);
        // Truncated and extended again (no fault, but zeros): what was in it is lost.
        if self.u64_at(H_MAGIC).load(Ordering::Acquire) != MAGIC || head < self.tail {
            self.lost = true;
        }
        if self.damaged() {
            return;
        }
        let head = head.min(self.tail + RING_SLOTS as u64);
        while self.tail < head {
            let at = RING_OFFSET + (self.tail as usize & (RING_SLOTS - 1)) * SLOT_SIZE;
            let lap = self.tail >> RING_SHIFT;
            let state = self.u64_at(at + slot::STATE).load(Ordering::Acquire);
            if state == 2 * lap + 1 {
                let entry = self.entry(at);
                if self.damaged() {
                    return; // what was read may be zeros put in place of the lost memory
                }
                if let Some(entry) = entry {
                    out.push(entry);
                }
            } else if !all {
                break;
            }
            self.u64_at(at + slot::STATE)
                .store(2 * (lap + 1), Ordering::Release);
            self.tail += 1;
        }
    }

    /// The entry in the committed slot at `at`; `None` if it does not make sense.
    fn entry(&self, at: usize) -> Option<Entry> {
        let u64_ = |o: usize| self.u64_at(at + o).load(Ordering::Relaxed);
        let u32_ = |o: usize| self.u32_at(at + o).load(Ordering::Relaxed);
        let kind = *KINDS.get(self.byte_at(at + slot::KIND) as usize)?;
        let len = u16::from_le_bytes([
            self.byte_at(at + slot::PATH_LEN),
            self.byte_at(at + slot::PATH_LEN + 1),
        ]) as usize;
        if len == 0 || len > SLOT_SIZE - slot::PATH {
            return None;
        }
        let path: Vec<u8> = (0..len)
            .map(|i| self.byte_at(at + slot::PATH + i))
            .collect();
        if path[0] != b'/' {
            return None;
        }
        let fingerprint = (self.byte_at(at + slot::HAS_FP) != 0).then(|| {
            if u32_(slot::PRESENT) == 0 {
                return Fingerprint::Absent;
            }
            let ns = |s: u64, n: u32| i128::from(s as i64) * 1_000_000_000 + i128::from(n);
            Fingerprint::Present {
                dev: u64_(slot::DEV),
                ino: u64_(slot::INO),
                mode: u32_(slot::MODE),
                size: u64_(slot::SIZE),
                mtime_ns: ns(u64_(slot::MTIME), u32_(slot::MTIME_NSEC)),
                ctime_ns: ns(u64_(slot::CTIME), u32_(slot::CTIME_NSEC)),
            }
        });
        Some(Entry {
            seq: u64_(slot::SEQ),
            pid: u32_(slot::PID),
            kind,
            path: PathBuf::from(OsStr::from_bytes(&path)),
            fingerprint,
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        GUARDED[self.guard].start.store(0, Ordering::Release);
        // SAFETY: unmaps the mapping made in `map` (or the zeros put in its place), which
        // nothing borrows any more.
        unsafe { libc::munmap(self.base.cast(), SHARED_SIZE) };
    }
}

/// A mapping the `SIGBUS` handler watches: its start (0 when free) and whether it was lost.
struct Guarded {
    start: std::sync::atomic::AtomicUsize,
    damaged: std::sync::atomic::AtomicBool,
}

/// One entry per sandbox this process supervises at once; more than that run without the fast
/// path.
static GUARDED: [Guarded; 64] = [const {
    Guarded {
        start: std::sync::atomic::AtomicUsize::new(0),
        damaged: std::sync::atomic::AtomicBool::new(false),
    }
}; 64];

/// The `SIGBUS` disposition before [`on_sigbus`] was installed, to hand other faults to.
static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();
static INSTALL: std::sync::Once = std::sync::Once::new();

/// Watches the mapping at `start`, installing the handler the first time.
fn guard(start: usize) -> Option<usize> {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler has the SA_SIGINFO signature, and
        // PREVIOUS is written here once, before the handler is installed, and only read after.
        unsafe {
            libc::sigaction(
                libc::SIGBUS,
                std::ptr::null(),
                std::ptr::addr_of_mut!(PREVIOUS).cast(),
            );
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
    let i = GUARDED.iter().position(|g| {
        g.start
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })?;
    // The previous owner's fault, if any, is not this mapping's; no fault can be on its way
    // for it before this function returns.
    GUARDED[i].damaged.store(false, Ordering::Release);
    Some(i)
}

/// A `SIGBUS` in a watched mapping (the command truncated the shared file) replaces the
/// mapping with zeros, marks it lost and returns, so the faulting access runs again on the
/// zeros. Any other goes to the previous handler, or to the default action.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler; only a fault (a
    // positive code) carries an address.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    for g in GUARDED.iter().filter(|_| code > 0) {
        let start = g.start.load(Ordering::Acquire);
        if start != 0 && (start..start + SHARED_SIZE).contains(&addr) {
            // SAFETY: replaces exactly the watched mapping, which its `Shared` owns and
            // unmaps later; mmap is async-signal-safe.
            let zeros = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    SHARED_SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zeros != libc::MAP_FAILED {
                g.damaged.store(true, Ordering::Release);
                return;
            }
            // (A failed mmap changed errno; the default action that follows ends the process.)
        }
    }
    // SAFETY: PREVIOUS was filled in before this handler was installed. Calling the previous
    // SA_SIGINFO handler, or restoring the default and returning (the access faults again,
    // and the default action ends the process), is what would have happened without us.
    unsafe {
        let previous = std::ptr::addr_of!(PREVIOUS)
            .cast::<libc::sigaction>()
            .read();
        match previous.sa_sigaction {
            libc::SIG_DFL | libc::SIG_IGN => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
            handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(handler);
                handler(sig, info, context);
            }
            handler => {
                let handler: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                handler(sig);
            }
        }
    }
}

#[cfg(test)]
mod tests;
