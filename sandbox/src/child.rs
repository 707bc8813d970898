//! Code that runs in the sandbox's two processes between `clone` and `execve`.
//!
//! The supervisor may be multi-threaded, so after `clone` these processes only make raw system
//! calls on data the supervisor prepared ([`Plan`]): no allocation, no locks, no Rust
//! destructors. A failing step writes a [`Record`] (stage, index, errno) to the status pipe and
//! exits; the supervisor turns it into a [`SandboxError`](crate::SandboxError).
//!
//! Layout: the supervisor clones *init* (pid 1 of the new namespaces), which builds the mount
//! tree and forks the *command* process. The command process installs Landlock and the seccomp
//! filter, hands the seccomp listener to the supervisor and execs (its `execve` is notified, so
//! it waits for the supervisor). Init
//! reaps orphans; when the command process ends, init reports its wait status and exits, and
//! the kernel kills whatever is left in the pid namespace.

use std::os::fd::RawFd;

use crate::landlock::{PathBeneath, RULE_PATH_BENEATH};
use crate::plan::Plan;
use crate::{mounts, Stage};

/// A failed step: the stage, which item of it, and the errno.
pub(crate) type Fail = (Stage, u32, i32);

/// Record kinds on the status pipe.
pub(crate) const RECORD_FAILED: u32 = 1;
pub(crate) const RECORD_EXITED: u32 = 2;
pub(crate) const RECORD_EXEC_FAILED: u32 = 3;

/// One message on the status pipe: `[kind, stage, index, value]`.
pub(crate) type Record = [u32; 4];

/// Descriptors the children use; -1 where absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildFds {
    pub(crate) go: RawFd,
    pub(crate) status: RawFd,
    pub(crate) sock: RawFd,
    pub(crate) ruleset: RawFd,
    pub(crate) stdio: [RawFd; 3],
}

/// `Err` with the current errno when a raw call returned a negative value.
pub(crate) fn check(ret: libc::c_int, stage: Stage, index: u32) -> Result<(), Fail> {
    if ret < 0 {
        Err((stage, index, nix::errno::Errno::last_raw()))
    } else {
        Ok(())
    }
}

fn stage_index(stage: Stage) -> u32 {
    Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0) as u32
}

fn write_record(fd: RawFd, record: Record) {
    // SAFETY: writes 16 bytes from a local array; a pipe write this small is atomic.
    unsafe { libc::write(fd, record.as_ptr().cast(), std::mem::size_of::<Record>()) };
}

fn fail(fds: &ChildFds, (stage, index, errno): Fail) -> ! {
    write_record(
        fds.status,
        [RECORD_FAILED, stage_index(stage), index, errno as u32],
    );
    // SAFETY: _exit never returns and runs no destructors.
    unsafe { libc::_exit(127) }
}

/// `fork` as a raw `clone`, bypassing glibc's atfork handlers and locks. Returns the child's
/// pid in the parent and 0 in the child.
pub(crate) fn raw_clone(flags: libc::c_ulong) -> libc::c_long {
    // SAFETY: without CLONE_VM and with a NULL stack the child gets a copy-on-write copy of the
    // address space and continues on its own copy of this stack, like fork.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    }
}

/// The init process: waits for the id maps, builds the mounts, forks the command, reaps.
pub(crate) fn init_main(plan: &Plan, fds: &ChildFds) -> ! {
    // The supervisor's handlers would run the supervisor's code in this copy of it, and an
    // ignored SIGCHLD would make the kernel reap the command before init can see its status.
    reset_signals();
    // SAFETY: plain prctl; the supervisor's death kills init, and with it the namespace.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let mut byte = 0u8;
    // SAFETY: reads one byte into a local.
    if unsafe { libc::read(fds.go, (&mut byte as *mut u8).cast(), 1) } != 1 {
        fail(fds, (Stage::WaitForIdMaps, 0, libc::EPIPE));
    }
    if let Err(f) = setup(plan) {
        fail(fds, f);
    }
    let pid = raw_clone(0);
    if pid < 0 {
        fail(fds, (Stage::Fork, 0, nix::errno::Errno::last_raw()));
    }
    if pid == 0 {
        command_main(plan, fds);
    }
    // SAFETY: closing init's copy so the supervisor sees EOF when the command process is done.
    unsafe { libc::close(fds.sock) };
    reap(pid as libc::pid_t, fds)
}

fn setup(plan: &Plan) -> Result<(), Fail> {
    mounts::setup(plan)?;
    if !plan.network {
        mounts::loopback_up()?;
    }
    mounts::pivot(plan)
}

/// Reaps every process until the command process ends, then reports its status and exits.
fn reap(command: libc::pid_t, fds: &ChildFds) -> ! {
    loop {
        let mut status = 0;
        // SAFETY: waits for any child, writing its status to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == command {
            write_record(fds.status, [RECORD_EXITED, 0, 0, status as u32]);
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(0) }
        }
        if pid < 0 && nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(127) }
        }
    }
}

