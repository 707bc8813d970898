/* The C library's file calls that shark observes, wrapped: each records its access through
 * observe() and makes the same system call the C library would, through the stub; when
 * observe() cannot record it, the C library's own function runs and its call traps. Calls
 * the C library makes internally (the dynamic loader, locale files, fopen's own open) never
 * come here and always trap.
 *
 * Each wrapper makes exactly the system call its C library function makes (glibc 2.36 on
 * x86_64), so the kernel does the same, and the supervisor would have recorded the same
 * access: open -> openat, stat -> newfstatat, access -> faccessat2, readlink -> readlinkat.
 * One difference: these calls are not thread cancellation points. */
#include "fast.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- open ---- */

/* An open that may append takes the slow path: before it happens, the supervisor has the
 * sandbox copy the file and notes the copy's size, so that exactly the bytes the command
 * appended are applied (notify.rs: copy_up_for_append). The filter notifies such an open
 * even through the stub. */
static int may_append(int flags)
{
    return (flags & O_APPEND) != 0;
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    if (!may_append(flags) && shark_observe(dirfd, path, shark_open_kind(flags)) == FAST)
        return (int)shark_ret(shark_stub(SYS_openat, dirfd, (long)path, flags, mode, 0));
    return REAL(openat, "openat64")(dirfd, path, flags, mode);
}

static int needs_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define MODE_ARG(flags, mode)                                                                  \
    mode_t mode = 0;                                                                           \
    if (needs_mode(flags)) {                                                                   \
        va_list ap;                                                                            \
        va_start(ap, flags);                                                                   \
        mode = va_arg(ap, mode_t);                                                             \
        va_end(ap);                                                                            \
    }

EXPORT int open(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(AT_FDCWD, path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(dirfd, path, flags, mode);
}

/* The _FORTIFY_SOURCE entry points (no mode: the C library aborts if one is needed). */
EXPORT int __open_2(const char *path, int flags)
{
    if (needs_mode(flags))
        return REAL(openat, "openat64")(AT_FDCWD, path, flags); /* its own check fires */
    return do_openat(AT_FDCWD, path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
    return __open_2(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    if (needs_mode(flags))
        return REAL(openat, "openat64")(dirfd, path, flags);
    return do_openat(dirfd, path, flags, 0);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return __openat_2(dirfd, path, flags);
}

EXPORT int creat(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
    return creat(path, mode);
}

/* ---- fopen, opendir: the open made here, the stream or directory from the descriptor ---- */

/* The open flags glibc's fopen derives from `mode`; -1 for what is left to it. */
static int fopen_flags(const char *mode)
{
    int flags;
    switch (mode[0]) {
    case 'r':
        flags = O_RDONLY;
        break;
    case 'w':
        flags = O_WRONLY | O_CREAT | O_TRUNC;
        break;
    case 'a':
        flags = O_WRONLY | O_CREAT | O_APPEND;
        break;
    default:
        return -1;
    }
    for (int i = 1; i < 7 && mode[i]; i++) {
        switch (mode[i]) {
        case '+':
            flags = (flags & ~O_ACCMODE) | O_RDWR;
            break;
        case 'x':
            flags |= O_EXCL;
            break;
        case 'e':
            flags |= O_CLOEXEC;
            break;
        case 'b':
        case 'm':
        case 'c':
            break;
        default:
            return -1; /* ",ccs=" and anything unusual */
        }
    }
    return flags;
}

static FILE *do_fopen(const char *path, const char *mode, void *(*real)(const char *,
                                                                        const char *))
{
    int flags = path && mode ? fopen_flags(mode) : -1;
    if (flags < 0 || may_append(flags) ||
        shark_observe(AT_FDCWD, path, shark_open_kind(flags)) != FAST)
        return real(path, mode);
    long fd = shark_stub(SYS_openat, AT_FDCWD, (long)path, flags, 0666, 0);
    if (fd < 0) {
        errno = (int)-fd;
        return NULL;
    }
    FILE *f = fdopen((int)fd, mode);
    if (!f) {
        int e = errno;
        shark_raw(SYS_close, fd, 0, 0, 0, 0);
        errno = e;
    }
    return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
    return do_fopen(path, mode, REAL(fopen, "fopen"));
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    return do_fopen(path, mode, REAL(fopen64, "fopen64"));
}

EXPORT DIR *opendir(const char *name)
{
    /* glibc answers an empty name itself, without a system call. */
    if (!name || !name[0] || shark_observe(AT_FDCWD, name, K_READ) != FAST)
        return REAL(opendir, "opendir")(name);
    int flags = O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC;
    long fd = shark_stub(SYS_openat, AT_FDCWD, (long)name, flags, 0, 0);
    if (fd < 0) {
        errno = (int)-fd;
        return NULL;
    }
    DIR *d = fdopendir((int)fd);
    if (!d) {
        int e = errno;
        shark_raw(SYS_close, fd, 0, 0, 0, 0);
        errno = e;
    }
    return d;
}

/* ---- stat, access ---- */

static int do_fstatat(int dirfd, const char *path, void *buf, int flags)
{
    /* With AT_EMPTY_PATH it is fstat: the filter lets it through, nothing is recorded. */
    if (!(flags & AT_EMPTY_PATH) && shark_observe(dirfd, path, K_STAT) == FAST)
        return (int)shark_ret(shark_stub(SYS_newfstatat, dirfd, (long)path, (long)buf, flags, 0));
    return REAL(fstatat, "fstatat64")(dirfd, path, buf, flags);
}

EXPORT int stat(const char *path, struct stat *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, 0);
}

EXPORT int stat64(const char *path, struct stat64 *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, 0);
}

EXPORT int lstat(const char *path, struct stat *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

EXPORT int lstat64(const char *path, struct stat64 *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *buf, int flags)
{
    return do_fstatat(dirfd, path, buf, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags)
{
    return do_fstatat(dirfd, path, buf, flags);
}

/* Programs built against glibc before 2.33 call these; version 1 is the kernel's struct. */
EXPORT int __xstat(int ver, const char *path, struct stat *buf)
{
    return ver == 1 ? do_fstatat(AT_FDCWD, path, buf, 0) : REAL(xstat, "__xstat64")(ver, path, buf);
}

EXPORT int __xstat64(int ver, const char *path, struct stat64 *buf)
{
    return __xstat(ver, path, (struct stat *)buf);
}

EXPORT int __lxstat(int ver, const char *path, struct stat *buf)
{
    return ver == 1 ? do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)
                    : REAL(lxstat, "__lxstat64")(ver, path, buf);
}

EXPORT int __lxstat64(int ver, const char *path, struct stat64 *buf)
{
    return __lxstat(ver, path, (struct stat *)buf);
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *buf, int flags)
{
    return ver == 1 ? do_fstatat(dirfd, path, buf, flags)
                    : REAL(fxstatat, "__fxstatat64")(ver, dirfd, path, buf, flags);
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *buf, int flags)
{
    return __fxstatat(ver, dirfd, path, (struct stat *)buf, flags);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *buf)
{
    if (!(flags & AT_EMPTY_PATH) && shark_observe(dirfd, path, K_STAT) == FAST)
        return (int)shark_ret(
            shark_stub(SYS_statx, dirfd, (long)path, flags, mask, (long)buf));
    return REAL(statx, "statx")(dirfd, path, flags, mask, buf);
}

static int do_faccessat(int dirfd, const char *path, int mode, int flags)
{
    if (shark_observe(dirfd, path, K_STAT) == FAST)
        return (int)shark_ret(shark_stub(SYS_faccessat2, dirfd, (long)path, mode, flags, 0));
    return REAL(faccessat, "faccessat")(dirfd, path, mode, flags);
}

EXPORT int access(const char *path, int mode)
{
    return do_faccessat(AT_FDCWD, path, mode, 0);
}

EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
    return do_faccessat(dirfd, path, mode, flags);
}

/* ---- readlink ---- */

static ssize_t do_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    if (shark_observe(dirfd, path, K_READLINK) == FAST)
        return shark_ret(shark_stub(SYS_readlinkat, dirfd, (long)path, (long)buf, (long)size, 0));
    return REAL(readlinkat, "readlinkat")(dirfd, path, buf, size);
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
    return do_readlinkat(AT_FDCWD, path, buf, size);
}

EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    return do_readlinkat(dirfd, path, buf, size);
}

/* ---- extended attributes (read) ---- */

EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    if (shark_observe(AT_FDCWD, path, K_XATTR) == FAST)
        return shark_ret(
            shark_stub(SYS_getxattr, (long)path, (long)name, (long)value, (long)size, 0));
    return REAL(getxattr, "getxattr")(path, name, value, size);
}

EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    if (shark_observe(AT_FDCWD, path, K_XATTR) == FAST)
        return shark_ret(
            shark_stub(SYS_lgetxattr, (long)path, (long)name, (long)value, (long)size, 0));
    return REAL(lgetxattr, "lgetxattr")(path, name, value, size);
}

EXPORT ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
    if (shark_observe(fd, "", K_XATTR) == FAST)
        return shark_ret(shark_stub(SYS_fgetxattr, fd, (long)name, (long)value, (long)size, 0));
    return REAL(fgetxattr, "fgetxattr")(fd, name, value, size);
}

EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
    if (shark_observe(AT_FDCWD, path, K_XATTR) == FAST)
        return shark_ret(shark_stub(SYS_listxattr, (long)path, (long)list, (long)size, 0, 0));
    return REAL(listxattr, "listxattr")(path, list, size);
}

EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
    if (shark_observe(AT_FDCWD, path, K_XATTR) == FAST)
        return shark_ret(shark_stub(SYS_llistxattr, (long)path, (long)list, (long)size, 0, 0));
    return REAL(llistxattr, "llistxattr")(path, list, size);
}

EXPORT ssize_t flistxattr(int fd, char *list, size_t size)
{
    if (shark_observe(fd, "", K_XATTR) == FAST)
        return shark_ret(shark_stub(SYS_flistxattr, fd, (long)list, (long)size, 0, 0));
    return REAL(flistxattr, "flistxattr")(fd, list, size);
}
