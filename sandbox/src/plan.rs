//! Everything the sandbox's children need, computed by the supervisor before it clones, so the
//! children only make system calls (no allocation, no locks) until `execve`.

use std::cell::Cell;
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::InvalidSpec;
use crate::landlock;
use crate::scratch::Scratch;
use crate::{SandboxError, Spec, Stdio};

/// Device files bound from the host into the sandbox's `/dev`.
pub(crate) const DEVICES: [&str; 7] = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"];

/// `/dev` symlinks a process expects.
const DEV_LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// A NUL-terminated array of C strings for `execve`.
#[derive(Debug)]
pub(crate) struct CStringArray {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CStringArray {
    pub(crate) fn new(strings: Vec<CString>) -> CStringArray {
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStringArray {
            _strings: strings,
            ptrs,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// The minimal `/dev`, as paths under the new root.
#[derive(Debug)]
pub(crate) struct DevPlan {
    pub(crate) dir: CString,
    /// (host device, mount point under the new root)
    pub(crate) devices: Vec<(CString, CString)>,
    pub(crate) pts: CString,
    /// The terminals on the command's stdio, (host `/dev/pts/N`, the same under the new
    /// root): the only ones it can open by name.
    pub(crate) ptys: Vec<(CString, CString)>,
    pub(crate) shm: CString,
    /// (symlink target, link path under the new root)
    pub(crate) links: Vec<(CString, CString)>,
}

/// What the sandbox hides or protects, as paths under the new root.
#[derive(Debug)]
pub(crate) struct Masks {
    /// Hidden behind an empty read-only tmpfs (a directory) or `/dev/null` (a file).
    pub(crate) hidden: Vec<CString>,
    /// Bound onto themselves read-only.
    pub(crate) read_only: Vec<CString>,
}

/// Kernel interfaces a container runtime hides (as runc and bubblewrap do): reading them
/// reveals host state no input records, and some (`/proc/kcore`, `/proc/keys`) more than that.
pub(crate) const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Kernel interfaces writable by root that change the host (sysctls, the SysRq trigger,
/// interrupt affinity): read-only in the sandbox even for root.
pub(crate) const PROC_READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One overlay mount over a writable root. It is created detached, before the new root exists
/// (see [`crate::mounts`]), and moved onto `target` later.
#[derive(Debug)]
pub(crate) struct OverlayPlan {
    pub(crate) target: CString,
    pub(crate) lower: CString,
    pub(crate) upper: CString,
    pub(crate) work: CString,
    /// The detached mount, in the init process, between creating and attaching it.
    pub(crate) mount_fd: Cell<RawFd>,
}

/// The precomputed setup of one run.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) new_root: CString,
    pub(crate) proc_dir: CString,
    pub(crate) dev: DevPlan,
    pub(crate) overlays: Vec<OverlayPlan>,
    /// (host path, mount point under the new root)
    pub(crate) read_only: Vec<(CString, CString)>,
    /// When a mapped root's mount point is missing on the host: the host's top-level entries
    /// to re-create on a tmpfs root, and the mount points to make there.
    pub(crate) synthetic_root: Option<crate::mapped::SyntheticRoot>,
    /// Paths under the new root to hide, then kernel interfaces to make read-only.
    pub(crate) masks: Masks,
    pub(crate) cwd: CString,
    pub(crate) network: bool,
    /// Candidate paths for `argv[0]`, in `PATH` order.
    pub(crate) programs: Vec<CString>,
    pub(crate) argv: CStringArray,
    pub(crate) envp: CStringArray,
    /// Landlock rules as (path after pivot, allowed access).
    pub(crate) landlock_rules: Vec<(CString, u64)>,
    pub(crate) filter: Vec<libc::sock_filter>,
    /// Signals the command starts with ignored.
    pub(crate) ignored_signals: Vec<i32>,
    /// The observation fast path, unless the spec turned it off.
    pub(crate) fast: Option<crate::seccomp::fast::FastPlan>,
}

fn cstring(bytes: &[u8]) -> Result<CString, SandboxError> {
    CString::new(bytes).map_err(|_| SandboxError::InvalidSpec {
        reason: InvalidSpec::NulByte,
    })
}

fn cpath(path: &Path) -> Result<CString, SandboxError> {
    cstring(path.as_os_str().as_bytes())
}

/// `path` re-rooted under `root`.
fn under(root: &Path, path: &Path) -> Result<CString, SandboxError> {
    let mut bytes = root.as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(path.as_os_str().as_bytes());
    cstring(&bytes)
}

fn require_absolute(path: &Path) -> Result<(), SandboxError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(SandboxError::InvalidSpec {
            reason: InvalidSpec::RelativePath(path.to_path_buf()),
        })
    }
}

/// The writable roots resolved to real paths, missing ones dropped, nested ones merged into
/// their outermost ancestor, sorted, except a nested root below a directory owned by someone
/// else (for a caller other than root): that one keeps an overlay of its own. In a user
/// namespace that maps only the caller, overlayfs cannot copy up a directory of an unmapped
/// owner (`EOVERFLOW`), so every write below `/tmp/shared` (root's) into `/tmp/shared/me/work`
/// (the caller's) would fail if `/tmp` were the only overlay.
pub(crate) fn writable_roots(spec: &Spec) -> Result<Vec<PathBuf>, SandboxError> {
    let mut roots = Vec::new();
    for root in &spec.writable_roots {
        require_absolute(root)?;
        match std::fs::canonicalize(root) {
            Ok(real) if real.is_dir() => roots.push(real),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SandboxError::Io {
                    op: "resolve writable root",
                    path: root.clone(),
                    source,
                })
            }
        }
    }
    roots.sort();
    roots.dedup();
    let uid = nix::unistd::geteuid().as_raw();
    let mut outermost: Vec<PathBuf> = Vec::new();
    for root in roots {
        let Some(outer) = outermost.iter().rev().find(|kept| root.starts_with(kept)) else {
            outermost.push(root);
            continue;
        };
        if uid != 0 && foreign_between(outer, &root, uid) {
            outermost.push(root);
        }
    }
    for root in &outermost {
        let bad = root
            .as_os_str()
            .as_bytes()
            .iter()
            .any(|b| matches!(b, b',' | b':' | b'\\'));
        if bad {
            let reason = InvalidSpec::UnmountablePath(root.clone());
            return Err(SandboxError::InvalidSpec { reason });
        }
    }
    crate::mountinfo::check_roots(&outermost)?;
    Ok(outermost)
}

