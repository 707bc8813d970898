//! Unix sockets: no host socket outside the writable roots can be reached.
//!
//! A read-only bind does not stop `connect()`: a host socket (`docker.sock`, a session bus)
//! anywhere in the tree would be a way out of the sandbox, and what such a service replies is
//! no input shark could record. So `connect` (and `sendto` with an address) is performed *on
//! the command's behalf* by the supervisor: it copies the address out of the command's memory
//! once, resolves a socket path in the command's own view of the filesystem to the socket it
//! names (an `O_PATH` descriptor, symlinks resolved inside the sandbox's root), refuses it with
//! `EACCES` unless it lies beneath a writable root, and then connects a duplicate of the
//! command's socket to that very inode (through `/proc/self/fd/N`). The command cannot swap the
//! address or a path component after the check: the kernel never reads its copy again.
//! Addresses of other families are connected from the same copy. Abstract Unix sockets are
//! the sandbox's own without the network (it has its own network namespace) and refused with
//! it (the host's network namespace holds the host's: a session bus, X11).
//!
//! A host socket reached beneath a writable root would be allowed but reported, so the run is
//! never reused (its result would depend on a service's replies); in practice the overlay
//! over a writable root hides the host's listening sockets there (a connection finds no
//! listener), so only sockets the command binds itself are reachable.
//! `sendmsg`/`sendmmsg` with a socket path as destination are checked the same way but, having
//! no single buffer to copy, let through when allowed: a racing thread of the command could
//! still swap such a datagram's destination after the check (datagram sockets only; a
//! connection always goes through `connect`).
//!
//! Each call is served on a thread of its own, since a connect may block.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::memory::read_bytes;
use super::paths::absolute;

/// The socket calls the filter sends to the supervisor.
pub(crate) const SOCKET_CALLS: [i64; 4] = [
    libc::SYS_connect,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
];

/// Largest datagram copied for a `sendto` performed on the command's behalf.
const MAX_DATAGRAM: usize = 1 << 20;

/// Where sockets may be reached, and what was reached.
#[derive(Debug, Clone)]
pub(crate) struct SocketGuard {
    roots: Arc<Vec<PathBuf>>,
    /// The command shares the host's network namespace, where the host's abstract sockets
    /// live.
    network: bool,
    /// Host sockets the command connected or sent to.
    pub(crate) services: Arc<Mutex<Vec<PathBuf>>>,
}

/// The answer to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Let the call go ahead.
    Continue,
    /// The call's result: a value or, if negative, `-errno`.
    Done(i64),
}

