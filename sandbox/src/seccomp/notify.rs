//! The supervisor's side of seccomp user notification: receive each traced call, record the
//! paths it names, let it continue.
//!
//! The loop is the hot path of every traced command: per notification it does `RECV`, one
//! `process_vm_readv` per path (plus a `readlink` of the cwd or dirfd for relative paths) and
//! `SEND`, and a `poll` first on kernels older than 6.6. Normalisation and deduplication happen
//! once, after the run.
//!
//! With the fast path ([`super::fast`]), each notification takes its number from the global
//! sequence the preloaded library also numbers its accesses with, and the library's ring is
//! read as notifications come and once more at the end; the two are merged in sequence order.
//! The library names processes by their pid in the sandbox: the supervisor learns which host
//! process that is at each exec and at the call a forked process announces itself with.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::fast::{ANNOUNCE_FD, DIR as FAST_DIR};
use super::memory::{read_argv, read_cstr, read_u64, PATH_MAX};
use super::paths::{absolute, Normalizer};
use super::shared::{canonical, Entry, Shared};
use super::syscalls::{decode, open_kind, Call, PathArg};
use crate::{Access, AccessKind, Fingerprint, Process, SandboxError, TraceStats};

const SYNC_WAKE_UP: u64 = 1;

/// What the tracer saw.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) accesses: Vec<Access>,
    pub(crate) processes: Vec<Process>,
    pub(crate) terminal_input: bool,
    pub(crate) stats: TraceStats,
    pub(crate) append_bases: HashMap<PathBuf, u64>,
}

/// Asks the kernel to wake the supervisor on the tracee's CPU (a large win for the round trip);
/// harmless to skip on kernels without it. Returns whether the kernel took it.
pub(crate) fn set_sync_wake_up(listener: &OwnedFd) -> bool {
    // SAFETY: the ioctl reads a u64 flags value we pass by value.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SYNC_WAKE_UP,
        )
    };
    ret == 0
}

/// Serves notifications until every traced process is gone.
///
/// Per notification: `RECV`, the reads of the tracee's memory, `SEND`. With `blocking_recv`
/// (kernels with synchronous wake-ups, 6.6+, whose `RECV` returns once the filter has no users
/// left) there is no `poll` before each `RECV`; otherwise `poll` tells when the tree is gone.
/// What was read is kept only if `SEND` succeeds: the tracee was still waiting, so its pid
/// cannot have been reused while we read its memory (this replaces an `ID_VALID` call).
pub(crate) fn trace(
    listener: &OwnedFd,
    blocking_recv: bool,
    sockets: &super::sockets::SocketGuard,
    shared: Option<Shared>,
    pid_ns: Option<OwnedFd>,
    mapped: &[crate::MappedRoot],
) -> Result<Trace, SandboxError> {
    let mut tracer = Tracer {
        shared,
        pid_ns,
        mapped: mapped.to_vec(),
        ..Tracer::default()
    };
    let fd = listener.as_raw_fd();
    let sys = |op| move |source| SandboxError::Sys { op, source };
    loop {
        if !blocking_recv
            && !readable(listener, PollTimeout::NONE).map_err(sys("poll the seccomp listener"))?
        {
            break;
        }
        // SAFETY: seccomp_notif is plain data; RECV requires it zeroed.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif into `notif`.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                // No notification: a tracee was killed while waiting, or nobody is left.
                Errno::ENOENT if blocking_recv => {
                    if readable(listener, PollTimeout::ZERO)
                        .map_err(sys("poll the seccomp listener"))?
                    {
                        continue;
                    }
                    if hung_up(listener) {
                        break;
                    }
                    continue;
                }
                Errno::ENOENT => continue,
                source => return Err(sys("receive a seccomp notification")(source)),
            }
        }
        tracer.notifications += 1;
        if super::sockets::SOCKET_CALLS.contains(&(notif.data.nr as i64)) {
            sockets.serve(listener, notif);
            continue;
        }
        let seq = tracer.next_seq();
        let mark = tracer.mark();
        tracer.handle(&notif, seq);
        let resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: SEND reads the response.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) } < 0 {
            // ENOENT: the tracee died meanwhile, or a signal interrupted its call (which may
            // be restarted, and then is notified again).
            tracer.rollback(mark);
        } else {
            tracer.publish();
        }
    }
    Ok(tracer.finish())
}

