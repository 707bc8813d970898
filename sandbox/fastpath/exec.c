/* The exec family, wrapped only to hand the library on: the program's environment lost the
 * library at load (core.c), so a program it runs gets LD_PRELOAD back, with this library last
 * after any the program named itself. Only a dynamically linked target gets it (a static one
 * would see the variable, and never load the library), and nothing is handed on once a
 * process of the sandbox changed its root. The exec itself always traps: the supervisor
 * records every program run.
 *
 * Everything is on the stack: these run in vfork children, where the heap is the parent's.
 * system() and popen() are not wrapped (their children run without the fast path). */
#include "fast.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#define PRELOAD "LD_PRELOAD="
#define MAX_ENV 8192
#define MAX_ARGS 65536

static int dynamic_fd(int fd, int depth);

/* Whether the program at `path` (relative to `dirfd`) loads through the dynamic loader:
 * an ELF file with an interpreter, or a script whose interpreter is one. */
static int dynamic_at(int dirfd, const char *path, int depth)
{
    long fd = shark_stub(SYS_openat, dirfd, (long)path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0, 0);
    if (fd < 0)
        return 0;
    int dynamic = dynamic_fd((int)fd, depth);
    shark_raw(SYS_close, fd, 0, 0, 0, 0);
    return dynamic;
}

static int script_dynamic(const unsigned char *head, long n, int depth)
{
    char interp[256];
    long i = 2, j = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\t'))
        i++;
    while (i < n && j < 255 && head[i] != ' ' && head[i] != '\t' && head[i] != '\n')
        interp[j++] = (char)head[i++];
    interp[j] = '\0';
    return j > 0 && depth < 2 && dynamic_at(AT_FDCWD, interp, depth + 1);
}

static int dynamic_fd(int fd, int depth)
{
    unsigned char head[256];
    long n = shark_raw(SYS_pread64, fd, (long)head, sizeof head, 0, 0);
    if (n >= 2 && head[0] == '#' && head[1] == '!')
        return script_dynamic(head, n, depth);
    if (n < (long)sizeof(Elf64_Ehdr) || memcmp(head, ELFMAG, SELFMAG) != 0 ||
        head[EI_CLASS] != ELFCLASS64)
        return 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)head;
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64)
        return 0;
    Elf64_Phdr ph[64];
    long size = (long)eh->e_phnum * (long)sizeof(Elf64_Phdr);
    if (shark_raw(SYS_pread64, fd, (long)ph, size, (long)eh->e_phoff, 0) != size)
        return 0;
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_INTERP)
            return 1;
    return 0;
}

/* The program execvp(file) would run: `file` if it has a '/', else the first executable
 * file of that name along PATH (written to `buf`). NULL when there is none. */
static const char *search(const char *file, char *buf, size_t cap)
{
    if (strchr(file, '/'))
        return file;
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    size_t flen = strlen(file);
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        if (dlen + 1 + flen + 1 <= cap) {
            memcpy(buf, dlen ? p : ".", dlen ? dlen : 1);
            size_t at = dlen ? dlen : 1;
            buf[at++] = '/';
            memcpy(buf + at, file, flen + 1);
            if (shark_stub(SYS_faccessat2, AT_FDCWD, (long)buf, X_OK, 0, 0) == 0)
                return buf;
        }
        if (!*end)
            return NULL;
        p = end;
    }
}

/* Counts an environment (NULL counts as empty); -1 when too large to copy on the stack. */
static long env_count(char *const envp[])
{
    long n = 0;
    while (envp && envp[n])
        if (++n > MAX_ENV)
            return -1;
    return n;
}

/* Fills `out` (room for count + 2 pointers) with `envp` and its first LD_PRELOAD (the one
 * getenv() reads) naming this library last; `value` has room for the longest LD_PRELOAD entry
 * plus the library's path. */
