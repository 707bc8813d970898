//! The mount namespace setup, run by the sandbox's init process before `pivot_root`: a private
//! copy of the host tree made read-only, overlays on the writable roots, a fresh `/proc`, a
//! minimal `/dev` and read-only re-binds. Only raw system calls: see [`crate::child`].

use std::ffi::CStr;
use std::ptr::null;

use crate::child::{check, Fail};
use crate::plan::{OverlayPlan, Plan};
use crate::Stage;

const NONE: *const libc::c_char = null();

fn mount(
    src: *const libc::c_char,
    dst: &CStr,
    fstype: *const libc::c_char,
    flags: libc::c_ulong,
    data: *const libc::c_char,
) -> libc::c_int {
    // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
    unsafe { libc::mount(src, dst.as_ptr(), fstype, flags, data.cast()) }
}

/// Sets `attr` on the mount at `path` (and, with `recursive`, every mount beneath it).
fn set_read_only(path: &CStr, recursive: bool) -> libc::c_int {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: `path` is a valid C string and `attr` a valid mount_attr of the size passed.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        ) as libc::c_int
    }
}

const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Creates the overlay of writable root `overlay` as a detached mount and returns its fd.
///
/// This happens before the host root is bound under the scratch directory: overlayfs refuses
/// a lower directory with (locked) mounts beneath it, and a writable root such as `/tmp` or
/// `$HOME` usually contains the scratch directory, hence the new root's mounts.
fn create_overlay(overlay: &OverlayPlan) -> libc::c_int {
    let string = |fs: libc::c_long, key: &CStr, value: *const libc::c_char| {
        // SAFETY: `fs` is an fs context; key and value are NUL-terminated and outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs,
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value,
                0,
            )
        }
    };
    let flag = |fs: libc::c_long, key: &CStr| {
        // SAFETY: `fs` is an fs context; key is NUL-terminated and outlives the call.
        unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs,
                FSCONFIG_SET_FLAG,
                key.as_ptr(),
                NONE,
                0,
            )
        }
    };
    // SAFETY: raw calls on valid C strings; every descriptor opened here is closed or returned.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC);
        if fs < 0 {
            return -1;
        }
        // No sync of the upper layer's whole filesystem at unmount (milliseconds on a busy
        // disk): the layer is only read, or renamed into place, afterwards, and a command's
        // output is no more durable outside the sandbox. Kernels before 5.10 lack the option
        // and simply sync.
        flag(fs, c"volatile");
        let configured = string(fs, c"lowerdir", overlay.lower.as_ptr()) >= 0
            && string(fs, c"upperdir", overlay.upper.as_ptr()) >= 0
            && string(fs, c"workdir", overlay.work.as_ptr()) >= 0
            && flag(fs, c"userxattr") >= 0
            && libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NONE, NONE, 0) >= 0;
        let mnt = if configured {
            libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)
        } else {
            -1
        };
        let errno = nix::errno::Errno::last_raw();
        libc::close(fs as libc::c_int);
        nix::errno::Errno::set_raw(errno);
        mnt as libc::c_int
    }
}

/// Builds the whole mount tree under the new root.
pub(crate) fn setup(plan: &Plan) -> Result<(), Fail> {
    let root = plan.new_root.as_c_str();
    check(
        mount(NONE, c"/", NONE, libc::MS_REC | libc::MS_PRIVATE, NONE),
        Stage::MakePrivate,
        0,
    )?;
    for (i, overlay) in plan.overlays.iter().enumerate() {
        let fd = create_overlay(overlay);
        check(fd, Stage::MountOverlay, i as u32)?;
        overlay.mount_fd.set(fd);
    }
    match &plan.synthetic_root {
        Some(synthetic) => synthetic_root(root, &synthetic.entries, &synthetic.points)?,
        None => check(
            mount(
                c"/".as_ptr(),
                root,
                NONE,
                libc::MS_BIND | libc::MS_REC,
                NONE,
            ),
            Stage::BindRoot,
            0,
        )?,
    }
    check(set_read_only(root, true), Stage::ReadOnlyRoot, 0)?;
    let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    check(
        mount(
            c"proc".as_ptr(),
            &plan.proc_dir,
            c"proc".as_ptr(),
            proc_flags,
            NONE,
        ),
        Stage::MountProc,
        0,
    )?;
    dev(plan)?;
    for (i, overlay) in plan.overlays.iter().enumerate() {
        let fd = overlay.mount_fd.replace(-1);
        // SAFETY: moves the detached mount `fd` (owned here) onto a valid path, then closes it.
        let ret = unsafe {
            let ret = libc::syscall(
                libc::SYS_move_mount,
                fd,
                c"".as_ptr(),
                libc::AT_FDCWD,
                overlay.target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ) as libc::c_int;
            let errno = nix::errno::Errno::last_raw();
            libc::close(fd);
            nix::errno::Errno::set_raw(errno);
            ret
        };
        check(ret, Stage::MountOverlay, i as u32)?;
    }
    for (i, (host, target)) in plan.read_only.iter().enumerate() {
        let ret = mount(
            host.as_ptr(),
            target,
            NONE,
            libc::MS_BIND | libc::MS_REC,
            NONE,
        );
        if ret < 0 && nix::errno::Errno::last() == nix::errno::Errno::ENOENT {
            continue;
        }
        check(ret, Stage::BindReadOnly, i as u32)?;
        check(set_read_only(target, true), Stage::BindReadOnly, i as u32)?;
    }
    masks(plan)
}