/// Whether a directory strictly below `outer` and up to `inner` (included) belongs to
/// another user than `uid`.
fn foreign_between(outer: &Path, inner: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    inner
        .ancestors()
        .take_while(|a| *a != outer)
        .any(|dir| std::fs::metadata(dir).is_ok_and(|m| m.uid() != uid))
}

fn overlay_plan(
    root: &Path,
    lower: &Path,
    upper: &Path,
    work: &Path,
) -> Result<OverlayPlan, SandboxError> {
    for p in [lower, upper, work] {
        if p.as_os_str()
            .as_bytes()
            .iter()
            .any(|b| matches!(b, b',' | b':' | b'\\'))
        {
            let reason = InvalidSpec::UnmountablePath(p.to_path_buf());
            return Err(SandboxError::InvalidSpec { reason });
        }
    }
    Ok(OverlayPlan {
        target: under(root, lower)?,
        lower: cpath(lower)?,
        upper: cpath(upper)?,
        work: cpath(work)?,
        mount_fd: Cell::new(-1),
    })
}

fn dev_plan(root: &Path, spec: &Spec) -> Result<DevPlan, SandboxError> {
    let dev = Path::new("/dev");
    let mut devices = Vec::new();
    for name in DEVICES {
        devices.push((cpath(&dev.join(name))?, under(root, &dev.join(name))?));
    }
    let mut links = Vec::new();
    for (name, target) in DEV_LINKS {
        links.push((cstring(target.as_bytes())?, under(root, &dev.join(name))?));
    }
    let mut ptys = Vec::new();
    for pty in stdio_ptys(spec) {
        ptys.push((cpath(&pty)?, under(root, &pty)?));
    }
    Ok(DevPlan {
        dir: under(root, dev)?,
        devices,
        pts: under(root, Path::new("/dev/pts"))?,
        ptys,
        shm: under(root, Path::new("/dev/shm"))?,
        links,
    })
}

