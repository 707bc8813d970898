//! The classic-BPF seccomp program: notify the supervisor of every traced call, allow the rest.
//!
//! The calls of [`REFUSED`] (io_uring, `clone3`) fail with `ENOSYS`, those of [`DENIED`]
//! (mounts, namespaces, keyrings, ...) and a `clone` making namespaces with `EPERM`.
//!
//! `newfstatat` and `statx` with `AT_EMPTY_PATH` are `fstat` on an already-open descriptor
//! (glibc implements `fstat` that way), so they are allowed without a notification: the file was
//! recorded when it was opened. Foreign architectures (32-bit `int 0x80`) are killed, because their
//! calls would bypass the table; x32 calls fail with `ENOSYS`.
//!
//! When a standard stream is a terminal, reads (`read`, `readv`, `pread64`, `preadv`,
//! `preadv2`) notify if the descriptor is 0, 1 or 2, so the supervisor can tell whether the
//! command read a terminal; reads of any other descriptor never leave the kernel.

use super::sockets::SOCKET_CALLS;
use super::syscalls::{DENIED, NAMESPACE_FLAGS, REFUSED, TRACED};

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const fn offset_arg(i: u32) -> u32 {
    16 + 8 * i // low 32 bits on little-endian
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Next,
    SkipOne,
    Allow,
    Notify,
    Refuse,
    Deny,
    CloneFlags,
    SendtoAddr,
    IoctlCmd,
    EmptyPathArg3,
    EmptyPathArg2,
    StdFdArg0,
}

/// The reads that notify when their descriptor is 0..2.
pub(crate) const STD_READS: [i64; 5] = [
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_preadv2,
];

#[derive(Debug, Clone, Copy)]
enum Op {
    Stmt(u16, u32),
    Jump(u16, u32, Label, Label),
    Mark(Label),
}

