//! The format against `fastpath/` (through `fastpath/check.c`), and the ring and set at work.

use super::*;
use crate::seccomp::paths::magic_link;
use crate::seccomp::syscalls::open_kind;
use std::os::raw::c_char;

extern "C" {
    fn shark_check_open_kind(flags: i32) -> i32;
    fn shark_check_hash(p: *const c_char, len: u32) -> u64;
    fn shark_check_canonical(input: *const c_char, n: usize, out: *mut c_char) -> i64;
    fn shark_check_magic(p: *const c_char, n: u32) -> i32;
    fn shark_check_layout(out: *mut u64);
    fn shark_check_slot(out: *mut u64);
}

fn c_canonical(path: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; SLOT_SIZE];
    // SAFETY: `path` is read for its length; `out` has the SLOT_PATH_MAX bytes it may write.
    let n =
        unsafe { shark_check_canonical(path.as_ptr().cast(), path.len(), out.as_mut_ptr().cast()) };
    (n >= 0).then(|| out[..n as usize].to_vec())
}

fn c_hash(bytes: &[u8]) -> u64 {
    // SAFETY: reads `bytes.len()` bytes.
    unsafe { shark_check_hash(bytes.as_ptr().cast(), bytes.len() as u32) }
}

fn c_magic(path: &[u8]) -> bool {
    // SAFETY: reads `path.len()` bytes.
    unsafe { shark_check_magic(path.as_ptr().cast(), path.len() as u32) != 0 }
}

#[test]
fn the_library_has_the_same_layout() {
    let mut c = [0u64; 16];
    // SAFETY: writes 16 u64s.
    unsafe { shark_check_layout(c.as_mut_ptr()) };
    let rust = [
        MAGIC,
        VERSION,
        H_CHROOTED as u64,
        H_SEQ as u64,
        H_HEAD as u64,
        RING_OFFSET as u64,
        RING_SLOTS as u64,
        SLOT_SIZE as u64,
        slot::PATH as u64,
        SET_OFFSET as u64,
        SET_SLOTS as u64,
        ARENA_OFFSET as u64,
        ARENA_SIZE as u64,
        SHARED_SIZE as u64,
        20,
        30,
    ];
    assert_eq!(c, rust);
    // SAFETY: writes 16 u64s.
    unsafe { shark_check_slot(c.as_mut_ptr()) };
    use slot::*;
    let fields = [
        STATE, SEQ, PID, KIND, HAS_FP, PATH_LEN, DEV, INO, SIZE, MTIME, CTIME,
    ];
    let more = [MTIME_NSEC, CTIME_NSEC, MODE, PRESENT];
    let mut rust = vec![KINDS.len() as u64];
    rust.extend(fields.iter().chain(&more).map(|&f| f as u64));
    assert_eq!(c.to_vec(), rust);
    assert_eq!(b"SHARKFP1", &MAGIC.to_le_bytes());
}