/// Whether a notification is waiting (within `timeout`); false once no process uses the
/// filter any more and none is waiting.
fn readable(listener: &OwnedFd, timeout: PollTimeout) -> Result<bool, Errno> {
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {
                let revents = fds[0].revents().unwrap_or(PollFlags::empty());
                return Ok(revents.contains(PollFlags::POLLIN));
            }
        }
    }
}

/// Whether no process uses the filter any more.
fn hung_up(listener: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::ZERO);
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
}

/// Whether thread `tid` (stopped in a notification, so its id cannot be reused meanwhile) is
/// its process's main thread, whose id is the process's: `pidfd_open` without `PIDFD_THREAD`
/// accepts only those. One system call, against an open and a read of `/proc/TID/status`
/// (which the kernel formats field by field) for every process a command starts; any failure
/// (an older kernel) sends the caller to `status`.
fn leads_its_group(tid: u32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid as libc::pid_t, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the descriptor was just returned to us and is closed once.
    unsafe { libc::close(fd as libc::c_int) };
    true
}

/// One access as recorded on the hot path, before normalisation.
#[derive(Debug)]
struct Raw {
    /// Its number in the global sequence.
    seq: u64,
    pid: u32,
    kind: AccessKind,
    path: PathBuf,
    fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Default)]
struct Tracer {
    raw: Vec<Raw>,
    processes: Vec<Process>,
    tgids: HashMap<u32, u32>,
    buf: Vec<u8>,
    terminal_input: bool,
    /// Paths (as named) already fingerprinted: only the first access takes one.
    fingerprinted: HashSet<PathBuf>,
    /// Some process changed its root: absolute paths are then resolved against each
    /// process's root (a readlink per call, paid only after a `chroot`).
    chrooted: bool,
    /// The memory shared with the fast path's library, if it is on.
    shared: Option<Shared>,
    /// The sandbox's pid namespace, to learn a process's pid there (see [`Tracer::announce`]).
    pid_ns: Option<OwnedFd>,
    /// Paths (by components) this notification fingerprinted, for [`Tracer::publish`].
    unpublished: Vec<Vec<u8>>,
    /// What the library recorded, as read from its ring.
    fast: Vec<Entry>,
    /// (sequence number, pid in the sandbox, host pid): who a sandbox pid was from then on.
    announces: Vec<(u64, u32, u32)>,
    /// The sequence when there is no shared memory.
    local_seq: u64,
    notifications: u64,
    /// Folders seen at another path inside: paths under them are recorded (and
    /// fingerprinted) by host path.
    mapped: Vec<crate::MappedRoot>,
    /// Paths (host) of regular files a process opened to append to, tried once each, with
    /// the size the file had when the sandbox took its copy (see [`copy_up_for_append`]).
    append_bases: HashMap<PathBuf, u64>,
    append_tried: HashSet<PathBuf>,
}

impl Tracer {
    /// Where the records stand, for [`Tracer::rollback`].
    fn mark(&self) -> (usize, usize) {
        (self.raw.len(), self.processes.len())
    }

    /// Forgets what was recorded since `mark`, and that its paths were fingerprinted: the
    /// call did not happen (yet).
    fn rollback(&mut self, (raw, processes): (usize, usize)) {
        for dropped in self.raw.drain(raw..) {
            if dropped.fingerprint.is_some() {
                self.fingerprinted.remove(&dropped.path);
            }
        }
        self.processes.truncate(processes);
        self.unpublished.clear();
    }

    /// Tells the library which paths the call just let go was the first to fingerprint.
    fn publish(&mut self) {
        if let Some(shared) = &mut self.shared {
            for path in self.unpublished.drain(..) {
                shared.insert(&path);
            }
        }
    }

    /// The next number of the global sequence.
    fn next_seq(&mut self) -> u64 {
        match &self.shared {
            Some(shared) => shared.next_seq(),
            None => {
                self.local_seq += 1;
                self.local_seq
            }
        }
    }

    /// Reads what the library committed to its ring (with `all`, everything left).
    fn drain(&mut self, all: bool) {
        if let Some(shared) = &mut self.shared {
            shared.drain(all, &mut self.fast);
        }
    }

    /// Notes which host process the process of thread `tid` is, by its pid in the sandbox,
    /// from sequence number `seq` on.
    fn announce(&mut self, tid: u32, seq: u64) {
        // One ioctl on the sandbox's pid namespace (newer kernels), else its status file. The
        // thread may be a reused id: its process is looked up afresh.
        self.tgids.remove(&tid);
        let found = match self.pid_ns.as_ref().map(|ns| tgid_in(ns, tid)) {
            Some(Ok(sandbox_pid)) => Some((self.tgid(tid), sandbox_pid)),
            Some(Err(unsupported)) => {
                if unsupported {
                    self.pid_ns = None;
                }
                status(tid)
            }
            None => status(tid),
        };
        if let Some((tgid, sandbox_pid)) = found {
            self.tgids.insert(tid, tgid);
            self.announces.push((seq, sandbox_pid, tgid));
        }
    }

