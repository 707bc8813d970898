//! Read tracing with seccomp user notification: the filter ([`filter`]), the table of traced
//! calls ([`syscalls`]) and the supervisor's loop ([`notify`]), and the fast path that records
//! most calls of dynamically linked programs without a notification ([`fast`], [`shared`]).

pub(crate) mod fast;
pub(crate) mod filter;
mod memory;
pub(crate) mod notify;
mod paths;
pub(crate) mod shared;
pub(crate) mod sockets;
pub(crate) mod syscalls;
