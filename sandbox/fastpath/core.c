/* The core of shark's preloaded library: set-up at load, the stub page, and observe(), which
 * records an access in the memory shared with the supervisor when that can be done exactly
 * as the supervisor would have recorded it, and otherwise sends the call down the slow path
 * (the C library's own function, whose system call traps to the supervisor).
 *
 * Everything here is async-signal-safe and fork-safe: no locks, no allocation after load;
 * the two hash sets and the ring are lock-free, and a race at worst records an access twice
 * (the supervisor keeps the first). The library takes itself out of LD_PRELOAD at load, so the
 * program sees the environment it was given; exec.c puts it back for the programs it runs. */
#include "fast.h"
#include "paths.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Patched per sandbox by the supervisor in its copy of this library. */
struct config {
    char marker[16];
    uint64_t cookie;
    uint64_t stub;
};
__attribute__((used)) static volatile struct config config = {SHARK_CONFIG_MARKER, 0, 0};

HIDDEN struct real shark_real;

static unsigned char *shared;  /* the shared memory, or NULL */
/* The set-up of the stub, the shared memory and the per-process set, made at the first call
 * that needs it (most short-lived programs make none; glibc's own opens do not come here). */
enum { SETUP_NOT_YET, SETUP_UNDER_WAY, SETUP_ON, SETUP_OFF };
static int setup = SETUP_NOT_YET;
static int announced;          /* the pid the supervisor knows this process by */
static uint64_t self_program;  /* hash of the path this process was executed by */
static uint64_t fast_calls;    /* calls this process made without trapping */

/* The per-process set of paths this process recorded: for each, the kinds it recorded, and
 * whether a fingerprint of it is known to precede any later access. */
struct pentry {
    uint64_t hash;
    uint32_t off;
    uint32_t len;
    uint32_t kinds;
    uint32_t fp;
    uint64_t pad;
};
#define PSET_SHIFT 14
#define PSET_SLOTS (1u << PSET_SHIFT)
#define PARENA_SIZE (1u << 20)
static struct pentry *pset;
static char *parena;
/* How much of the arena is used: the first word of the same mapping, so that a forked child,
 * whose mapping starts zeroed (MADV_WIPEONFORK), starts its arena from the beginning too. */
static uint64_t *parena_used;
#define PSET_HEADER 64

/* Where joined paths are built: a base and a name of under JOIN_PART bytes each. A longer one
 * takes the slow path (a recorded path has at most SLOT_PATH_MAX bytes anyway); the buffer
 * lives on the stack of every wrapped call, which may be a signal handler's small one. */
#define JOIN_PART 1024
#define JOINED_MAX (2 * JOIN_PART + 2)

long shark_raw(long nr, long a, long b, long c, long d, long e)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

long shark_stub(long nr, long a, long b, long c, long d, long e)
{
    long (*fn)(long, long, long, long, long, long) =
        (long (*)(long, long, long, long, long, long))(uintptr_t)config.stub;
    return fn(nr, a, b, c, d, e);
}

