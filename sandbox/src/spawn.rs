//! The supervisor: clones the sandbox, writes its id maps, serves the tracer, waits, and turns
//! what happened into a [`Report`].

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::child::{self, ChildFds, Record, RECORD_EXEC_FAILED, RECORD_EXITED, RECORD_FAILED};
use crate::plan::{self, Plan};
use crate::scratch::Scratch;
use crate::seccomp::notify;
use crate::{changes, landlock, mapped, Report, Rusage, SandboxError, Spec, Stage, Status, Stdio};

fn sys(op: &'static str) -> impl FnOnce(Errno) -> SandboxError {
    move |source| SandboxError::Sys { op, source }
}

/// Runs `spec` in the sandbox and reports what it did. Blocks until the command and everything
/// it started are gone. Safe to call from a multi-threaded program.
pub fn run(mut spec: Spec) -> Result<Report, SandboxError> {
    let mut roots = plan::writable_roots(&spec)?;
    let mapped = mapped::resolve(&spec)?;
    roots.extend(mapped.iter().map(|m| m.host.clone()));
    let scratch = Scratch::create(&spec.scratch_dir, &roots)?;
    let (ruleset, landlock) = landlock::prepare();
    let abi = ruleset.as_ref().map(|r| r.1);
    let plan = Plan::build(&spec, &roots, &mapped, &scratch, abi)?;
    let take = std::mem::take;
    let stdio = [
        stdio_fd(take(&mut spec.stdin))?,
        stdio_fd(take(&mut spec.stdout))?,
        stdio_fd(take(&mut spec.stderr))?,
    ];
    let started = Instant::now();
    let mut init = Init::spawn(&plan, &stdio, ruleset.as_ref().map(|r| &r.0), spec.network)?;
    drop(stdio);
    let Some(listener) = receive_listener(&init.sock)? else {
        let (wait_status, _) = init.wait()?;
        return Err(setup_error(&init.records()?, wait_status, &spec, &roots));
    };
    // The command process sends the listener once init has built and entered the new root, and
    // then execs: its execve waits in the listener for `trace`.
    let private_shm = open_private_shm(init.pid);
    let sync_wake_up = notify::set_sync_wake_up(&listener);
    // The fast path's shared memory, which the command process created before sending it.
    let shared = match (&plan.fast, &private_shm) {
        (Some(_), Some(shm)) => crate::seccomp::fast::open_shared(shm),
        _ => None,
    };
    let sockets = crate::seccomp::sockets::SocketGuard::new(roots.clone(), spec.network);
    // The sandbox's pid namespace: the fast path's library names processes by their pid there.
    let pid_ns = shared.as_ref().and_then(|_| {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let path = format!("/proc/{}/ns/pid", init.pid);
        nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty()).ok()
    });
    let trace = notify::trace(&listener, sync_wake_up, &sockets, shared, pid_ns, &mapped)?;
    drop(listener);
    let (wait_status, rusage) = init.wait()?;
    let wall = started.elapsed();
    let records = init.records()?;
    // A failed exec also ends the command process (status 127), so its record wins over the
    // exit record: the caller must learn that the program never ran.
    if records.iter().any(|r| r[0] != RECORD_EXITED) {
        return Err(setup_error(&records, wait_status, &spec, &roots));
    }
    let status = match records.iter().find(|r| r[0] == RECORD_EXITED) {
        Some(r) => decode_status(r[3] as i32),
        None => decode_status(wait_status),
    };
    let changes = changes::collect(&roots, &scratch)?;
    let services = {
        let mut contacted = sockets.services.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *contacted)
    };
    Ok(Report {
        status,
        rusage,
        wall,
        accesses: trace.accesses,
        processes: trace.processes,
        changes,
        landlock,
        roots,
        services,
        terminal_input: trace.terminal_input,
        stats: trace.stats,
        append_bases: trace.append_bases,
        _upper_layers: Some(scratch),
        private_shm,
    })
}

/// The private `/dev/shm` of the sandbox whose init is `pid`, as a directory descriptor.
fn open_private_shm(pid: libc::pid_t) -> Option<OwnedFd> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let path = format!("/proc/{pid}/root/dev/shm");
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    open(path.as_str(), flags, Mode::empty()).ok()
}

