/* The library's rules, exported for sandbox/src/seccomp tests to compare with the Rust side:
 * linked into the crate as a static library, never preloaded. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "kinds.h"
#include "layout.h"
#include "paths.h"

int shark_check_open_kind(int flags)
{
    return shark_open_kind(flags);
}

uint64_t shark_check_hash(const char *p, uint32_t len)
{
    return shark_hash(p, len);
}

/* The canonical form of `in` written to `out` (SLOT_PATH_MAX bytes); its length, or -1. */
long shark_check_canonical(const char *in, size_t n, char *out)
{
    uint32_t len;
    return shark_canonical(in, n, out, &len) ? (long)len : -1;
}

int shark_check_magic(const char *p, uint32_t n)
{
    return shark_magic(p, n);
}

/* The layout's numbers, in the order shared.rs lists them. */
void shark_check_layout(uint64_t out[16])
{
    const uint64_t v[16] = {
        SHARK_MAGIC, SHARK_VERSION, H_CHROOTED, H_SEQ,     H_HEAD,       RING_OFFSET,
        RING_SLOTS,  SLOT_SIZE,     S_PATH,     SET_OFFSET, SET_SLOTS,   ARENA_OFFSET,
        ARENA_SIZE,  SHARED_SIZE,   STUB_COOKIE, STUB_RETURN,
    };
    memcpy(out, v, sizeof v);
}

/* K_COUNT, and the offsets of a slot's fields in the order shared.rs lists them. */
void shark_check_slot(uint64_t out[16])
{
    const uint64_t v[16] = {
        K_COUNT, S_STATE, S_SEQ, S_PID, S_KIND, S_HAS_FP, S_PATH_LEN, S_DEV,
        S_INO, S_SIZE, S_MTIME, S_CTIME, S_MTIME_NSEC, S_CTIME_NSEC, S_MODE, S_PRESENT,
    };
    memcpy(out, v, sizeof v);
}