    fn handle(&mut self, notif: &libc::seccomp_notif, seq: u64) {
        self.drain(false);
        let tid = notif.pid;
        let nr = notif.data.nr as i64;
        let args: [u64; 6] = notif.data.args;
        if super::filter::STD_READS.contains(&nr) {
            if !self.terminal_input {
                self.terminal_input = is_terminal(tid, args[0] as u32);
            }
            return;
        }
        let fast = self.shared.is_some();
        // The library's announcement names no path: a call with one is an ordinary check of
        // it (with an absolute path the kernel ignores the descriptor).
        if fast && nr == libc::SYS_faccessat2 && args[0] as i32 == ANNOUNCE_FD && args[1] == 0 {
            return self.announce(tid, seq);
        }
        let (paths, argv) = match decode(nr, &args) {
            Call::Paths(paths) => (paths, None),
            Call::OpenHow { mut arg, how } => {
                arg.kind = open_kind(read_u64(tid, how).unwrap_or(0));
                ([Some(arg), None], None)
            }
            Call::Exec { arg, argv } => {
                if fast {
                    self.announce(tid, seq);
                }
                ([Some(arg), None], Some(argv))
            }
            Call::Chroot(arg) => {
                self.chrooted = true;
                if let Some(shared) = &self.shared {
                    shared.set_chrooted();
                }
                ([Some(arg), None], None)
            }
            Call::Nothing => return,
        };
        let mut found: [Option<(AccessKind, PathBuf)>; 2] = [None, None];
        for (slot, arg) in found.iter_mut().zip(paths) {
            *slot = arg.and_then(|arg| self.path(tid, arg));
        }
        let argv = argv.map(|addr| read_argv(tid, addr));
        let pid = self.tgid(tid);
        if let (Some(argv), Some((_, path))) = (argv, &found[0]) {
            self.exec(seq, tid, pid, path, argv);
        }
        for (kind, path) in found.into_iter().flatten() {
            self.push(seq, pid, kind, path);
        }
    }

    /// Records one access, fingerprinting the path if this is the first access to it.
    fn push(&mut self, seq: u64, pid: u32, kind: AccessKind, path: PathBuf) {
        if self.shared.is_some() && path.starts_with(FAST_DIR) {
            return; // the sandbox's own files: the loader reading the library
        }
        let fingerprint = if is_pseudo(&path) || self.fingerprinted.contains(&path) {
            None
        } else {
            self.fingerprinted.insert(path.clone());
            let fingerprint = Fingerprint::of(&path);
            // A path the command would name under a mapped root is not its host path there:
            // the library, which sees names as the command does, must not take it as known.
            if self.shared.is_some() && !self.under_mapped(&path) {
                self.unpublished.push(canonical(&path));
            }
            Some(fingerprint)
        };
        self.raw.push(Raw {
            seq,
            pid,
            kind,
            path,
            fingerprint,
        });
    }

    /// Whether `path`, as the command names it, lies under a mapped root's inside path.
    fn under_mapped(&self, path: &Path) -> bool {
        self.mapped.iter().any(|m| path.starts_with(&m.inside))
    }

    fn path(&mut self, tid: u32, arg: PathArg) -> Option<(AccessKind, PathBuf)> {
        self.buf.clear();
        if arg.addr != 0 && !read_cstr(tid, arg.addr, PATH_MAX, &mut self.buf) {
            return None;
        }
        let path = absolute(tid, arg.dirfd, &self.buf, self.chrooted)?;
        let host = crate::mapped::to_host(&path, &self.mapped);
        if arg.kind == AccessKind::Append
            && !self.chrooted
            && self.append_tried.insert(host.clone())
        {
            if let Some(size) = copy_up_for_append(tid, &path) {
                self.append_bases.insert(host.clone(), size);
            }
        }
        Some((arg.kind, host))
    }