impl SocketGuard {
    pub(crate) fn new(roots: Vec<PathBuf>, network: bool) -> SocketGuard {
        SocketGuard {
            roots: Arc::new(roots),
            network,
            services: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Serves one socket notification on a thread of its own, answering on `listener`.
    pub(crate) fn serve(&self, listener: &OwnedFd, notif: libc::seccomp_notif) {
        let refused = Reply::Done(-(libc::EAGAIN as i64));
        let Ok(dup) = listener.try_clone() else {
            return respond(listener, notif.id, refused);
        };
        let guard = self.clone();
        let spawned = std::thread::Builder::new()
            .name("shark-socket".into())
            .spawn(move || {
                let reply = guard.decide(&notif);
                respond(&dup, notif.id, reply);
            });
        // No thread: refuse rather than let an unchecked call through.
        if spawned.is_err() {
            respond(listener, notif.id, refused);
        }
    }

    fn decide(&self, notif: &libc::seccomp_notif) -> Reply {
        let tid = notif.pid;
        let a = notif.data.args;
        match notif.data.nr as i64 {
            libc::SYS_connect => self.connect(tid, a[0] as RawFd, a[1], a[2] as usize),
            libc::SYS_sendto => self.sendto(tid, &a),
            libc::SYS_sendmsg => self.check_messages(tid, a[1], 1),
            libc::SYS_sendmmsg => self.check_messages(tid, a[1], (a[2] as usize).min(1024)),
            _ => Reply::Continue,
        }
    }

    /// `connect(fd, addr, len)`, performed on a duplicate of the command's socket.
    fn connect(&self, tid: u32, fd: RawFd, addr: u64, len: usize) -> Reply {
        let Some(bytes) = read_addr(tid, addr, len) else {
            return Reply::Done(-(libc::EFAULT as i64));
        };
        let sock = match socket_of(tid, fd) {
            Ok(sock) => sock,
            Err(errno) => return Reply::Done(-(errno as i64)),
        };
        let target = match self.target(tid, &bytes) {
            Ok(target) => target,
            Err(errno) => return Reply::Done(-(errno as i64)),
        };
        let addr = target
            .as_ref()
            .map_or(bytes.as_slice(), |t| t.addr.as_slice());
        // SAFETY: `addr` is a sockaddr of the length passed, alive for the call.
        let ret = unsafe {
            libc::connect(
                sock.as_raw_fd(),
                addr.as_ptr().cast(),
                addr.len() as libc::socklen_t,
            )
        };
        let reply = result(ret as i64);
        if ret == 0 || nix::errno::Errno::last() == nix::errno::Errno::EINPROGRESS {
            self.reached(target.as_ref());
        }
        reply
    }

    /// `sendto(fd, buf, len, flags, addr, addrlen)` with an address, performed on the
    /// command's behalf from a copy of the datagram.
    fn sendto(&self, tid: u32, a: &[u64; 6]) -> Reply {
        if a[4] == 0 {
            return Reply::Continue;
        }
        let Some(bytes) = read_addr(tid, a[4], a[5] as usize) else {
            return Reply::Done(-(libc::EFAULT as i64));
        };
        let target = match self.target(tid, &bytes) {
            Ok(None) => return Reply::Continue,
            Ok(Some(target)) => target,
            Err(errno) => return Reply::Done(-(errno as i64)),
        };
        let len = (a[2] as usize).min(MAX_DATAGRAM);
        let Some(data) = read_bytes(tid, a[1], len) else {
            return Reply::Done(-(libc::EFAULT as i64));
        };
        let sock = match socket_of(tid, a[0] as RawFd) {
            Ok(sock) => sock,
            Err(errno) => return Reply::Done(-(errno as i64)),
        };
        // SAFETY: `data` and the address are valid for the lengths passed.
        let ret = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                a[3] as i32,
                target.addr.as_ptr().cast(),
                target.addr.len() as libc::socklen_t,
            )
        };
        let reply = result(ret as i64);
        if ret >= 0 {
            self.reached(Some(&target));
        }
        reply
    }

    /// `sendmsg`/`sendmmsg`: each message's destination, if it names a socket path, must be
    /// beneath a writable root.
    fn check_messages(&self, tid: u32, msgs: u64, count: usize) -> Reply {
        // struct msghdr is 56 bytes; in mmsghdr it is followed by a 4-byte length and padding.
        let stride = if count > 1 { 64 } else { 56 };
        for i in 0..count.max(1) {
            let Some(hdr) = read_bytes(tid, msgs + (i * stride) as u64, 16) else {
                return Reply::Done(-(libc::EFAULT as i64));
            };
            let name = u64::from_ne_bytes(hdr[0..8].try_into().unwrap_or_default());
            let len = u32::from_ne_bytes(hdr[8..12].try_into().unwrap_or_default());
            if name == 0 {
                continue;
            }
            let Some(bytes) = read_addr(tid, name, len as usize) else {
                return Reply::Done(-(libc::EFAULT as i64));
            };
            if let Err(errno) = self.target(tid, &bytes) {
                return Reply::Done(-(errno as i64));
            }
        }
        Reply::Continue
    }

