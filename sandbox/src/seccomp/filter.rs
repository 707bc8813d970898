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
//! With the fast path ([`super::fast`]), a call of [`FAST`] that carries the sandbox's cookie in
//! its sixth argument and comes from the stub's address is allowed without a notification. That
//! test comes after every refusal and only ever replaces a notification: the calls it lets
//! through are traced calls that refuse nothing.
//!
//! When a standard stream is a terminal, reads (`read`, `readv`, `pread64`, `preadv`,
//! `preadv2`) notify if the descriptor is 0, 1 or 2, so the supervisor can tell whether the
//! command read a terminal; reads of any other descriptor never leave the kernel.

use super::fast::Cookie;
use super::sockets::SOCKET_CALLS;
use super::syscalls::{DENIED, FAST, NAMESPACE_FLAGS, REFUSED, TRACED};

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_IP: u32 = 8;
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
    /// A traced call: allowed if it carries the cookie from the stub, else notified.
    Cookie,
    /// The cookie and the stub's address, tested.
    CookieCheck,
    CookieFail,
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
    /// An unconditional (forward) jump.
    Goto(Label),
    Mark(Label),
}

fn source(watch_reads: bool, cookie: Option<Cookie>) -> Vec<Op> {
    use Label::*;
    use Op::*;
    // Where a traced call of `nr` goes: the cookie test for the fast path's calls.
    let traced = |nr: i64| match cookie {
        Some(_) if FAST.contains(&nr) => Cookie,
        _ => Notify,
    };
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
            ops.push(Jump(JEQ, nr as u32, traced(nr), Next));
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
    for (label, arg, nr) in [
        (EmptyPathArg3, 3, libc::SYS_newfstatat),
        (EmptyPathArg2, 2, libc::SYS_statx),
    ] {
        ops.extend([Mark(label), Stmt(LD_W_ABS, offset_arg(arg))]);
        ops.push(Jump(JSET, libc::AT_EMPTY_PATH as u32, Next, SkipOne));
        ops.push(Stmt(RET, libc::SECCOMP_RET_ALLOW));
        ops.push(match traced(nr) {
            Cookie => Goto(Cookie),
            _ => Stmt(RET, libc::SECCOMP_RET_USER_NOTIF),
        });
    }
    ops.extend([Mark(StdFdArg0), Stmt(LD_W_ABS, offset_arg(0))]);
    ops.push(Jump(JGE, 3, Next, SkipOne));
    ops.extend([
        Stmt(RET, libc::SECCOMP_RET_ALLOW),
        Stmt(RET, libc::SECCOMP_RET_USER_NOTIF),
    ]);
    if let Some(cookie) = cookie {
        // The cookie in the sixth argument, and the stub's address as the instruction pointer.
        ops.push(Mark(Cookie));
        // An `openat` that may append always notifies: the supervisor has the sandbox copy
        // the file before it is opened (see `notify::copy_up_for_append`).
        ops.push(Stmt(LD_W_ABS, OFFSET_NR));
        ops.push(Jump(JEQ, libc::SYS_openat as u32, Next, CookieCheck));
        ops.push(Stmt(LD_W_ABS, offset_arg(2)));
        ops.push(Jump(JSET, libc::O_APPEND as u32, CookieFail, Next));
        ops.push(Mark(CookieCheck));
        for (offset, value) in [
            (offset_arg(5), cookie.value),
            (offset_arg(5) + 4, cookie.value >> 32),
            (OFFSET_IP, cookie.ip),
            (OFFSET_IP + 4, cookie.ip >> 32),
        ] {
            ops.push(Stmt(LD_W_ABS, offset));
            ops.push(Jump(JEQ, value as u32, Next, CookieFail));
        }
        ops.push(Stmt(RET, libc::SECCOMP_RET_ALLOW));
        ops.extend([Mark(CookieFail), Stmt(RET, libc::SECCOMP_RET_USER_NOTIF)]);
    }
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
        let offset = |label: Label| match label {
            Label::Next => 0,
            Label::SkipOne => 1,
            other => find(other).expect("label defined") - here - 1,
        };
        let rel = |label: Label| u8::try_from(offset(label)).expect("a jump within 255");
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
            Op::Goto(label) => out.push(libc::sock_filter {
                code: JA,
                jt: 0,
                jf: 0,
                k: offset(label) as u32,
            }),
            Op::Mark(_) => {}
        }
    }
    out
}