/// The command process: the fast path's files, stdio, signals, Landlock, seccomp, listener
/// hand-over, exec.
fn command_main(plan: &Plan, fds: &ChildFds) -> ! {
    let fast = plan.fast.as_ref().filter(|f| f.install());
    if let Err(f) = prepare_command(plan, fds) {
        fail(fds, f);
    }
    // SAFETY: marks every inherited descriptor above stderr close-on-exec.
    unsafe {
        libc::close_range(
            3,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        )
    };
    let mut errno = libc::ENOENT;
    for (i, program) in plan.programs.iter().enumerate() {
        // A dynamically linked program gets the fast path's library.
        let envp = match fast {
            Some(fast) if fast.dynamic[i] => fast.envp.as_ptr(),
            _ => plan.envp.as_ptr(),
        };
        // SAFETY: program, argv and envp are NUL-terminated and outlive the call.
        unsafe { libc::execve(program.as_ptr(), plan.argv.as_ptr(), envp) };
        match nix::errno::Errno::last_raw() {
            libc::ENOENT | libc::ENOTDIR => {}
            e => errno = e,
        }
    }
    write_record(fds.status, [RECORD_EXEC_FAILED, 0, 0, errno as u32]);
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(127) }
}

fn prepare_command(plan: &Plan, fds: &ChildFds) -> Result<(), Fail> {
    reset_signals();
    for &signal in &plan.ignored_signals {
        // SAFETY: ignoring a signal is valid for every number the spec can hold but SIGKILL
        // and SIGSTOP, for which the call fails harmlessly.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    for (target, &fd) in fds.stdio.iter().enumerate() {
        if fd >= 0 {
            // SAFETY: duplicates a descriptor the supervisor prepared onto 0, 1 or 2.
            let ret = unsafe { libc::dup2(fd, target as libc::c_int) };
            check(ret, Stage::Stdio, target as u32)?;
        }
    }
    // SAFETY: plain prctl.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(ret, Stage::NoNewPrivs, 0)?;
    if fds.ruleset >= 0 {
        landlock(plan, fds.ruleset)?;
    }
    let listener = install_filter(plan)?;
    send_listener(fds.sock, listener)?;
    // No need to wait for the supervisor: the `execve` that follows is notified, so it waits
    // until the supervisor serves it, which it does once it has taken the listener (still open
    // here until the exec closes it) and prepared everything else.
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fds.sock) };
    Ok(())
}

/// Default dispositions and an empty mask: the supervisor (a shell) may ignore SIGINT or
/// SIGPIPE, and ignored signals survive `execve`.
fn reset_signals() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: setting a default disposition is always valid.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
    // SAFETY: an empty set is a valid mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn landlock(plan: &Plan, ruleset: RawFd) -> Result<(), Fail> {
    for (i, (path, access)) in plan.landlock_rules.iter().enumerate() {
        // SAFETY: opens a path-only descriptor, closed below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            continue; // a missing device or root simply gets no rule
        }
        let rule = PathBeneath {
            allowed_access: *access,
            parent_fd: fd,
        };
        // SAFETY: `rule` is a valid landlock_path_beneath_attr for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &rule as *const PathBeneath,
                0,
            )
        };
        let errno = nix::errno::Errno::last_raw();
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd) };
        if ret < 0 {
            return Err((Stage::Landlock, i as u32, errno));
        }
    }
    // SAFETY: restricts this process with a valid ruleset descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) };
    check(ret as libc::c_int, Stage::Landlock, u32::MAX)?;
    // SAFETY: the ruleset is no longer needed.
    unsafe { libc::close(ruleset) };
    Ok(())
}

fn install_filter(plan: &Plan) -> Result<RawFd, Fail> {
    let prog = libc::sock_fprog {
        len: plan.filter.len() as u16,
        filter: plan.filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at the plan's filter, which outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    };
    check(fd as libc::c_int, Stage::Seccomp, 0)?;
    Ok(fd as RawFd)
}

/// Tells the supervisor the number of the listener descriptor with a plain `write`: the filter
/// is already installed, and a `sendmsg` would wait for a supervisor that has no listener
/// yet. The supervisor's end of the socket passes credentials, so it learns this process's
/// pid along with the number and takes the descriptor with `pidfd_getfd`.
fn send_listener(sock: RawFd, fd: RawFd) -> Result<(), Fail> {
    let bytes = fd.to_ne_bytes();
    // SAFETY: writes 4 bytes from a local array to a socket we own.
    let ret = unsafe { libc::write(sock, bytes.as_ptr().cast(), bytes.len()) };
    check(ret as libc::c_int, Stage::SendListener, 0)
}
