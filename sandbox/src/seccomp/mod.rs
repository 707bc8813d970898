//! Read tracing with seccomp user notification: the filter ([`filter`]), the table of traced
//! calls ([`syscalls`]) and the supervisor's loop ([`notify`]).

pub(crate) mod filter;
mod memory;
pub(crate) mod notify;
mod paths;
pub(crate) mod sockets;
pub(crate) mod syscalls;