/// Hides the masked paths and makes the protected kernel interfaces read-only. A path that
/// does not exist on this system is skipped.
fn masks(plan: &Plan) -> Result<(), Fail> {
    let absent = || {
        matches!(
            nix::errno::Errno::last(),
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR
        )
    };
    for (i, target) in plan.masks.hidden.iter().enumerate() {
        let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let tmpfs = c"tmpfs".as_ptr();
        let mut ret = mount(tmpfs, target, tmpfs, flags, c"size=4k,mode=0555".as_ptr());
        if ret < 0 && nix::errno::Errno::last() == nix::errno::Errno::ENOTDIR {
            // A file: /dev/null in its place.
            ret = mount(c"/dev/null".as_ptr(), target, NONE, libc::MS_BIND, NONE);
        }
        if ret < 0 && absent() {
            continue;
        }
        check(ret, Stage::Mask, i as u32)?;
    }
    let first = plan.masks.hidden.len();
    for (i, target) in plan.masks.read_only.iter().enumerate() {
        let index = (first + i) as u32;
        let ret = mount(
            target.as_ptr(),
            target,
            NONE,
            libc::MS_BIND | libc::MS_REC,
            NONE,
        );
        if ret < 0 && absent() {
            continue;
        }
        check(ret, Stage::Mask, index)?;
        check(set_read_only(target, true), Stage::Mask, index)?;
    }
    Ok(())
}

/// The new root as a tmpfs holding the host's top-level entries (directories and files bound
/// recursively, symlinks re-created) and the mount points of mapped roots that the host lacks
/// (see [`crate::mapped`]): the host's `/` is never written. Made read-only with the rest.
fn synthetic_root(
    root: &CStr,
    entries: &[crate::mapped::TopEntry],
    points: &[std::ffi::CString],
) -> Result<(), Fail> {
    use crate::mapped::TopEntry;
    let stage = Stage::BindRoot;
    check(
        mount(
            c"tmpfs".as_ptr(),
            root,
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0755".as_ptr(),
        ),
        stage,
        0,
    )?;
    for (i, entry) in entries.iter().enumerate() {
        let i = 1 + i as u32;
        let (host, target, rec) = match entry {
            TopEntry::Symlink { link, target } => {
                // SAFETY: valid C strings.
                let ret = unsafe { libc::symlink(link.as_ptr(), target.as_ptr()) };
                check(ret, stage, i)?;
                continue;
            }
            TopEntry::Dir { host, target } => {
                // SAFETY: a valid C string.
                check(unsafe { libc::mkdir(target.as_ptr(), 0o755) }, stage, i)?;
                (host, target, libc::MS_REC)
            }
            TopEntry::File { host, target } => {
                let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC;
                // SAFETY: a valid C string; the descriptor is closed right away.
                let fd = unsafe { libc::open(target.as_ptr(), flags, 0o644) };
                check(fd, stage, i)?;
                // SAFETY: closing the descriptor just opened.
                unsafe { libc::close(fd) };
                (host, target, 0)
            }
        };
        let ret = mount(host.as_ptr(), target, NONE, libc::MS_BIND | rec, NONE);
        // An entry that vanished, or that this user may not bind (a root-only mount), stays
        // an empty placeholder, as it would be unreadable anyway.
        let errno = nix::errno::Errno::last();
        if ret < 0
            && !matches!(
                errno,
                nix::errno::Errno::ENOENT | nix::errno::Errno::EPERM | nix::errno::Errno::EACCES
            )
        {
            check(ret, stage, i)?;
        }
    }
    for point in points {
        // SAFETY: a valid C string.
        check(unsafe { libc::mkdir(point.as_ptr(), 0o755) }, stage, 0)?;
    }
    Ok(())
}

