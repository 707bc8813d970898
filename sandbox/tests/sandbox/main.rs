//! Integration tests of the sandbox on real programs and real kernel features.
//!
//! Every test runs twice when started as root: once as root, and once re-executed under
//! `setpriv` as uid/gid 65534 (see [`common::both_legs`]), so the unprivileged path (user
//! namespace with a single mapped id) is exercised too.

#[macro_use]
mod common;
mod fastpath;
mod fastpath_safe;
mod files;
mod isolation;
mod lifecycle;
mod observe;
mod programs;
