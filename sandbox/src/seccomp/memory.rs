//! Reading a traced process's memory: path strings and argv arrays.

use std::fs::File;
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;
/// The size of the first read of a string.
const FIRST_READ: usize = 256;
/// Longest path the kernel accepts, including the NUL.
pub(crate) const PATH_MAX: usize = 4096;
/// Bounds for argv: enough for any real command line, small enough to never stall.
const MAX_ARGS: usize = 4096;
const MAX_ARG_LEN: usize = 128 * 1024;

/// Reads `buf.len()` bytes at `addr` of process `pid`; returns how many were read.
fn read(pid: u32, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own mutably; the remote side is only read by
    // the kernel, which checks it.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n >= 0 {
        return n as usize;
    }
    // Fallback where process_vm_readv is filtered (some container runtimes).
    match File::open(format!("/proc/{pid}/mem")) {
        Ok(mem) => mem.read_at(buf, addr).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Reads a NUL-terminated string at `addr` into `out` (without the NUL), page by page so a
/// string ending just before an unmapped page is still read. False if unreadable or too long.
pub(crate) fn read_cstr(pid: u32, addr: u64, max: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut addr = addr;
    let mut chunk = [0u8; PAGE as usize];
    // Most paths are short: copy a small first piece, then whole pages.
    let mut want = FIRST_READ;
    while out.len() < max {
        let len = ((PAGE - addr % PAGE) as usize).min(want);
        want = PAGE as usize;
        let n = read(pid, addr, &mut chunk[..len]);
        if n == 0 {
            return false;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return true;
        }
        out.extend_from_slice(&chunk[..n]);
        addr += n as u64;
    }
    false
}

/// Reads one little-endian u64 at `addr`.
pub(crate) fn read_u64(pid: u32, addr: u64) -> Option<u64> {
    let mut bytes = [0u8; 8];
    (read(pid, addr, &mut bytes) == 8).then(|| u64::from_le_bytes(bytes))
}

/// Reads a NULL-terminated array of string pointers (an argv) at `addr`.
pub(crate) fn read_argv(pid: u32, addr: u64) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let mut arg = Vec::new();
    for i in 0..MAX_ARGS as u64 {
        match read_u64(pid, addr + 8 * i) {
            Some(0) | None => break,
            Some(ptr) => {
                if !read_cstr(pid, ptr, MAX_ARG_LEN, &mut arg) {
                    break;
                }
                args.push(std::mem::take(&mut arg));
            }
        }
    }
    args
}

/// Reads exactly `len` bytes at `addr` of process `pid`; `None` if they cannot all be read.
pub(crate) fn read_bytes(pid: u32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = read(pid, addr + done as u64, &mut buf[done..]);
        if n == 0 {
            return None;
        }
        done += n;
    }
    Some(buf)
}