/// A descriptor for one stdio stream, duplicated above 10 so the command process can `dup2` it
/// onto 0..2 in any order; `None` to inherit.
fn stdio_fd(stdio: Stdio) -> Result<Option<OwnedFd>, SandboxError> {
    let fd = match stdio {
        Stdio::Inherit => return Ok(None),
        Stdio::Null => nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(sys("open /dev/null"))?,
        Stdio::Fd(fd) => fd,
    };
    let high = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(sys("duplicate a stdio descriptor"))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a fresh descriptor that we now own.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(high) }))
}

fn decode_status(status: i32) -> Status {
    if libc::WIFSIGNALED(status) {
        Status::Signaled(libc::WTERMSIG(status))
    } else {
        Status::Exited(libc::WEXITSTATUS(status))
    }
}

fn setup_error(
    records: &[Record],
    wait_status: i32,
    spec: &Spec,
    roots: &[PathBuf],
) -> SandboxError {
    for r in records {
        if r[0] == RECORD_EXEC_FAILED {
            let source = Errno::from_raw(r[3] as i32);
            return SandboxError::Exec {
                program: spec.argv[0].clone(),
                source,
            };
        }
        if r[0] == RECORD_FAILED {
            let stage = Stage::ALL
                .get(r[1] as usize)
                .copied()
                .unwrap_or(Stage::Fork);
            let path = stage_path(stage, r[2] as usize, spec, roots);
            return SandboxError::Setup {
                stage,
                path,
                source: Errno::from_raw(r[3] as i32),
            };
        }
    }
    let source = if libc::WIFSIGNALED(wait_status) {
        Errno::EINTR
    } else {
        Errno::EPIPE
    };
    SandboxError::Setup {
        stage: Stage::Fork,
        path: None,
        source,
    }
}

/// The path a failed stage was working on, for the error message.
fn stage_path(stage: Stage, index: usize, spec: &Spec, roots: &[PathBuf]) -> Option<PathBuf> {
    match stage {
        Stage::MountOverlay => roots.get(index).cloned(),
        Stage::BindReadOnly => spec.read_only.get(index).cloned(),
        Stage::Mask => spec
            .hidden
            .iter()
            .cloned()
            .chain(plan::MASKED.iter().map(PathBuf::from))
            .chain(plan::PROC_READ_ONLY.iter().map(PathBuf::from))
            .nth(index),
        Stage::Chdir => Some(spec.cwd.clone()),
        Stage::MountDev => Some(
            match index.checked_sub(1).and_then(|i| plan::DEVICES.get(i)) {
                Some(dev) => PathBuf::from("/dev").join(dev),
                None => PathBuf::from("/dev"),
            },
        ),
        Stage::Landlock => None,
        _ => None,
    }
}

/// The sandbox's init process, killed and reaped if dropped before `wait`.
struct Init {
    pid: libc::pid_t,
    waited: bool,
    sock: OwnedFd,
    status: OwnedFd,
}

impl Init {
    fn spawn(
        plan: &Plan,
        stdio: &[Option<OwnedFd>; 3],
        ruleset: Option<&OwnedFd>,
        network: bool,
    ) -> Result<Init, SandboxError> {
        let (go_read, go_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
        let (status_read, status_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
        let (sock, child_sock) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sys("create a socket pair"))?;
        // The command process's pid comes with its message (see `receive_listener`).
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true)
            .map_err(sys("pass credentials on the socket pair"))?;
        let raw = |fd: Option<&OwnedFd>| fd.map_or(-1, |fd| fd.as_raw_fd());
        let fds = ChildFds {
            go: go_read.as_raw_fd(),
            status: status_write.as_raw_fd(),
            sock: child_sock.as_raw_fd(),
            ruleset: raw(ruleset),
            stdio: [
                raw(stdio[0].as_ref()),
                raw(stdio[1].as_ref()),
                raw(stdio[2].as_ref()),
            ],
        };
        let parent_ends = [
            go_write.as_raw_fd(),
            status_read.as_raw_fd(),
            sock.as_raw_fd(),
        ];
        let mut flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS;
        if !network {
            flags |= libc::CLONE_NEWNET;
        }
        let pid = child::raw_clone(flags as libc::c_ulong);
        if pid == 0 {
            close_all(&parent_ends);
            child::init_main(plan, &fds);
        }
        if pid < 0 {
            let source = Errno::last();
            return Err(SandboxError::Unsupported {
                feature: crate::Feature::UserNamespaces,
                hint: crate::support::USERNS_HINT,
                source,
            });
        }
        let init = Init {
            pid: pid as libc::pid_t,
            waited: false,
            sock,
            status: status_read,
        };
        drop((go_read, status_write, child_sock));
        write_id_maps(init.pid)?;
        nix::unistd::write(&go_write, b"g").map_err(sys("start the sandbox"))?;
        Ok(init)
    }