#[test]
fn kinds_are_numbered_in_declaration_order() {
    // AccessKind's Ord is its declaration order: strictly increasing means KINDS[i] is the
    // i-th variant, as kinds.h numbers them.
    assert!(KINDS.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(KINDS[0], AccessKind::Read);
    assert_eq!(KINDS[21], AccessKind::SetAttr);
}

#[test]
fn the_library_maps_open_flags_as_the_supervisor_does() {
    let access = [libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR];
    let extra = [
        libc::O_CREAT,
        libc::O_EXCL,
        libc::O_TRUNC,
        libc::O_APPEND,
        libc::O_PATH,
        libc::O_DIRECTORY,
        libc::O_CLOEXEC,
        libc::O_TMPFILE,
        libc::O_NOFOLLOW,
    ];
    for a in access {
        for mask in 0..(1u32 << extra.len()) {
            let flags = extra
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .fold(a, |f, (_, x)| f | x);
            // SAFETY: a pure function of an int.
            let c = unsafe { shark_check_open_kind(flags) };
            assert_eq!(
                KINDS[c as usize],
                open_kind(flags as u64),
                "flags {flags:#o}"
            );
        }
    }
}

const PATHS: [&str; 16] = [
    "/",
    "//",
    "/a/./b/",
    "/a//b",
    "/a/../b",
    "/./",
    "/a/b/.",
    "/..",
    "/dev/./fd/3",
    "/usr/lib/python3.11/./os.py",
    "/x/.hidden/..a/...",
    "/proc",
    "/procfs/x",
    "/dev/stdin",
    "/dev//stdin",
    "/tmp/a b/ü",
];

#[test]
fn paths_are_spelled_alike_and_compare_as_rust_compares_them() {
    for p in PATHS {
        let rust = canonical(Path::new(p));
        assert_eq!(c_canonical(p).as_deref(), Some(rust.as_slice()), "{p}");
        assert_eq!(c_hash(&rust), hash(&rust), "{p}");
        for q in PATHS {
            let same = Path::new(p) == Path::new(q);
            assert_eq!(same, rust == canonical(Path::new(q)), "{p} {q}");
        }
    }
    let long = format!("/{}", "x".repeat(SLOT_SIZE));
    assert_eq!(c_canonical(&long), None, "too long for a slot");
}

#[test]
fn the_library_leaves_every_magic_link_to_the_supervisor() {
    let magic = [
        "/proc/self/fd/3",
        "/proc/self/root/etc",
        "/proc/thread-self/cwd/x",
        "/proc/1/cwd/a",
        "/proc/self/task/9/root/x",
        "/proc/self/map_files/1-2",
        "/proc/self/exe",
        "/dev/fd/0",
        "/dev/fd/3/x",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
    ];
    for p in magic {
        let c = canonical(Path::new(p));
        assert!(
            magic_link(7, Path::new(p)).is_some() || p.starts_with("/dev/std"),
            "{p}"
        );
        assert!(c_magic(&c), "{p}");
    }
    for p in [
        "/dev/null",
        "/procfs",
        "/usr/proc/self/fd/1",
        "/dev/fdx",
        "/sys/kernel",
    ] {
        assert!(magic_link(7, Path::new(p)).is_none(), "{p}");
        assert!(!c_magic(&canonical(Path::new(p))), "{p}");
    }
}

fn shared_file() -> (tempfile::NamedTempFile, Shared) {
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(SHARED_SIZE as u64).unwrap();
    let shared = Shared::map(file.as_file()).unwrap();
    (file, shared)
}

/// Writes an entry at ring position `pos` as the library does; commits it if asked.
fn produce(shared: &Shared, pos: u64, path: &[u8], commit: bool) {
    let at = RING_OFFSET + (pos as usize & (RING_SLOTS - 1)) * SLOT_SIZE;
    shared.u64_at(H_HEAD).fetch_max(pos + 1, Ordering::SeqCst);
    let seq = shared.next_seq();
    shared.u64_at(at + slot::SEQ).store(seq, Ordering::Relaxed);
    shared.u32_at(at + slot::PID).store(42, Ordering::Relaxed);
    // SAFETY: in bounds of the mapping, which this test owns.
    unsafe {
        let base = shared.base.add(at);
        base.add(slot::KIND).write(3);
        base.add(slot::HAS_FP).write(1);
        base.add(slot::PATH_LEN)
            .cast::<u16>()
            .write_unaligned(path.len() as u16);
        std::ptr::copy_nonoverlapping(path.as_ptr(), base.add(slot::PATH), path.len());
    }
    shared.u64_at(at + slot::INO).store(99, Ordering::Relaxed);
    shared
        .u32_at(at + slot::PRESENT)
        .store(1, Ordering::Relaxed);
    if commit {
        let lap = pos >> RING_SHIFT;
        shared
            .u64_at(at + slot::STATE)
            .store(2 * lap + 1, Ordering::Release);
    }
}

#[test]
fn the_ring_hands_over_committed_entries_in_order() {
    let (_file, mut shared) = shared_file();
    produce(&shared, 0, b"/a", true);
    produce(&shared, 1, b"/b", false);
    produce(&shared, 2, b"/c", true);
    let mut out = Vec::new();
    shared.drain(false, &mut out);
    let paths: Vec<_> = out.iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        paths,
        [PathBuf::from("/a")],
        "stops at the uncommitted slot"
    );
    assert_eq!(out[0].kind, AccessKind::Stat);
    assert_eq!(out[0].pid, 42);
    assert!(matches!(
        out[0].fingerprint,
        Some(Fingerprint::Present { ino: 99, .. })
    ));
    shared.drain(true, &mut out);
    let paths: Vec<_> = out.iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        paths,
        [PathBuf::from("/a"), PathBuf::from("/c")],
        "skips it at the end"
    );
    // The slots are free for their next lap.
    let state = shared.u64_at(RING_OFFSET).load(Ordering::Relaxed);
    assert_eq!(state, 2);
}

#[test]
fn nonsense_in_the_ring_is_dropped() {
    let (_file, mut shared) = shared_file();
    produce(&shared, 0, b"relative", true);
    produce(&shared, 1, b"/ok", true);
    // SAFETY: in bounds of the mapping, which this test owns.
    unsafe {
        shared
            .base
            .add(RING_OFFSET + SLOT_SIZE + slot::KIND)
            .write(200)
    };
    shared.u64_at(H_HEAD).store(u64::MAX, Ordering::SeqCst);
    let mut out = Vec::new();
    shared.drain(true, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn the_set_finds_what_was_inserted() {
    let (_file, mut shared) = shared_file();
    let paths = [b"/usr/lib/x".as_slice(), b"/etc/passwd", b"/"];
    for p in paths {
        shared.insert(p);
        shared.insert(p);
    }
    assert_eq!(shared.set_count, 3, "no duplicates");
    for p in paths {
        let h = hash(p);
        let found = (0..SET_SLOTS).any(|i| {
            let at = SET_OFFSET + ((h as usize + i) & (SET_SLOTS - 1)) * SET_SLOT_SIZE;
            shared.u64_at(at).load(Ordering::Acquire) == h && shared.set_entry(at) == Some(p)
        });
        assert!(found);
    }
}

#[test]
fn the_supervisor_and_the_library_never_share_a_sequence_number() {
    let (file, shared) = shared_file();
    let mut seen = Vec::new();
    for i in 0..6 {
        seen.push(shared.next_seq());
        // The library takes its numbers from the same counter.
        for _ in 0..i {
            seen.push(shared.u64_at(H_SEQ).fetch_add(1, Ordering::SeqCst));
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "{seen:?}");
    assert_eq!(seen[0], 0);
    // Lost memory (the counter reads 0 again): the supervisor's numbers still increase.
    let last = shared.next_seq();
    shared.u64_at(H_SEQ).store(0, Ordering::SeqCst);
    assert!(shared.next_seq() > last);
    drop(file);
}