/// The filter program; with `cookie`, the fast path's calls carrying it are not notified.
pub(crate) fn program(watch_reads: bool, cookie: Option<Cookie>) -> Vec<libc::sock_filter> {
    assemble(&source(watch_reads, cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: Cookie = Cookie {
        value: 0x1122_3344_5566_7788,
        ip: 0x7e80_0000_101e,
    };

    #[test]
    fn jumps_stay_inside_the_program() {
        for cookie in [None, Some(COOKIE)] {
            let prog = program(true, cookie);
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

    /// Runs the program on one call as the kernel would, returning its action.
    fn verdict(prog: &[libc::sock_filter], nr: i64, args: [u64; 6], ip: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
        data[8..16].copy_from_slice(&ip.to_le_bytes());
        for (i, arg) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
        }
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let insn = prog[pc];
            let jump = |taken: bool| 1 + if taken { insn.jt } else { insn.jf } as usize;
            pc += match insn.code {
                LD_W_ABS => {
                    let k = insn.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    1
                }
                JEQ => jump(a == insn.k),
                JGE => jump(a >= insn.k),
                JSET => jump(a & insn.k != 0),
                JA => 1 + insn.k as usize,
                RET => return insn.k,
                other => panic!("unexpected instruction {other:#x}"),
            };
        }
    }

    #[test]
    fn the_cookie_only_skips_notifications() {
        let with = program(false, Some(COOKIE));
        let without = program(false, None);
        let allow = libc::SECCOMP_RET_ALLOW;
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let carrying = |a: [u64; 5]| [a[0], a[1], a[2], a[3], a[4], COOKIE.value];
        let v = |nr: i64, args: [u64; 6], ip: u64| verdict(&with, nr, args, ip);
        for nr in FAST {
            let args = carrying([libc::AT_FDCWD as u64, 0x1000, 0, 0, 0]);
            assert_eq!(v(nr, args, COOKIE.ip), allow, "syscall {nr}");
            assert_eq!(v(nr, args, COOKIE.ip + 4096), notify, "elsewhere: {nr}");
            assert_eq!(
                v(nr, args, COOKIE.ip ^ (1 << 40)),
                notify,
                "elsewhere: {nr}"
            );
            let mut wrong = args;
            wrong[5] ^= 1 << 33;
            assert_eq!(v(nr, wrong, COOKIE.ip), notify, "no cookie: {nr}");
            assert_eq!(verdict(&without, nr, args, COOKIE.ip), notify, "off: {nr}");
        }
        // An open that may append notifies even from the stub, with the cookie.
        for flags in [
            libc::O_WRONLY | libc::O_APPEND,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            libc::O_RDWR | libc::O_APPEND,
            libc::O_RDONLY | libc::O_APPEND,
        ] {
            let args = carrying([libc::AT_FDCWD as u64, 0x1000, flags as u64, 0o666, 0]);
            assert_eq!(v(libc::SYS_openat, args, COOKIE.ip), notify, "{flags:#o}");
        }
        let read = carrying([libc::AT_FDCWD as u64, 0x1000, libc::O_RDONLY as u64, 0, 0]);
        assert_eq!(v(libc::SYS_openat, read, COOKIE.ip), allow);
        let empty_path = [3, 0x1000, 0x2000, libc::AT_EMPTY_PATH as u64, 0, 0];
        assert_eq!(v(libc::SYS_newfstatat, empty_path, 0), allow);
        let any = carrying([1, 2, 3, 4, 5]);
        for nr in REFUSED {
            assert_eq!(v(nr, any, COOKIE.ip), enosys, "syscall {nr}");
        }
        for nr in DENIED {
            assert_eq!(v(nr, any, COOKIE.ip), eperm, "syscall {nr}");
        }
        let new_user = carrying([libc::CLONE_NEWUSER as u64, 0, 0, 0, 0]);
        assert_eq!(v(libc::SYS_clone, new_user, COOKIE.ip), eperm);
        let sti = carrying([0, libc::TIOCSTI, 0, 0, 0]);
        assert_eq!(v(libc::SYS_ioctl, sti, COOKIE.ip), eperm);
        for nr in SOCKET_CALLS {
            let to = carrying([3, 0x1000, 16, 0, 0x2000]);
            assert_eq!(v(nr, to, COOKIE.ip), notify, "syscall {nr}");
        }
        let traced_only = [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_chroot,
            libc::SYS_chdir,
            libc::SYS_getdents64,
            libc::SYS_unlinkat,
            libc::SYS_renameat2,
        ];
        for nr in traced_only {
            assert_eq!(v(nr, any, COOKIE.ip), notify, "syscall {nr}");
        }
        assert_eq!(v(libc::SYS_read, [5, 0, 0, 0, 0, 0], 0), allow);
    }
}