    /// Waits for init; returns its raw wait status and the rusage of the whole tree it reaped.
    fn wait(&mut self) -> Result<(i32, Rusage), SandboxError> {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waits for our own child, writing into locals.
            let ret = unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
            if ret >= 0 {
                break;
            }
            match Errno::last() {
                Errno::EINTR => continue,
                source => {
                    return Err(SandboxError::Sys {
                        op: "wait for the sandbox",
                        source,
                    })
                }
            }
        }
        self.waited = true;
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        let rusage = Rusage {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
            max_rss_kib: usage.ru_maxrss as u64,
        };
        Ok((status, rusage))
    }

    /// Every record the children wrote; call after `wait`.
    fn records(&self) -> Result<Vec<Record>, SandboxError> {
        let mut bytes = Vec::new();
        let mut file = fs::File::from(self.status.try_clone().map_err(|e| SandboxError::Io {
            op: "read the sandbox status",
            path: PathBuf::new(),
            source: e,
        })?);
        file.read_to_end(&mut bytes)
            .map_err(|source| SandboxError::Io {
                op: "read the sandbox status",
                path: PathBuf::new(),
                source,
            })?;
        let records = bytes
            .chunks_exact(16)
            .map(|c| {
                std::array::from_fn(|i| {
                    u32::from_ne_bytes(c[4 * i..4 * i + 4].try_into().unwrap_or_default())
                })
            })
            .collect();
        Ok(records)
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn close_all(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: closing this process's copy of the supervisor's ends, in the child.
        unsafe { libc::close(fd) };
    }
}

/// Maps the caller's uid/gid to themselves (root: the whole range, so file owners stay true).
fn write_id_maps(pid: libc::pid_t) -> Result<(), SandboxError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let write = |file: &str, content: String| {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        fs::write(&path, content).map_err(|source| SandboxError::Io {
            op: "write",
            path,
            source,
        })
    };
    if uid == 0 {
        write("uid_map", "0 0 4294967295\n".into())?;
        write("gid_map", "0 0 4294967295\n".into())
    } else {
        write("uid_map", format!("{uid} {uid} 1\n"))?;
        write("setgroups", "deny\n".into())?;
        write("gid_map", format!("{gid} {gid} 1\n"))
    }
}

/// Receives the seccomp listener; `None` if the command process ended before sending it.
///
/// The command process writes the listener's descriptor number; the credentials the kernel
/// attaches (the socket passes them) name its pid in our namespace, from which the
/// descriptor is taken with `pidfd_getfd`.
fn receive_listener(sock: &OwnedFd) -> Result<Option<OwnedFd>, SandboxError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut number = [0u8; 4];
    let mut iov = [std::io::IoSliceMut::new(&mut number)];
    let mut space = nix::cmsg_space!(libc::ucred);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(sys("receive the seccomp listener"))?,
        }
    };
    if msg.bytes < 4 {
        return Ok(None);
    }
    let mut pid = None;
    for cmsg in msg.cmsgs().map_err(sys("receive the seccomp listener"))? {
        if let ControlMessageOwned::ScmCredentials(creds) = cmsg {
            pid = Some(creds.pid());
        }
    }
    let Some(pid) = pid else {
        return Err(sys("receive the seccomp listener")(Errno::EPROTO));
    };
    let fd = RawFd::from_ne_bytes(number);
    // SAFETY: plain system calls; each returned descriptor is checked, then owned.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(sys("open the command process")(Errno::last()));
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as RawFd);
        let listener = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if listener < 0 {
            return Err(sys("take the seccomp listener")(Errno::last()));
        }
        Ok(Some(OwnedFd::from_raw_fd(listener as RawFd)))
    }
}
