/* Access kinds, numbered as AccessKind's variants in sandbox/src/report.rs, and how an open's
 * flags map to one (the same rule as open_kind in sandbox/src/seccomp/syscalls.rs; check.c
 * lets that module's tests compare the two). */
#ifndef SHARK_KINDS_H
#define SHARK_KINDS_H

#include <fcntl.h>

enum shark_kind {
    K_READ = 0,
    K_LIST,
    K_EXEC,
    K_STAT,
    K_READLINK,
    K_XATTR,
    K_CREATE,
    K_REOPEN,
    K_OVERWRITE,
    K_UPDATE,
    K_APPEND,
    K_CREATE_NEW,
    K_TRUNCATE,
    K_RESIZE,
    K_MKDIR,
    K_MKNOD,
    K_SYMLINK,
    K_LINK,
    K_DELETE,
    K_RENAME_FROM,
    K_RENAME_TO,
    K_SET_ATTR,
    K_COUNT
};

static inline int shark_open_kind(int flags)
{
    int access = flags & O_ACCMODE;
    if (flags & O_PATH)
        return K_STAT;
    if (access == O_RDONLY && !(flags & O_TRUNC))
        return K_READ;
    if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
        return K_CREATE_NEW;
    if (flags & O_TRUNC)
        return K_CREATE;
    if (flags & O_APPEND)
        return K_APPEND;
    if (!(flags & O_CREAT))
        return K_REOPEN;
    if (access == O_WRONLY)
        return K_OVERWRITE;
    return K_UPDATE;
}

#endif
