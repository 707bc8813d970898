//! The mount namespace setup, run by the sandbox's init process before `pivot_root`: a private
//! copy of the host tree made read-only, overlays on the writable roots, a fresh `/proc`, a
//! minimal `/dev` and read-only re-binds. Only raw system calls: see [`crate::child`].

use std::ffi::CStr;
use std::ptr::null;

use crate::child::{check, Fail};
use crate::plan::Plan;
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

/// Builds the whole mount tree under the new root.
pub(crate) fn setup(plan: &Plan) -> Result<(), Fail> {
    let root = plan.new_root.as_c_str();
    check(
        mount(NONE, c"/", NONE, libc::MS_REC | libc::MS_PRIVATE, NONE),
        Stage::MakePrivate,
        0,
    )?;
    check(
        mount(
            c"/".as_ptr(),
            root,
            NONE,
            libc::MS_BIND | libc::MS_REC,
            NONE,
        ),
        Stage::BindRoot,
        0,
    )?;
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
        let ret = mount(
            c"overlay".as_ptr(),
            &overlay.target,
            c"overlay".as_ptr(),
            0,
            overlay.options.as_ptr(),
        );
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
    Ok(())
}

/// A tmpfs `/dev` holding bind mounts of the host's harmless devices, the host's `/dev/pts`
/// (so a terminal on stdio keeps its name), a private `/dev/shm` and the usual symlinks.
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
            c"/dev/pts".as_ptr(),
            &dev.pts,
            NONE,
            libc::MS_BIND | libc::MS_REC,
            NONE,
        ),
        stage,
        0,
    )?;
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