static char *const *with_library(char *const envp[], long count, char **out, char *value)
{
    long at = -1;
    for (long i = 0; i < count; i++) {
        out[i] = envp[i];
        if (at < 0 && strncmp(envp[i], PRELOAD, sizeof PRELOAD - 1) == 0)
            at = i;
    }
    const char *self = SHARK_SELF;
    if (at < 0) {
        strcpy(value, PRELOAD);
        strcat(value, self);
        out[count++] = value;
    } else {
        const char *old = envp[at];
        size_t n = strlen(old), s = strlen(self);
        if (n >= s && strcmp(old + n - s, self) == 0)
            return envp; /* handed on already */
        memcpy(value, old, n);
        value[n] = ':';
        memcpy(value + n + 1, self, s + 1);
        out[at] = value;
    }
    out[count] = NULL;
    return out;
}

static size_t longest_preload(char *const envp[], long count)
{
    size_t longest = 0;
    for (long i = 0; i < count; i++)
        if (strncmp(envp[i], PRELOAD, sizeof PRELOAD - 1) == 0 && strlen(envp[i]) > longest)
            longest = strlen(envp[i]);
    return longest + sizeof PRELOAD + sizeof SHARK_SELF + 2;
}

/* Runs `call` with the environment to give a program whose dynamic-ness is `dynamic`. */
#define WITH_ENV(envp, dynamic, call)                                                          \
    do {                                                                                       \
        long count_ = env_count(envp);                                                         \
        if (count_ < 0 || !shark_inherits() || !(dynamic)) {                                   \
            char *const *env = (envp);                                                         \
            return call;                                                                       \
        }                                                                                      \
        char *out_[count_ + 2];                                                                \
        char value_[longest_preload(envp, count_)];                                            \
        char *const *env = with_library(envp, count_, out_, value_);                           \
        return call;                                                                           \
    } while (0)

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    WITH_ENV(envp, path && dynamic_at(AT_FDCWD, path, 0) && shark_worth_preloading(path),
             REAL(execve, "execve")(path, argv, env));
}

EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    char buf[4096];
    const char *target = file && shark_inherits() ? search(file, buf, sizeof buf) : NULL;
    WITH_ENV(envp, target && dynamic_at(AT_FDCWD, target, 0) && shark_worth_preloading(target),
             REAL(execvpe, "execvpe")(file, argv, env));
}

EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    WITH_ENV(envp, dynamic_fd(fd, 0), REAL(fexecve, "fexecve")(fd, argv, env));
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                    int flags)
{
    int by_fd = path && !path[0] && (flags & AT_EMPTY_PATH);
    WITH_ENV(envp, path && (by_fd ? dynamic_fd(dirfd, 0) : dynamic_at(dirfd, path, 0)),
             REAL(execveat, "execveat")(dirfd, path, argv, env, flags));
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    WITH_ENV(envp, path && dynamic_at(AT_FDCWD, path, 0) && shark_worth_preloading(path),
             REAL(posix_spawn, "posix_spawn")(pid, path, actions, attr, argv, env));
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    char buf[4096];
    const char *target = file && shark_inherits() ? search(file, buf, sizeof buf) : NULL;
    WITH_ENV(envp, target && dynamic_at(AT_FDCWD, target, 0) && shark_worth_preloading(target),
             REAL(posix_spawnp, "posix_spawnp")(pid, file, actions, attr, argv, env));
}

/* The execl family: the arguments gathered on the stack, then as above. */
#define GATHER(first, argv, extra)                                                             \
    long n_ = 1;                                                                               \
    va_list ap_;                                                                               \
    va_start(ap_, first);                                                                      \
    while (va_arg(ap_, const char *))                                                          \
        if (++n_ > MAX_ARGS) {                                                                 \
            va_end(ap_);                                                                       \
            errno = E2BIG;                                                                     \
            return -1;                                                                         \
        }                                                                                      \
    va_end(ap_);                                                                               \
    char *argv[n_ + 1];                                                                        \
    argv[0] = (char *)(first);                                                                 \
    va_start(ap_, first);                                                                      \
    for (long i_ = 1; i_ <= n_; i_++)                                                          \
        argv[i_] = va_arg(ap_, char *);                                                        \
    extra;                                                                                     \
    va_end(ap_)

EXPORT int execl(const char *path, const char *arg, ...)
{
    GATHER(arg, argv, (void)0);
    return execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    GATHER(arg, argv, (void)0);
    return execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    char *const *envp;
    GATHER(arg, argv, envp = va_arg(ap_, char *const *));
    return execve(path, argv, envp);
}