    /// For a socket path address: the checked target (`EACCES` outside the roots, or the
    /// lookup's errno). `None` for other addresses.
    fn target(&self, tid: u32, addr: &[u8]) -> Result<Option<Target>, i32> {
        let family = addr.get(..2).map(|f| u16::from_ne_bytes([f[0], f[1]]));
        if family != Some(libc::AF_UNIX as u16) || addr.len() <= 2 {
            return Ok(None); // another family, or an unnamed socket
        }
        if addr[2] == 0 {
            // An abstract socket: in the sandbox's own network namespace only its own; in the
            // host's, the host's services (performed here, the call would also escape the
            // Landlock scope that keeps the command from them).
            return match self.network {
                true => Err(libc::EPERM),
                false => Ok(None),
            };
        }
        let raw = &addr[2..];
        let raw = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        let path = absolute(tid, libc::AT_FDCWD, raw, false).ok_or(libc::ENOENT)?;
        let pin = pin_in_root(tid, &path)?;
        let reached = std::fs::read_link(format!("/proc/self/fd/{}", pin.as_raw_fd()))
            .map_err(|_| libc::ENOENT)?;
        if !self.roots.iter().any(|r| reached.starts_with(r)) {
            return Err(libc::EACCES);
        }
        let host = is_host_socket(&reached, &pin).then_some(reached);
        let link = format!("/proc/self/fd/{}", pin.as_raw_fd());
        Ok(Some(Target {
            addr: sockaddr_un(link.as_bytes()),
            host,
            _pin: pin,
        }))
    }

    /// Notes that the command reached the host's socket at `path`.
    fn reached(&self, target: Option<&Target>) {
        let Some(path) = target.and_then(|t| t.host.clone()) else {
            return;
        };
        let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        if !services.contains(&path) {
            services.push(path);
        }
    }
}

/// A socket path resolved and pinned, with the address that names the pinned inode.
struct Target {
    addr: Vec<u8>,
    /// The host path, when the socket is the host's.
    host: Option<PathBuf>,
    _pin: OwnedFd,
}

/// `O_PATH` descriptor of `path` as thread `tid` sees it: resolved inside its root, so a
/// symlink there cannot lead outside.
fn pin_in_root(tid: u32, path: &Path) -> Result<OwnedFd, i32> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        format!("/proc/{tid}/root").as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.raw_os_error())?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    rustix::fs::openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .map_err(|e| e.raw_os_error())
}

/// Whether the socket `pin` (reached at `path` in the sandbox) is the host's: the same inode
/// is at that path outside the sandbox (a socket the command bound itself is only in its
/// overlay).
fn is_host_socket(path: &Path, pin: &OwnedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(host) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let Ok(inside) = std::fs::metadata(format!("/proc/self/fd/{}", pin.as_raw_fd())) else {
        return false;
    };
    host.ino() == inside.ino() && std::os::unix::fs::FileTypeExt::is_socket(&host.file_type())
}

/// A `sockaddr_un` for the socket path `path`.
fn sockaddr_un(path: &[u8]) -> Vec<u8> {
    let mut addr = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    addr.extend_from_slice(path);
    addr.push(0);
    addr
}

/// Reads an address of `len` bytes (at most a `sockaddr_storage`).
fn read_addr(tid: u32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let len = len.min(std::mem::size_of::<libc::sockaddr_storage>());
    read_bytes(tid, addr, len)
}

/// A duplicate of thread `tid`'s descriptor `fd` (same open socket), or the errno.
fn socket_of(tid: u32, fd: RawFd) -> Result<OwnedFd, i32> {
    // SAFETY: plain system calls; each returned descriptor is checked and then owned.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, tid as libc::pid_t, 0);
        if pidfd < 0 {
            return Err(libc::EBADF);
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as RawFd);
        let dup = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if dup < 0 {
            return Err(nix::errno::Errno::last_raw());
        }
        Ok(OwnedFd::from_raw_fd(dup as RawFd))
    }
}

fn result(ret: i64) -> Reply {
    if ret < 0 {
        Reply::Done(-(nix::errno::Errno::last_raw() as i64))
    } else {
        Reply::Done(ret)
    }
}

/// Sends the answer to notification `id`.
pub(crate) fn respond(listener: &OwnedFd, id: u64, reply: Reply) {
    let resp = match reply {
        Reply::Continue => libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        },
        Reply::Done(v) if v < 0 => libc::seccomp_notif_resp {
            id,
            val: 0,
            error: v as i32,
            flags: 0,
        },
        Reply::Done(v) => libc::seccomp_notif_resp {
            id,
            val: v,
            error: 0,
            flags: 0,
        },
    };
    // SAFETY: SEND reads the response; an error only means the tracee is gone.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses() {
        let a = sockaddr_un(b"/proc/self/fd/7");
        assert_eq!(&a[..2], &(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(&a[2..], b"/proc/self/fd/7\0");
    }
}