long shark_ret(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static int set_up(void);

static uint32_t load32(size_t off)
{
    return __atomic_load_n((uint32_t *)(shared + off), __ATOMIC_ACQUIRE);
}

int shark_inherits(void)
{
    return set_up() && load32(H_CHROOTED) == 0;
}

/* ---- set-up at load ---- */

/* LD_PRELOAD as the program was given it: the sandbox appended this library (after a ':'
 * when the program had one of its own). Works on `environ` itself rather than through
 * getenv()/unsetenv()/setenv(), which a program may define for itself (bash does: before its
 * main() its unsetenv() changes nothing), so every program sees the environment it was
 * given. The entry is taken out by moving the later ones back, as the C library's unsetenv()
 * does, or cut short in place before the ':'. */
extern char **environ;
static void strip_env(void)
{
    static const char name[] = "LD_PRELOAD=";
    const size_t s = sizeof SHARK_SELF - 1, k = sizeof name - 1;
    if (!environ)
        return;
    for (char **ep = environ; *ep; ep++) {
        if (strncmp(*ep, name, k) != 0)
            continue;
        char *v = *ep + k;
        size_t n = strlen(v);
        if (n < s || memcmp(v + n - s, SHARK_SELF, s) != 0)
            return;
        if (n == s) {
            char **dp = ep;
            do
                dp[0] = dp[1];
            while (*dp++);
        } else if (v[n - s - 1] == ':') {
            v[n - s - 1] = '\0';
        }
        return;
    }
}

void *shark_resolve(void **slot, const char *name)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

#define RESOLVE(field, name) shark_resolve((void **)&shark_real.field, name)

static void resolve(void)
{
    RESOLVE(openat, "openat64");
    RESOLVE(fopen, "fopen");
    RESOLVE(fopen64, "fopen64");
    RESOLVE(opendir, "opendir");
    RESOLVE(fstatat, "fstatat64");
    RESOLVE(xstat, "__xstat64");
    RESOLVE(lxstat, "__lxstat64");
    RESOLVE(fxstatat, "__fxstatat64");
    RESOLVE(statx, "statx");
    RESOLVE(faccessat, "faccessat");
    RESOLVE(readlinkat, "readlinkat");
    RESOLVE(getxattr, "getxattr");
    RESOLVE(lgetxattr, "lgetxattr");
    RESOLVE(fgetxattr, "fgetxattr");
    RESOLVE(listxattr, "listxattr");
    RESOLVE(llistxattr, "llistxattr");
    RESOLVE(flistxattr, "flistxattr");
    RESOLVE(execve, "execve");
    RESOLVE(execvpe, "execvpe");
    RESOLVE(fexecve, "fexecve");
    RESOLVE(execveat, "execveat");
    RESOLVE(posix_spawn, "posix_spawn");
    RESOLVE(posix_spawnp, "posix_spawnp");
}

static const unsigned char stub_code[] = {
    0x48, 0x89, 0xf8,             /* mov rax, rdi */
    0x48, 0x89, 0xf7,             /* mov rdi, rsi */
    0x48, 0x89, 0xd6,             /* mov rsi, rdx */
    0x48, 0x89, 0xca,             /* mov rdx, rcx */
    0x4d, 0x89, 0xc2,             /* mov r10, r8 */
    0x4d, 0x89, 0xc8,             /* mov r8, r9 */
    0x49, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, /* movabs r9, COOKIE */
    0x0f, 0x05,                   /* syscall */
    0x45, 0x31, 0xc9,             /* xor r9d, r9d */
    0xc3,                         /* ret */
};
_Static_assert(sizeof stub_code == STUB_RETURN + 4, "stub layout");

/* Maps the stub at the sandbox's fixed address: the filter lets a traced call through only
 * from there, with the cookie in r9. */
static int map_stub(void)
{
    uint64_t cookie = config.cookie;
    void *want = (void *)(uintptr_t)config.stub;
    if (cookie == 0 || want == NULL)
        return 0;
    void *page = mmap(want, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page == MAP_FAILED)
        return 0;
    if (page != want) { /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
        munmap(page, 4096);
        return 0;
    }
    memcpy(page, stub_code, sizeof stub_code);
    memcpy((char *)page + STUB_COOKIE, &cookie, sizeof cookie);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) {
        munmap(page, 4096);
        return 0;
    }
    return 1;
}