fn source(watch_reads: bool) -> Vec<Op> {
    use Label::*;
    use Op::*;
    let mut ops = vec![
        Stmt(LD_W_ABS, OFFSET_ARCH),
        Jump(JEQ, AUDIT_ARCH_X86_64, SkipOne, Next),
        Stmt(RET, libc::SECCOMP_RET_KILL_PROCESS),
        Stmt(LD_W_ABS, OFFSET_NR),
        Jump(JGE, X32_SYSCALL_BIT, Next, SkipOne),
    ];
    ops.push(Stmt(RET, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    ops.push(Jump(JEQ, libc::SYS_newfstatat as u32, EmptyPathArg3, Next));
    ops.push(Jump(JEQ, libc::SYS_statx as u32, EmptyPathArg2, Next));
    for nr in REFUSED {
        ops.push(Jump(JEQ, nr as u32, Refuse, Next));
    }
    for nr in DENIED {
        ops.push(Jump(JEQ, nr as u32, Deny, Next));
    }
    ops.push(Jump(JEQ, libc::SYS_clone as u32, CloneFlags, Next));
    ops.push(Jump(JEQ, libc::SYS_ioctl as u32, IoctlCmd, Next));
    ops.push(Jump(JEQ, libc::SYS_sendto as u32, SendtoAddr, Next));
    for nr in SOCKET_CALLS {
        if nr != libc::SYS_sendto {
            ops.push(Jump(JEQ, nr as u32, Notify, Next));
        }
    }
    if watch_reads {
        for nr in STD_READS {
            ops.push(Jump(JEQ, nr as u32, StdFdArg0, Next));
        }
    }
    for nr in TRACED {
        if nr != libc::SYS_newfstatat && nr != libc::SYS_statx {
            ops.push(Jump(JEQ, nr as u32, Notify, Next));
        }
    }
    ops.extend([Mark(Allow), Stmt(RET, libc::SECCOMP_RET_ALLOW)]);
    ops.extend([Mark(Notify), Stmt(RET, libc::SECCOMP_RET_USER_NOTIF)]);
    ops.extend([
        Mark(Refuse),
        Stmt(RET, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ]);
    ops.extend([
        Mark(Deny),
        Stmt(RET, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]);
    // sendto(fd, buf, len, flags, addr, addrlen): only with an address (either half of the
    // pointer nonzero) does it name a destination.
    ops.extend([Mark(SendtoAddr), Stmt(LD_W_ABS, offset_arg(4))]);
    ops.push(Jump(JEQ, 0, Next, SkipOne));
    ops.push(Stmt(LD_W_ABS, offset_arg(4) + 4));
    ops.push(Jump(JEQ, 0, SkipOne, Next));
    ops.extend([
        Stmt(RET, libc::SECCOMP_RET_USER_NOTIF),
        Stmt(RET, libc::SECCOMP_RET_ALLOW),
    ]);
    // ioctl(fd, cmd, ...): pushing characters into a terminal's input (TIOCSTI) would type
    // commands into the user's shell once the sandboxed one exits; TIOCLINUX reaches the
    // console. Refused, as bubblewrap and container runtimes do.
    ops.extend([Mark(IoctlCmd), Stmt(LD_W_ABS, offset_arg(1))]);
    ops.push(Jump(JEQ, libc::TIOCSTI as u32, SkipOne, Next));
    ops.push(Jump(JEQ, libc::TIOCLINUX as u32, Next, SkipOne));
    ops.extend([
        Stmt(RET, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        Stmt(RET, libc::SECCOMP_RET_ALLOW),
    ]);
    // clone(flags, ...): new namespaces are refused, threads and processes allowed.
    ops.extend([Mark(CloneFlags), Stmt(LD_W_ABS, offset_arg(0))]);
    ops.push(Jump(JSET, NAMESPACE_FLAGS, Next, SkipOne));
    ops.extend([
        Stmt(RET, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        Stmt(RET, libc::SECCOMP_RET_ALLOW),
    ]);
    // BPF only jumps forward, so each flag test gets its own pair of returns.
    for (label, arg) in [(EmptyPathArg3, 3), (EmptyPathArg2, 2)] {
        ops.extend([Mark(label), Stmt(LD_W_ABS, offset_arg(arg))]);
        ops.push(Jump(JSET, libc::AT_EMPTY_PATH as u32, Next, SkipOne));
        ops.extend([
            Stmt(RET, libc::SECCOMP_RET_ALLOW),
            Stmt(RET, libc::SECCOMP_RET_USER_NOTIF),
        ]);
    }
    ops.extend([Mark(StdFdArg0), Stmt(LD_W_ABS, offset_arg(0))]);
    ops.push(Jump(JGE, 3, Next, SkipOne));
    ops.extend([
        Stmt(RET, libc::SECCOMP_RET_ALLOW),
        Stmt(RET, libc::SECCOMP_RET_USER_NOTIF),
    ]);
    ops
}

/// Resolves labels into relative jumps.
fn assemble(ops: &[Op]) -> Vec<libc::sock_filter> {
    let mut positions = Vec::new();
    let mut pc = 0usize;
    for op in ops {
        match op {
            Op::Mark(label) => positions.push((*label, pc)),
            _ => pc += 1,
        }
    }
    let find = |label: Label| positions.iter().find(|(l, _)| *l == label).map(|&(_, p)| p);
    let mut out = Vec::new();
    for op in ops {
        let here = out.len();
        let rel = |label: Label| match label {
            Label::Next => 0u8,
            Label::SkipOne => 1,
            other => (find(other).expect("label defined") - here - 1) as u8,
        };
        match *op {
            Op::Stmt(code, k) => out.push(libc::sock_filter {
                code,
                jt: 0,
                jf: 0,
                k,
            }),
            Op::Jump(code, k, jt, jf) => out.push(libc::sock_filter {
                code,
                jt: rel(jt),
                jf: rel(jf),
                k,
            }),
            Op::Mark(_) => {}
        }
    }
    out
}

/// The filter program.
pub(crate) fn program(watch_reads: bool) -> Vec<libc::sock_filter> {
    assemble(&source(watch_reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_stay_inside_the_program() {
        let prog = program(true);
        for (i, insn) in prog.iter().enumerate() {
            if insn.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(
                    i + 1 + (insn.jt.max(insn.jf) as usize) < prog.len(),
                    "insn {i}"
                );
            }
        }
        assert_eq!(prog.last().map(|i| i.code), Some(RET));
    }
}
