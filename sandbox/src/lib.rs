//! `shark-sandbox`: runs one command in Linux namespaces and reports exactly what it read and
//! wrote.
//!
//! This is shark's eyes. The cache can only be correct if it sees every input and every output
//! of a command, so [`run`] starts the command in fresh user, mount, pid, ipc, uts and (unless
//! [`Spec::network`]) network namespaces and observes it two ways:
//!
//! - **Writes** land in an overlayfs upper layer over each writable root; everything else is
//!   read-only, and Landlock confines writes as well. After the run the upper layers *are* the
//!   list of [`Change`]s, which [`Report::apply`] (or [`apply_changes`]) puts on the real
//!   filesystem as if the command had run there.
//! - **Reads** (and every other path lookup: stat, access, readlink, exec, absent paths) are
//!   reported by a seccomp filter as user notifications; the supervisor reads the path from the
//!   process's memory, resolves it against its cwd or dirfd, records an [`Access`] and lets the
//!   call continue.
//!
//! The crate knows nothing of stores or databases: it returns a [`Report`] (status, rusage,
//! wall time, accesses, processes, changes, [`LandlockStatus`]) and the caller decides what to
//! keep. [`check_support`] probes the kernel features and explains how to enable a missing one.
//!
//! ```no_run
//! use shark_sandbox::{run, Spec, Stdio};
//!
//! let mut spec = Spec::new(vec!["sh".into(), "-c".into(), "sort in.txt > out.txt".into()], "/data".into());
//! spec.stdout = Stdio::Null;
//! let report = run(spec)?;
//! for access in &report.accesses {
//!     println!("{:?} {}", access.kind, access.path.display());
//! }
//! report.apply()?; // out.txt appears in /data
//! # Ok::<(), shark_sandbox::SandboxError>(())
//! ```
//!
//! Pids in the report are as seen from the caller (host pids). This is the only crate of shark
//! with `unsafe` code: the raw system calls between `clone` and `execve`, the seccomp and
//! Landlock interfaces.
#![warn(missing_docs)]

mod apply;
pub mod beneath;
mod changes;
mod child;
mod error;
mod landlock;
mod mapped;
mod mountinfo;
mod mounts;
mod plan;
mod report;
mod scratch;
mod seccomp;
mod spawn;
mod spec;
mod support;

pub use apply::{apply_changes, apply_one};
pub use beneath::{Entry, Tree, TreeError};
pub use error::{Feature, InvalidSpec, SandboxError, Stage};
pub use report::{
    Access, AccessKind, Change, Fingerprint, LandlockGap, LandlockStatus, Process, Report, Rusage,
    Status, TraceStats,
};
pub use spawn::run;
pub use spec::{inherited_ignored_signals, MappedRoot, Spec, Stdio, FAST_PATH_VAR};
pub use support::{check_support, Support};