static unsigned char *map_shared(void)
{
    long fd = shark_stub(SYS_openat, AT_FDCWD, (long)SHARK_RING, O_RDWR | O_CLOEXEC, 0, 0);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (shark_raw(SYS_fstat, fd, (long)&st, 0, 0, 0) == 0 && st.st_size >= (off_t)SHARED_SIZE)
        p = mmap(NULL, SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    shark_raw(SYS_close, fd, 0, 0, 0, 0);
    if (p == MAP_FAILED)
        return NULL;
    unsigned char *m = p;
    uint64_t magic = __atomic_load_n((uint64_t *)(m + H_MAGIC), __ATOMIC_ACQUIRE);
    if (magic != SHARK_MAGIC || *(uint32_t *)(m + H_VERSION) != SHARK_VERSION) {
        munmap(p, SHARED_SIZE);
        return NULL;
    }
    return m;
}

/* Whether the fast path is on in this process, setting it up the first time. One thread
 * sets up; a call made meanwhile (another thread, or a signal handler interrupting the set-up)
 * takes the slow path, as does every call when the set-up failed. A child forked during the
 * set-up keeps the slow path for good. */
static int set_up(void)
{
    int state = __atomic_load_n(&setup, __ATOMIC_ACQUIRE);
    if (state == SETUP_ON)
        return 1;
    if (state != SETUP_NOT_YET)
        return 0;
    int expected = SETUP_NOT_YET;
    if (!__atomic_compare_exchange_n(&setup, &expected, SETUP_UNDER_WAY, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return expected == SETUP_ON;
    int saved = errno, on = 0;
    unsigned char *m = map_stub() ? map_shared() : NULL;
    if (m) {
        size_t size = PSET_HEADER + PSET_SLOTS * sizeof(struct pentry) + PARENA_SIZE;
        void *set = mmap(NULL, size,
                         PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
        if (set != MAP_FAILED) {
            /* A forked child starts with an empty set rather than a copy: copying the pages
             * this process touched, and their copy-on-write faults after, cost every fork of
             * a shell. The child records again what it accesses (the supervisor keeps the
             * first record), and its arena continues where this one's stood. */
            madvise(set, size, MADV_WIPEONFORK);
            parena_used = set;
            pset = (struct pentry *)((char *)set + PSET_HEADER);
            parena = (char *)pset + PSET_SLOTS * sizeof(struct pentry);
            shared = m;
            on = 1;
        } else {
            munmap(m, SHARED_SIZE);
        }
    }
    errno = saved;
    __atomic_store_n(&setup, on ? SETUP_ON : SETUP_OFF, __ATOMIC_RELEASE);
    return on;
}

__attribute__((constructor)) static void shark_load(void)
{
    int saved = errno;
    strip_env();
    resolve();
    /* This process's exec was a notification: the supervisor knows its pid. (Taken now, not
     * at the set-up: a child forked before its first call must still announce itself.) */
    announced = (int)shark_raw(SYS_getpid, 0, 0, 0, 0, 0);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    if (execfn)
        self_program = shark_hash(execfn, (uint32_t)strnlen(execfn, 4096));
    errno = saved;
}

/* ---- which programs get the library ---- */

/* A program start costs about a dozen notified calls more with the library than without it
 * (loading it, mapping its memory, the kernel work on fork and exec); a program whose
 * processes make fewer calls than that through it is better off without it. */
#define LEARN_STARTS 4
#define MIN_CALLS 16
#define RETRY_EVERY 32

static unsigned char *program_slot(uint64_t h)
{
    for (uint32_t i = 0; i < 8; i++) {
        unsigned char *slot =
            shared + H_PROGRAMS + ((h + i) & (PROGRAM_SLOTS - 1)) * PROGRAM_SLOT_SIZE;
        uint64_t *sh = (uint64_t *)slot;
        uint64_t seen = __atomic_load_n(sh, __ATOMIC_ACQUIRE);
        if (seen == 0 && __atomic_compare_exchange_n(sh, &seen, h, 0, __ATOMIC_ACQ_REL,
                                                     __ATOMIC_ACQUIRE))
            return slot;
        if (seen == h)
            return slot;
    }
    return NULL;
}

int shark_worth_preloading(const char *path)
{
    if (!path || !set_up())
        return 1;
    unsigned char *slot = program_slot(shark_hash(path, (uint32_t)strnlen(path, 4096)));
    if (!slot)
        return 1;
    uint32_t *execs = (uint32_t *)(slot + 8), *starts = (uint32_t *)(slot + 12);
    uint64_t *calls = (uint64_t *)(slot + 16);
    uint32_t n = __atomic_fetch_add(execs, 1, __ATOMIC_RELAXED);
    uint32_t tried = __atomic_load_n(starts, __ATOMIC_RELAXED);
    uint64_t made = __atomic_load_n(calls, __ATOMIC_RELAXED);
    /* Once in a while a program is tried again: it may be doing other work now. */
    if (tried >= LEARN_STARTS && made < (uint64_t)tried * MIN_CALLS && n % RETRY_EVERY != 0)
        return 0;
    __atomic_fetch_add(starts, 1, __ATOMIC_RELAXED);
    return 1;
}

/* At a normal exit: adds this process's calls to its program's count (a process that never
 * set up made none). */
__attribute__((destructor)) static void shark_unload(void)
{
    uint64_t made = __atomic_load_n(&fast_calls, __ATOMIC_RELAXED);
    if (!made || !self_program || __atomic_load_n(&setup, __ATOMIC_ACQUIRE) != SETUP_ON)
        return;
    unsigned char *slot = program_slot(self_program);
    if (slot)
        __atomic_fetch_add((uint64_t *)(slot + 16), made, __ATOMIC_RELAXED);
}

/* ---- paths ---- */

enum joined { J_OK, J_NONE, J_FAIL };

/* Writes the decimal form of `n` (>= 0 or negative) at `out`; returns its end. */
static char *decimal(char *out, long n)
{
    char digits[24];
    int i = 0;
    unsigned long u = n < 0 ? (unsigned long)-n : (unsigned long)n;
    do {
        digits[i++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0)
        *out++ = '-';
    while (i)
        *out++ = digits[--i];
    return out;
}

/* The path the supervisor would have built: `raw` if absolute, else joined to the cwd or to
 * what `dirfd` refers to (paths.rs: absolute()). J_NONE: it would record nothing. */
static enum joined join(int dirfd, const char *raw, char *out, size_t *outlen)
{
    size_t rlen = strnlen(raw, JOIN_PART);
    if (rlen >= JOIN_PART)
        return J_FAIL;
    if (raw[0] == '/') {
        memcpy(out, raw, rlen + 1);
        *outlen = rlen;
        return J_OK;
    }
    size_t blen;
    if (dirfd == AT_FDCWD) {
        long n = shark_raw(SYS_getcwd, (long)out, JOIN_PART, 0, 0, 0);
        if (n <= 1 || out[0] != '/')
            return J_FAIL;
        blen = (size_t)n - 1;
    } else {
        char link[48] = "/proc/thread-self/fd/";
        *decimal(link + strlen(link), dirfd) = '\0';
        long n = shark_stub(SYS_readlinkat, AT_FDCWD, (long)link, (long)out, JOIN_PART, 0);
        if (n >= JOIN_PART)
            return J_FAIL;
        if (n <= 0 || out[0] != '/')
            return J_NONE; /* a pipe, a socket, a closed descriptor */
        blen = (size_t)n;
    }
    if (rlen > 0 && out[blen - 1] != '/')
        out[blen++] = '/';
    memcpy(out + blen, raw, rlen + 1);
    *outlen = blen + rlen;
    return J_OK;
}

/* ---- the sets ---- */

static struct pentry *precord(uint64_t h, const char *p, uint32_t len)
{
    for (uint32_t i = 0; i < SET_PROBES; i++) {
        struct pentry *e = &pset[(h + i) & (PSET_SLOTS - 1)];
        uint64_t eh = __atomic_load_n(&e->hash, __ATOMIC_ACQUIRE);
        if (eh == 0) {
            uint64_t empty = 0;
            if (!__atomic_compare_exchange_n(&e->hash, &empty, 1, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE)) {
                i--; /* look at this slot again */
                continue;
            }
            uint64_t off = __atomic_fetch_add(parena_used, len, __ATOMIC_RELAXED);
            if (off + len > PARENA_SIZE) {
                __atomic_store_n(&e->hash, 2, __ATOMIC_RELEASE);
                return NULL;
            }
            memcpy(parena + off, p, len);
            e->off = (uint32_t)off;
            e->len = len;
            __atomic_store_n(&e->hash, h, __ATOMIC_RELEASE);
            return e;
        }
        if (eh == h && e->len == len && memcmp(parena + e->off, p, len) == 0)
            return e;
    }
    return NULL;
}

/* Whether the supervisor fingerprinted this path (as Rust compares paths). */
static int fingerprinted(uint64_t h, const char *p, uint32_t len)
{
    const unsigned char *set = shared + SET_OFFSET;
    const char *arena = (const char *)shared + ARENA_OFFSET;
    for (uint32_t i = 0; i < SET_PROBES; i++) {
        const unsigned char *s = set + ((h + i) & (SET_SLOTS - 1)) * SET_SLOT_SIZE;
        uint64_t sh = __atomic_load_n((const uint64_t *)s, __ATOMIC_ACQUIRE);
        if (sh == 0)
            return 0;
        uint32_t off = *(const uint32_t *)(s + 8), n = *(const uint32_t *)(s + 12);
        if (sh == h && n == len && off <= ARENA_SIZE - n && memcmp(arena + off, p, len) == 0)
            return 1;
    }
    return 0;
}

/* ---- fingerprints, announcements, the ring ---- */

struct fp {
    uint64_t dev, ino, size;
    int64_t mtime, ctime;
    uint32_t mtime_nsec, ctime_nsec, mode, present;
};

/* The path's fingerprint as the supervisor would take it on the host, when the sandbox's
 * view of it is provably the host's: its lookup stayed on the sandbox's root mount, the
 * host's root filesystem bound read-only (overlays, /proc, /dev and masks are mounts of
 * their own). -1 when that cannot be shown. */
static int probe(const char *joined, struct fp *fp)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_XDEV};
    long fd = shark_stub(SYS_openat2, AT_FDCWD, (long)joined, (long)&how, sizeof how, 0);
    if (fd < 0) {
        /* Lookups that fail alike on the host; EACCES does not (another uid, maybe). */
        if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP || fd == -ENAMETOOLONG) {
            memset(fp, 0, sizeof *fp);
            return 0;
        }
        return -1;
    }
    struct statx stx;
    long r = shark_stub(SYS_statx, fd, (long)"", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT,
                        STATX_BASIC_STATS, (long)&stx);
    shark_raw(SYS_close, fd, 0, 0, 0, 0);
    if (r < 0)
        return -1;
    fp->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    fp->ino = stx.stx_ino;
    fp->size = stx.stx_size;
    fp->mtime = stx.stx_mtime.tv_sec;
    fp->mtime_nsec = stx.stx_mtime.tv_nsec;
    fp->ctime = stx.stx_ctime.tv_sec;
    fp->ctime_nsec = stx.stx_ctime.tv_nsec;
    fp->mode = stx.stx_mode;
    fp->present = 1;
    return 0;
}

/* Ring entries name processes by their pid in the sandbox; a process the supervisor has not
 * seen exec (a forked child) makes itself known once, with a call that traps. */
static void announce(int pid)
{
    if (__atomic_load_n(&announced, __ATOMIC_RELAXED) == pid)
        return;
    /* A signal arriving before the supervisor took the call withdraws it: make it again. */
    while (shark_raw(SYS_faccessat2, SHARK_ANNOUNCE_FD, 0, 0, 0, 0) == -EINTR)
        ;
    __atomic_store_n(&announced, pid, __ATOMIC_RELAXED);
}

static int ring_put(int pid, int kind, const struct fp *fp, const char *p, uint32_t len)
{
    uint64_t *head = (uint64_t *)(shared + H_HEAD);
    uint64_t pos = __atomic_load_n(head, __ATOMIC_RELAXED);
    unsigned char *slot;
    uint64_t want;
    for (;;) {
        slot = shared + RING_OFFSET + (pos & (RING_SLOTS - 1)) * SLOT_SIZE;
        uint64_t state = __atomic_load_n((uint64_t *)(slot + S_STATE), __ATOMIC_ACQUIRE);
        want = (pos >> RING_SHIFT) * 2;
        if (state == want) {
            if (__atomic_compare_exchange_n(head, &pos, pos + 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED))
                break;
        } else if (state < want) {
            return -1; /* full: the supervisor has not read this slot's last lap yet */
        } else {
            pos = __atomic_load_n(head, __ATOMIC_RELAXED);
        }
    }
    *(uint64_t *)(slot + S_SEQ) = __atomic_fetch_add((uint64_t *)(shared + H_SEQ), 1,
                                                     __ATOMIC_SEQ_CST);
    *(uint32_t *)(slot + S_PID) = (uint32_t)pid;
    slot[S_KIND] = (unsigned char)kind;
    slot[S_HAS_FP] = fp != NULL;
    *(uint16_t *)(slot + S_PATH_LEN) = (uint16_t)len;
    if (fp) {
        *(uint64_t *)(slot + S_DEV) = fp->dev;
        *(uint64_t *)(slot + S_INO) = fp->ino;
        *(uint64_t *)(slot + S_SIZE) = fp->size;
        *(int64_t *)(slot + S_MTIME) = fp->mtime;
        *(int64_t *)(slot + S_CTIME) = fp->ctime;
        *(uint32_t *)(slot + S_MTIME_NSEC) = fp->mtime_nsec;
        *(uint32_t *)(slot + S_CTIME_NSEC) = fp->ctime_nsec;
        *(uint32_t *)(slot + S_MODE) = fp->mode;
        *(uint32_t *)(slot + S_PRESENT) = fp->present;
    }
    memcpy(slot + S_PATH, p, len);
    __atomic_store_n((uint64_t *)(slot + S_STATE), want + 1, __ATOMIC_RELEASE);
    return 0;
}

/* ---- observe ---- */

static enum route observe(int dirfd, const char *path, int kind)
{
    if (kind == K_APPEND)
        return SLOW; /* the supervisor copies the file first (files.c: may_append) */
    if (load32(H_CHROOTED))
        return SLOW; /* absolute paths would need the process's root */
    char joined[JOINED_MAX];
    size_t jlen;
    switch (join(dirfd, path, joined, &jlen)) {
    case J_NONE:
        return FAST;
    case J_FAIL:
        return SLOW;
    case J_OK:
        break;
    }
    char canon[SLOT_PATH_MAX];
    uint32_t clen;
    if (!shark_canonical(joined, jlen, canon, &clen) || shark_magic(canon, clen))
        return SLOW;
    uint64_t h = shark_hash(canon, clen);
    struct pentry *e = precord(h, canon, clen);
    uint32_t bit = 1u << kind;
    if (e && (__atomic_load_n(&e->kinds, __ATOMIC_ACQUIRE) & bit))
        return FAST; /* this process recorded it already */
    int is_pseudo = shark_pseudo(joined, jlen);
    int known = is_pseudo || (e && __atomic_load_n(&e->fp, __ATOMIC_ACQUIRE)) ||
                fingerprinted(h, canon, clen);
    struct fp fp;
    if (!known && probe(joined, &fp) < 0)
        return SLOW;
    int pid = (int)shark_raw(SYS_getpid, 0, 0, 0, 0, 0);
    announce(pid);
    if (ring_put(pid, kind, known ? NULL : &fp, canon, clen) < 0)
        return SLOW;
    /* A thread sharing this root changed it meanwhile: the record stands (one access too
     * many at worst), and the call itself traps, to be resolved in the new root. */
    if (load32(H_CHROOTED))
        return SLOW;
    if (e) {
        if (!is_pseudo)
            __atomic_store_n(&e->fp, 1, __ATOMIC_RELEASE);
        __atomic_fetch_or(&e->kinds, bit, __ATOMIC_RELEASE);
    }
    return FAST;
}

enum route shark_observe(int dirfd, const char *path, int kind)
{
    if (path == NULL || !set_up())
        return SLOW;
    int saved = errno;
    enum route route = observe(dirfd, path, kind);
    errno = saved;
    if (route == FAST)
        __atomic_fetch_add(&fast_calls, 1, __ATOMIC_RELAXED);
    return route;
}