/// Where `argv[0]` may be, in the order `execvp` would try.
fn program_candidates(spec: &Spec) -> Result<Vec<CString>, SandboxError> {
    let program = spec.argv[0].as_bytes();
    if program.contains(&b'/') {
        return Ok(vec![cstring(program)?]);
    }
    let path = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_bytes());
    let path = path.unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    let mut candidates = Vec::new();
    for dir in path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
        let mut full = dir.to_vec();
        full.push(b'/');
        full.extend_from_slice(program);
        candidates.push(cstring(&full)?);
    }
    Ok(candidates)
}

fn env_array(env: &[(OsString, OsString)]) -> Result<CStringArray, SandboxError> {
    let mut strings = Vec::with_capacity(env.len());
    for (k, v) in env {
        let mut entry = k.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(v.as_bytes());
        strings.push(cstring(&entry)?);
    }
    Ok(CStringArray::new(strings))
}

impl Plan {
    /// Builds the plan for `spec`, whose writable roots are `roots` (see [`writable_roots`]),
    /// the last `mapped.len()` of them the hosts of `mapped`, mounted at their inside paths.
    pub(crate) fn build(
        spec: &Spec,
        roots: &[PathBuf],
        mapped: &[crate::MappedRoot],
        scratch: &Scratch,
        landlock_abi: Option<u32>,
    ) -> Result<Plan, SandboxError> {
        if spec.argv.is_empty() {
            return Err(SandboxError::InvalidSpec {
                reason: InvalidSpec::EmptyArgv,
            });
        }
        require_absolute(&spec.cwd)?;
        let root = scratch.root();
        // Where each root is seen inside: its own path, or a mapped root's inside path.
        let normal = roots.len() - mapped.len();
        let targets: Vec<PathBuf> = roots[..normal]
            .iter()
            .cloned()
            .chain(mapped.iter().map(|m| m.inside.clone()))
            .collect();
        let mut overlays = Vec::new();
        for (i, lower) in roots.iter().enumerate() {
            let mut overlay = overlay_plan(&root, lower, &scratch.upper(i), &scratch.work(i))?;
            overlay.target = under(&root, &targets[i])?;
            overlays.push(overlay);
        }
        let mut read_only = Vec::new();
        for path in &spec.read_only {
            require_absolute(path)?;
            read_only.push((cpath(path)?, under(&root, path)?));
        }
        let argv = spec
            .argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut hidden = Vec::new();
        for path in &spec.hidden {
            require_absolute(path)?;
            hidden.push(under(&root, path)?);
        }
        for path in MASKED {
            hidden.push(under(&root, Path::new(path))?);
        }
        let masks = Masks {
            hidden,
            read_only: PROC_READ_ONLY
                .iter()
                .map(|p| under(&root, Path::new(p)))
                .collect::<Result<_, _>>()?,
        };
        let programs = program_candidates(spec)?;
        let synthetic_root = crate::mapped::top_level(&root, mapped, under)?;
        let fast = match spec.fast_path && fast_path_fits(mapped, synthetic_root.is_some()) {
            true => crate::seccomp::fast::FastPlan::build(&spec.env, &programs, &spec.cwd, mapped),
            false => None,
        };
        Ok(Plan {
            new_root: cpath(&root)?,
            proc_dir: under(&root, Path::new("/proc"))?,
            dev: dev_plan(&root, spec)?,
            overlays,
            read_only,
            synthetic_root,
            masks,
            cwd: cpath(&spec.cwd)?,
            network: spec.network,
            programs,
            argv: CStringArray::new(argv),
            envp: env_array(&spec.env)?,
            landlock_rules: match landlock_abi {
                Some(abi) => landlock::rules(&targets, abi, cpath)?,
                None => Vec::new(),
            },
            filter: crate::seccomp::filter::program(
                stdio_on_terminal(spec),
                fast.as_ref().map(|f| f.cookie),
            ),
            ignored_signals: spec.ignored_signals.clone(),
            fast,
        })
    }
}

