/* How the library spells paths, and which ones it leaves to the supervisor. */
#ifndef SHARK_PATHS_H
#define SHARK_PATHS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"

/* `in` by its components: no empty or "." ones, no trailing '/' (how Rust compares paths).
 * False when longer than a ring slot holds. */
static inline int shark_canonical(const char *in, size_t n, char *out, uint32_t *outlen)
{
    size_t o = 0, i = 0;
    while (i < n) {
        while (i < n && in[i] == '/')
            i++;
        size_t start = i;
        while (i < n && in[i] != '/')
            i++;
        size_t len = i - start;
        if (len == 0 || (len == 1 && in[start] == '.'))
            continue;
        if (o + 1 + len > SLOT_PATH_MAX)
            return 0;
        out[o++] = '/';
        memcpy(out + o, in + start, len);
        o += len;
    }
    if (o == 0)
        out[o++] = '/';
    *outlen = (uint32_t)o;
    return 1;
}

static inline int shark_starts(const char *p, uint32_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0 && (n == k || p[k] == '/');
}

/* Paths the supervisor resolves through a magic link (paths.rs: magic_link()), or a superset. */
static inline int shark_magic(const char *p, uint32_t n)
{
    return shark_starts(p, n, "/proc") || shark_starts(p, n, "/dev/fd") ||
           (n == 10 && memcmp(p, "/dev/stdin", 10) == 0) ||
           (n == 11 && memcmp(p, "/dev/stdout", 11) == 0) ||
           (n == 11 && memcmp(p, "/dev/stderr", 11) == 0);
}

/* notify.rs: is_pseudo(), on the path as joined. */
static inline int shark_pseudo(const char *p, size_t n)
{
    return (n >= 6 && memcmp(p, "/proc/", 6) == 0) || (n >= 5 && memcmp(p, "/sys/", 5) == 0) ||
           (n >= 5 && memcmp(p, "/dev/", 5) == 0);
}

#endif