    /// Records a process if the exec target is an executable file in its view, and the
    /// interpreter of a `#!` script (the kernel opens it without a system call we see).
    fn exec(&mut self, seq: u64, tid: u32, pid: u32, path: &Path, argv: Vec<Vec<u8>>) {
        let mut inside = PathBuf::from(format!("/proc/{tid}/root"));
        inside.push(path.strip_prefix("/").unwrap_or(path));
        let Ok(mut file) = std::fs::File::open(&inside) else {
            return;
        };
        let executable = file.metadata().map(|m| m.is_file() && mode_executable(&m));
        if !executable.unwrap_or(false) {
            return;
        }
        let mut head = [0u8; 256];
        let n = file.read(&mut head).unwrap_or(0);
        if let Some(interpreter) = shebang(&head[..n]) {
            self.push(seq, pid, AccessKind::Exec, interpreter);
        }
        let argv = argv.into_iter().map(OsString::from_vec).collect();
        self.processes.push(Process { pid, argv });
    }

    /// The thread group (process) id of thread `tid`.
    fn tgid(&mut self, tid: u32) -> u32 {
        *self.tgids.entry(tid).or_insert_with(|| {
            if leads_its_group(tid) {
                return tid;
            }
            status(tid).map_or(tid, |(tgid, _)| tgid)
        })
    }

    /// Every access in sequence order: the supervisor's and the library's, the latter named
    /// by host pid.
    fn merged(&mut self) -> Vec<Raw> {
        self.drain(true);
        let mut raw = std::mem::take(&mut self.raw);
        if self.fast.is_empty() {
            return raw;
        }
        let mut hosts: HashMap<u32, Vec<(u64, u32)>> = HashMap::new();
        for &(seq, sandbox_pid, host) in &self.announces {
            hosts.entry(sandbox_pid).or_default().push((seq, host));
        }
        for entry in std::mem::take(&mut self.fast) {
            if entry.path.starts_with(FAST_DIR) {
                continue; // the sandbox's own files, as in `push`
            }
            // Who had this pid when the access was made: the last announcement before it.
            let pid = hosts
                .get(&entry.pid)
                .and_then(|h| h.iter().rev().find(|(seq, _)| *seq < entry.seq))
                .map_or(entry.pid, |&(_, host)| host);
            raw.push(Raw {
                seq: entry.seq,
                pid,
                kind: entry.kind,
                // The library records no path under a mapped root (see `FastPlan::build`
                // and `push`); were it to, the host path is the one to record.
                path: crate::mapped::to_host(&entry.path, &self.mapped),
                fingerprint: entry.fingerprint,
            });
        }
        raw.sort_by_key(|r| r.seq);
        raw
    }

    fn finish(mut self) -> Trace {
        let fast_path = {
            self.drain(true);
            self.fast.len() as u64
        };
        let damaged = self.shared.as_ref().is_some_and(|s| s.damaged());
        let merged = self.merged();
        let mut normalizer = Normalizer::default();
        let mut seen = HashSet::new();
        let mut accesses = Vec::new();
        let mut fingerprinted = HashSet::new();
        for raw in merged {
            let path = normalizer.normalize(&raw.path);
            if !seen.insert((path.clone(), raw.kind)) {
                continue;
            }
            // Two spellings of one path: the first fingerprint taken is the one that counts.
            let fingerprint = match raw.fingerprint {
                Some(f) if fingerprinted.insert(path.clone()) => Some(f),
                _ => None,
            };
            accesses.push(Access {
                path,
                kind: raw.kind,
                pid: raw.pid,
                fingerprint,
            });
        }
        // Processes of a pipeline exec concurrently; pid order is their fork order, which is
        // deterministic. The sort is stable, so a process that execs twice keeps its order.
        let mut processes = self.processes;
        processes.sort_by_key(|p| p.pid);
        let opened_terminal = accesses
            .iter()
            .any(|a| a.kind == AccessKind::Read && is_terminal_path(&a.path));
        // One file reached by two spellings was copied at the first: the smallest size is the
        // one from before the run's own appends.
        let mut append_bases: HashMap<PathBuf, u64> = HashMap::new();
        for (p, size) in &self.append_bases {
            let base = append_bases.entry(normalizer.normalize(p)).or_insert(*size);
            *base = (*base).min(*size);
        }
        Trace {
            accesses,
            processes,
            terminal_input: self.terminal_input || opened_terminal,
            stats: TraceStats {
                notifications: self.notifications,
                fast_path,
                damaged,
            },
            append_bases,
        }
    }
}

