//! Probing the kernel features the sandbox needs, with errors that say how to enable them.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use crate::child::raw_clone;
use crate::{landlock, Feature, LandlockStatus, SandboxError};

pub(crate) const USERNS_HINT: &str = "enable unprivileged user namespaces: `sysctl -w \
    kernel.unprivileged_userns_clone=1` (Debian), `sysctl -w \
    kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 23.10+), and make sure \
    `user.max_user_namespaces` is not 0";
const OVERLAY_HINT: &str = "overlayfs inside a user namespace needs Linux 5.11 or later with the \
    overlay module loaded (`modprobe overlay`)";
const SECCOMP_HINT: &str = "seccomp user notification needs Linux 5.5 or later built with \
    CONFIG_SECCOMP_FILTER";

/// What the kernel offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// Whether Landlock can be enforced, and at which ABI.
    pub landlock: LandlockStatus,
    /// Whether the seccomp listener supports synchronous wake-ups (faster tracing).
    pub sync_wake_up: bool,
}

/// Probe stages reported by the probe child.
const PROBE_USERNS: u32 = 1;
const PROBE_OVERLAY: u32 = 2;
const PROBE_SECCOMP: u32 = 3;
const PROBE_SYNC: u32 = 4;

/// Checks user namespaces, overlayfs in a user namespace, seccomp user notification and
/// Landlock, by trying each in a short-lived child process.
pub fn check_support() -> Result<Support, SandboxError> {
    let dir = tempfile::tempdir().map_err(|source| SandboxError::Io {
        op: "create a probe directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let sub = |name: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).map(|()| path)
    };
    let dirs = ["lower", "upper", "work", "merged"].map(sub);
    let [Ok(lower), Ok(upper), Ok(work), Ok(merged)] = dirs else {
        let source = std::io::Error::other("cannot create probe directories");
        return Err(SandboxError::Io {
            op: "create probe directories in",
            path: dir.path().into(),
            source,
        });
    };
    let options = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.display(),
        upper.display(),
        work.display()
    );
    let probe = Probe {
        uid_map: CString::new(format!("{0} {0} 1", nix::unistd::geteuid())).unwrap_or_default(),
        gid_map: CString::new(format!("{0} {0} 1", nix::unistd::getegid())).unwrap_or_default(),
        merged: CString::new(merged.as_os_str().as_bytes()).unwrap_or_default(),
        options: CString::new(options).unwrap_or_default(),
    };
    let failure = probe.run()?;
    let sync_wake_up = match failure {
        None => true,
        Some((PROBE_SYNC, _)) => false,
        Some((stage, errno)) => return Err(unsupported(stage, errno)),
    };
    let landlock = landlock::prepare().1;
    Ok(Support {
        landlock,
        sync_wake_up,
    })
}

fn unsupported(stage: u32, errno: i32) -> SandboxError {
    let (feature, hint) = match stage {
        PROBE_USERNS => (Feature::UserNamespaces, USERNS_HINT),
        PROBE_OVERLAY => (Feature::OverlayInUserNamespace, OVERLAY_HINT),
        _ => (Feature::SeccompNotify, SECCOMP_HINT),
    };
    SandboxError::Unsupported {
        feature,
        hint,
        source: Errno::from_raw(errno),
    }
}

struct Probe {
    uid_map: CString,
    gid_map: CString,
    merged: CString,
    options: CString,
}

impl Probe {
    /// Runs the probe child; the first failing stage and its errno, if any.
    fn run(&self) -> Result<Option<(u32, i32)>, SandboxError> {
        let sys = |op| move |source| SandboxError::Sys { op, source };
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
        let pid = raw_clone(0);
        if pid == 0 {
            let (stage, errno) = self.child();
            let record = [stage, errno as u32];
            // SAFETY: writes a local array, then exits without running destructors.
            unsafe {
                libc::write(write.as_raw_fd(), record.as_ptr().cast(), 8);
                libc::_exit(0)
            }
        }
        if pid < 0 {
            return Err(SandboxError::Sys {
                op: "fork a probe",
                source: Errno::last(),
            });
        }
        drop(write);
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None)
            .map_err(sys("wait for the probe"))?;
        let mut record = [0u8; 8];
        let n = nix::unistd::read(&read, &mut record).map_err(sys("read the probe result"))?;
        let stage = u32::from_ne_bytes(record[..4].try_into().unwrap_or_default());
        let errno = i32::from_ne_bytes(record[4..].try_into().unwrap_or_default());
        Ok((n == 8 && stage != 0).then_some((stage, errno)))
    }

    /// In the probe child: only raw system calls on prepared data.
    fn child(&self) -> (u32, i32) {
        let last = Errno::last_raw;
        // SAFETY: raw system calls on valid, NUL-terminated strings and local buffers.
        unsafe {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) < 0 {
                return (PROBE_USERNS, last());
            }
            // Both maps, as the sandbox writes them: overlayfs refuses to create its work
            // directory for a caller whose gid has no mapping.
            write_file(c"/proc/self/setgroups", c"deny");
            if write_file(c"/proc/self/uid_map", &self.uid_map) < 0
                || write_file(c"/proc/self/gid_map", &self.gid_map) < 0
            {
                return (PROBE_USERNS, last());
            }
            let overlay = c"overlay".as_ptr();
            if libc::mount(
                overlay,
                self.merged.as_ptr(),
                overlay,
                0,
                self.options.as_ptr().cast(),
            ) < 0
            {
                return (PROBE_OVERLAY, last());
            }
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let mut allow = libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            };
            let prog = libc::sock_fprog {
                len: 1,
                filter: &mut allow,
            };
            let flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            let fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog,
            );
            if fd < 0 {
                return (PROBE_SECCOMP, last());
            }
            if libc::ioctl(fd as i32, libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, 1u64) < 0 {
                return (PROBE_SYNC, last());
            }
        }
        (0, 0)
    }
}

/// Writes `content` to the file at `path` with raw calls; negative on failure (errno set).
fn write_file(path: &std::ffi::CStr, content: &std::ffi::CStr) -> isize {
    // SAFETY: both are valid NUL-terminated strings; the descriptor is closed before returning.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return -1;
        }
        let n = libc::write(fd, content.as_ptr().cast(), content.to_bytes().len());
        let errno = Errno::last_raw();
        libc::close(fd);
        Errno::set_raw(errno);
        n
    }
}