/// A tmpfs `/dev` holding bind mounts of the host's harmless devices, the terminals of the
/// command's stdio at their `/dev/pts` names (so a terminal keeps its name; no other terminal
/// is reachable), a private `/dev/shm` and the usual symlinks.
fn dev(plan: &Plan) -> Result<(), Fail> {
    let dev = &plan.dev;
    let stage = Stage::MountDev;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    check(
        mount(
            c"tmpfs".as_ptr(),
            &dev.dir,
            c"tmpfs".as_ptr(),
            flags,
            c"mode=0755".as_ptr(),
        ),
        stage,
        0,
    )?;
    for (i, (host, target)) in dev.devices.iter().enumerate() {
        // SAFETY: `target` is a valid C string; the returned fd is closed right away.
        let fd = unsafe {
            libc::open(
                target.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o666,
            )
        };
        check(fd, stage, 1 + i as u32)?;
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
        let ret = mount(host.as_ptr(), target, NONE, libc::MS_BIND, NONE);
        if ret < 0 && nix::errno::Errno::last() == nix::errno::Errno::ENOENT {
            continue;
        }
        check(ret, stage, 1 + i as u32)?;
    }
    // SAFETY: valid C strings.
    check(unsafe { libc::mkdir(dev.pts.as_ptr(), 0o755) }, stage, 0)?;
    check(
        mount(
            c"tmpfs".as_ptr(),
            &dev.pts,
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"mode=0755,size=4k".as_ptr(),
        ),
        stage,
        0,
    )?;
    // Only the terminals on the command's own stdio: another of the host's terminals (another
    // user's, or another of the caller's) can be neither read nor written.
    for (host, target) in &dev.ptys {
        // SAFETY: `target` is a valid C string; the returned fd is closed right away.
        let fd = unsafe { libc::open(target.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600) };
        check(fd, stage, 0)?;
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
        check(
            mount(host.as_ptr(), target, NONE, libc::MS_BIND, NONE),
            stage,
            0,
        )?;
    }
    // SAFETY: valid C strings.
    check(unsafe { libc::mkdir(dev.shm.as_ptr(), 0o1777) }, stage, 0)?;
    let shm_flags = libc::MS_NOSUID | libc::MS_NODEV;
    check(
        mount(
            c"tmpfs".as_ptr(),
            &dev.shm,
            c"tmpfs".as_ptr(),
            shm_flags,
            c"mode=1777".as_ptr(),
        ),
        stage,
        0,
    )?;
    for (target, link) in &dev.links {
        // SAFETY: valid C strings.
        let ret = unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) };
        check(ret, stage, 0)?;
    }
    check(set_read_only(&dev.dir, false), stage, 0)
}

/// Brings `lo` up in the new network namespace.
pub(crate) fn loopback_up() -> Result<(), Fail> {
    let stage = Stage::LoopbackUp;
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd, stage, 0)?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags =
        (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the ifreq we pass.
    let ret = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req as *const libc::ifreq) };
    // SAFETY: closing our socket.
    unsafe { libc::close(fd) };
    check(ret, stage, 0)
}

/// Makes the new root the process's root and enters the working directory.
pub(crate) fn pivot(plan: &Plan) -> Result<(), Fail> {
    let stage = Stage::PivotRoot;
    // SAFETY: valid C strings; pivot_root(".", ".") stacks the old root under the new one, and
    // the lazy unmount then detaches it.
    unsafe {
        check(libc::chdir(plan.new_root.as_ptr()), stage, 0)?;
        check(
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int,
            stage,
            0,
        )?;
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH), stage, 0)?;
        check(libc::chdir(plan.cwd.as_ptr()), Stage::Chdir, 0)
    }
}
