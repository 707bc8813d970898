/* The memory shark's supervisor shares with the preloaded library, and the library's
 * per-sandbox configuration. The format is specified in sandbox/src/seccomp/shared.rs; the
 * numbers here are pinned against it by that module's tests (through check.c).
 *
 * One file, /dev/shm/.shark/ring in the sandbox's private /dev/shm:
 *
 *   0       header (4 KiB): magic, version, the "a process changed its root" flag, and on cache
 *           lines of their own the global sequence counter (shared with the supervisor's
 *           notification path) and the ring's reservation counter
 *   4 KiB   the ring: RING_SLOTS slots of SLOT_SIZE bytes, one access each
 *   ...     the fingerprinted set: SET_SLOTS slots of {hash, offset, length} (written by the
 *           supervisor only), then its string arena
 */
#ifndef SHARK_LAYOUT_H
#define SHARK_LAYOUT_H

#include <stdint.h>

#define SHARK_MAGIC 0x3150464b52414853ULL /* "SHARKFP1" */
#define SHARK_VERSION 1u

#define H_MAGIC 0
#define H_VERSION 8
#define H_CHROOTED 12
#define H_SEQ 64
#define H_HEAD 128
/* The programs table, in the header page and used by the library alone (exec.c): for each
 * program path (by hash) how often it was started with the library, and how many calls its
 * processes made without trapping. */
#define H_PROGRAMS 1024
#define PROGRAM_SLOTS 64
#define PROGRAM_SLOT_SIZE 32
#define HEADER_SIZE 4096

#define RING_OFFSET HEADER_SIZE
#define RING_SHIFT 14
#define RING_SLOTS (1u << RING_SHIFT)
#define SLOT_SIZE 512

/* One slot. `state` is 2*lap while free for that lap and 2*lap+1 once committed. */
#define S_STATE 0
#define S_SEQ 8
#define S_PID 16
#define S_KIND 20
#define S_HAS_FP 21
#define S_PATH_LEN 22
#define S_DEV 24
#define S_INO 32
#define S_SIZE 40
#define S_MTIME 48
#define S_CTIME 56
#define S_MTIME_NSEC 64
#define S_CTIME_NSEC 68
#define S_MODE 72
#define S_PRESENT 76
#define S_PATH 80
#define SLOT_PATH_MAX (SLOT_SIZE - S_PATH)

#define SET_OFFSET (RING_OFFSET + RING_SLOTS * SLOT_SIZE)
#define SET_SHIFT 16
#define SET_SLOTS (1u << SET_SHIFT)
#define SET_SLOT_SIZE 16
#define ARENA_OFFSET (SET_OFFSET + SET_SLOTS * SET_SLOT_SIZE)
#define ARENA_SIZE (4u << 20)
#define SHARED_SIZE (ARENA_OFFSET + ARENA_SIZE)
/* Lookups give up after this many slots (the supervisor stops inserting well before). */
#define SET_PROBES 64

/* Where the sandbox puts the library and the shared memory. */
#define SHARK_SELF "/dev/shm/.shark/fast.so"
#define SHARK_RING "/dev/shm/.shark/ring"

/* The dirfd of the trapping faccessat2 by which a forked process makes itself known. */
#define SHARK_ANNOUNCE_FD (-0x5348)

/* The per-sandbox configuration the supervisor patches into its copy of the library, found
 * by this marker (16 bytes, the NUL included). */
#define SHARK_CONFIG_MARKER "shark-fast-cfg:1"

/* The stub page: mov rax,rdi; mov rdi,rsi; mov rsi,rdx; mov rdx,rcx; mov r10,r8; mov r8,r9;
 * movabs r9,COOKIE; syscall; xor r9d,r9d; ret. STUB_RETURN is the address the kernel reports
 * as the instruction pointer of its system call. */
#define STUB_COOKIE 20
#define STUB_RETURN 30

/* FNV-1a, never below 3 (0, 1 and 2 mark empty, busy and dead slots). */
static inline uint64_t shark_hash(const char *p, uint32_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint32_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h < 3 ? h + 3 : h;
}

#endif
