/* Internal interface of the preloaded library (core.c, files.c, exec.c). */
#ifndef SHARK_FAST_H
#define SHARK_FAST_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kinds.h"
#include "layout.h"

#define EXPORT __attribute__((visibility("default")))
#define HIDDEN __attribute__((visibility("hidden")))

/* What observe() decided. */
enum route {
    SLOW,  /* call the C library's function: the call traps, the supervisor records it */
    FAST,  /* recorded (or nothing to record): make the call through the stub */
};

/* A system call through the stub page, carrying the cookie; returns the raw result. */
HIDDEN long shark_stub(long nr, long a, long b, long c, long d, long e);
/* A system call that the filter never traces (getpid, close, mmap, ...). */
HIDDEN long shark_raw(long nr, long a, long b, long c, long d, long e);
/* The raw result as a C library function returns it (-1 and errno on failure). */
HIDDEN long shark_ret(long r);

/* Whether an exec'd program should get the library: it is loaded here and no process of
 * the sandbox changed its root. */
HIDDEN int shark_inherits(void);
/* Records the access of `kind` to `path` (relative to `dirfd`) when it can be recorded
 * without the supervisor. Preserves errno. */
HIDDEN enum route shark_observe(int dirfd, const char *path, int kind);
/* Whether the program at `path` should be started with the library: yes, unless its earlier
 * processes in this sandbox were started with it often enough and made too few calls through
 * it to pay for loading it (they are then observed by notifications, as without the library).
 * Counts the start when the answer is yes. */
HIDDEN int shark_worth_preloading(const char *path);

/* Real C library functions, resolved once at load. */
struct real {
    int (*openat)(int, const char *, int, ...);
    void *(*fopen)(const char *, const char *);
    void *(*fopen64)(const char *, const char *);
    void *(*opendir)(const char *);
    int (*fstatat)(int, const char *, void *, int);
    int (*xstat)(int, const char *, void *);
    int (*lxstat)(int, const char *, void *);
    int (*fxstatat)(int, int, const char *, void *, int);
    int (*statx)(int, const char *, int, unsigned, void *);
    int (*faccessat)(int, const char *, int, int);
    ssize_t (*readlinkat)(int, const char *, char *, size_t);
    ssize_t (*getxattr)(const char *, const char *, void *, size_t);
    ssize_t (*lgetxattr)(const char *, const char *, void *, size_t);
    ssize_t (*fgetxattr)(int, const char *, void *, size_t);
    ssize_t (*listxattr)(const char *, char *, size_t);
    ssize_t (*llistxattr)(const char *, char *, size_t);
    ssize_t (*flistxattr)(int, char *, size_t);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                       char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                        char *const[]);
};
HIDDEN extern struct real shark_real;

/* The C library's `name`, through `slot` of shark_real: resolved at load, or at first use when
 * another library's constructor calls in before this library's has run. */
HIDDEN void *shark_resolve(void **slot, const char *name);
#define REAL(field, name)                                                                      \
    ((__typeof__(shark_real.field))shark_resolve((void **)&shark_real.field, name))

#endif