/// Whether the fast path's library can record accesses exactly as the supervisor would with
/// these mapped roots. It fingerprints a path itself only when its lookup stays on the root
/// mount, which must then be the host's root filesystem: a synthetic root (a tmpfs) is not.
/// It takes paths under `/dev`, `/sys` and `/proc` as needing no fingerprint, which a mapped
/// root there would make untrue. (Paths under a mapped root's mount point leave the root
/// mount, so the library leaves them to the supervisor, which names them by host path.)
fn fast_path_fits(mapped: &[crate::MappedRoot], synthetic_root: bool) -> bool {
    let pseudo = |p: &Path| ["/dev", "/sys", "/proc"].iter().any(|d| p.starts_with(d));
    let plain = |p: &Path| {
        p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    !synthetic_root
        && mapped
            .iter()
            .all(|m| plain(&m.inside) && !pseudo(&m.inside) && m.inside != Path::new("/"))
}

/// The pseudo-terminals (`/dev/pts/N`) on the command's standard streams.
fn stdio_ptys(spec: &Spec) -> Vec<PathBuf> {
    use std::os::fd::AsFd;
    let own = [
        std::io::stdin().as_fd().try_clone_to_owned().ok(),
        std::io::stdout().as_fd().try_clone_to_owned().ok(),
        std::io::stderr().as_fd().try_clone_to_owned().ok(),
    ];
    let mut ptys = Vec::new();
    for (stdio, own) in [&spec.stdin, &spec.stdout, &spec.stderr]
        .into_iter()
        .zip(own)
    {
        let fd = match stdio {
            Stdio::Null => None,
            Stdio::Fd(fd) => fd.try_clone().ok(),
            Stdio::Inherit => own,
        };
        let Some(fd) = fd.filter(|fd| nix::unistd::isatty(fd).unwrap_or(false)) else {
            continue;
        };
        let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        if let Ok(path) = std::fs::read_link(link) {
            let numbered = path
                .strip_prefix("/dev/pts")
                .ok()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if numbered && !ptys.contains(&path) {
                ptys.push(path);
            }
        }
    }
    ptys
}

/// Whether any of the command's standard streams is a terminal: only then are its reads of
/// descriptors 0..2 watched (see [`crate::Report::terminal_input`]), since a notification per
/// read slows down byte-at-a-time readers such as bash's `while read` on a pipe.
fn stdio_on_terminal(spec: &Spec) -> bool {
    use std::os::fd::AsFd;
    let own = [
        std::io::stdin().as_fd().try_clone_to_owned().ok(),
        std::io::stdout().as_fd().try_clone_to_owned().ok(),
        std::io::stderr().as_fd().try_clone_to_owned().ok(),
    ];
    [&spec.stdin, &spec.stdout, &spec.stderr]
        .into_iter()
        .zip(own)
        .any(|(stdio, own)| match stdio {
            Stdio::Null => false,
            Stdio::Fd(fd) => nix::unistd::isatty(fd).unwrap_or(false),
            Stdio::Inherit => own.is_some_and(|fd| nix::unistd::isatty(&fd).unwrap_or(false)),
        })
}