/// The pid, in the pid namespace `ns`, of the process of thread `tid` (named in ours).
/// `Err(true)` when the kernel has no such ioctl, `Err(false)` when it found no such thread.
fn tgid_in(ns: &OwnedFd, tid: u32) -> Result<u32, bool> {
    // NS_GET_TGID_IN_PIDNS, _IOR(0xb7, 0x9, int): include/uapi/linux/nsfs.h.
    const NS_GET_TGID_IN_PIDNS: libc::c_ulong = 0x8004_b709;
    // SAFETY: the ioctl takes the pid by value and returns the translated one.
    let pid = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_TGID_IN_PIDNS, tid as libc::c_ulong) };
    match u32::try_from(pid) {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(matches!(Errno::last(), Errno::ENOTTY | Errno::EINVAL)),
    }
}

/// The thread group id of thread `tid`, and its pid in the innermost pid namespace.
fn status(tid: u32) -> Option<(u32, u32)> {
    // "Tgid:" is the fourth line and "NStgid:" about the twelfth; a long "Groups:" line may
    // push it further.
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(format!("/proc/{tid}/status"))
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().last()?.parse().ok())
    };
    let tgid = field("Tgid:")?;
    Some((tgid, field("NStgid:").unwrap_or(tgid)))
}

/// Before a process opens the regular file `path` (as it sees it) to append to it: opens it
/// for appending in the process's view first, so that the sandbox's copy of it is taken now,
/// while the process waits, and returns that copy's size. What the run appended is then
/// exactly what lies past it, whatever another process appended to the real file meanwhile.
/// `Some(0)` when nothing is there yet; `None` when it is not a regular file or cannot be
/// opened (the process's own open then fails too, or copies the file itself).
fn copy_up_for_append(tid: u32, path: &Path) -> Option<u64> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        format!("/proc/{tid}/root").as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let rel = path.strip_prefix("/").ok()?;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let at = match openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    ) {
        Ok(at) => at,
        // Not there yet: everything the run's copy will hold is its own.
        Err(rustix::io::Errno::NOENT) => return Some(0),
        Err(_) => return None,
    };
    // Only a regular file: opening a device or a fifo for writing could have effects.
    if !rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&at).ok()?.st_mode).is_file() {
        return None;
    }
    let flags =
        OFlags::WRONLY | OFlags::APPEND | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(
        format!("/proc/self/fd/{}", at.as_raw_fd()).as_str(),
        flags,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    rustix::fs::FileType::from_raw_mode(st.st_mode)
        .is_file()
        .then(|| u64::try_from(st.st_size).unwrap_or(0))
}

/// Paths whose state is not the user's data: kernel interfaces and devices.
fn is_pseudo(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    [&b"/proc/"[..], b"/sys/", b"/dev/"]
        .iter()
        .any(|p| bytes.starts_with(p))
}

/// Whether descriptor `fd` of thread `tid` is a terminal.
fn is_terminal(tid: u32, fd: u32) -> bool {
    std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).is_ok_and(|p| is_terminal_path(&p))
}

/// Whether a path names a terminal device: a pty, the controlling terminal, a console.
fn is_terminal_path(path: &Path) -> bool {
    path.starts_with("/dev/pts")
        && path != Path::new("/dev/pts/ptmx")
        && path != Path::new("/dev/pts")
        || path == Path::new("/dev/tty")
        || path == Path::new("/dev/console")
        || path
            .to_str()
            .and_then(|p| p.strip_prefix("/dev/tty"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn mode_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// The interpreter named by a `#!` line, if it is an absolute path.
fn shebang(head: &[u8]) -> Option<PathBuf> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n')?];
    let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
    let rest = &line[start..];
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(rest.len());
    let interpreter = PathBuf::from(OsString::from_vec(rest[..end].to_vec()));
    interpreter.is_absolute().then_some(interpreter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shebang_lines() {
        assert_eq!(shebang(b"#!/bin/sh\necho"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(
            shebang(b"#! /usr/bin/env python3\n"),
            Some(PathBuf::from("/usr/bin/env"))
        );
        assert_eq!(shebang(b"\x7fELF"), None);
        assert_eq!(shebang(b"#!sh\n"), None);
    }

    #[test]
    fn terminal_paths() {
        for p in ["/dev/pts/3", "/dev/tty", "/dev/tty1", "/dev/console"] {
            assert!(is_terminal_path(Path::new(p)), "{p}");
        }
        for p in [
            "/dev/null",
            "/dev/pts/ptmx",
            "/dev/ttyS",
            "/tmp/dev/pts/1",
            "pipe:[12]",
        ] {
            assert!(!is_terminal_path(Path::new(p)), "{p}");
        }
    }
}
