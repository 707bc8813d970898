//! The crate's error type.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while running a command in the sandbox or applying its changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A kernel feature the sandbox needs is missing or disabled.
    #[error("{feature} is not available; {hint}")]
    Unsupported {
        /// The missing feature.
        feature: Feature,
        /// How to enable it.
        hint: &'static str,
        /// The error the probe got.
        #[source]
        source: Errno,
    },
    /// The spec cannot be run as given.
    #[error("invalid sandbox spec: {reason}")]
    InvalidSpec {
        /// What is wrong with it.
        reason: InvalidSpec,
    },
    /// A file operation of the sandbox itself failed (scratch directories, id maps).
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A system call of the sandbox's supervisor failed.
    #[error("{op}")]
    Sys {
        /// Which call.
        op: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Setting up the sandbox inside its namespaces failed.
    #[error("sandbox setup failed: {stage}{}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Setup {
        /// The step that failed.
        stage: Stage,
        /// The path it was about, if any.
        path: Option<PathBuf>,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The command could not be executed (not found, not executable).
    #[error("cannot execute {}", program.to_string_lossy())]
    Exec {
        /// `argv[0]`.
        program: OsString,
        /// The errno from `execve` (`ENOENT` when not found on `PATH`).
        #[source]
        source: Errno,
    },
    /// Reading the overlay upper layer after the run failed.
    #[error("reading the changes at {}", path.display())]
    Changes {
        /// The path in the upper layer.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Applying a change to the real filesystem failed or was refused.
    #[error("applying the change to {}", path.display())]
    Apply {
        /// The real path being changed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: crate::TreeError,
    },
}

impl SandboxError {
    /// Whether the program was not found: `argv[0]` names no file, on `PATH` or as a path. A
    /// shell prints `NAME: command not found` and exits with 127 for this.
    pub fn is_command_not_found(&self) -> bool {
        matches!(
            self,
            SandboxError::Exec {
                source: Errno::ENOENT | Errno::ENOTDIR,
                ..
            }
        )
    }

    /// The exit status a shell reports when the command could not be executed: 127 when it was
    /// not found, 126 when it was found but could not run (not executable, a bad format). `None`
    /// for every other error, which is the sandbox's failure, not the command's.
    pub fn exec_exit_code(&self) -> Option<i32> {
        match self {
            _ if self.is_command_not_found() => Some(127),
            SandboxError::Exec { .. } => Some(126),
            _ => None,
        }
    }
}

/// Why a spec is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidSpec {
    /// `argv` is empty.
    EmptyArgv,
    /// An argument, environment entry or path contains a NUL byte.
    NulByte,
    /// A path (cwd, writable root, read-only path, scratch dir) is not absolute.
    RelativePath(PathBuf),
    /// A path contains a character overlayfs options cannot carry (`,`, `:` or `\`).
    UnmountablePath(PathBuf),
    /// A mount point lies inside a writable root: overlayfs in a user namespace cannot cover a
    /// directory with mounts beneath it.
    MountInsideRoot {
        /// The writable root.
        root: PathBuf,
        /// The mount point inside it.
        mount: PathBuf,
    },
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidSpec::EmptyArgv => f.write_str("the command is empty"),
            InvalidSpec::NulByte => {
                f.write_str("an argument, variable or path contains a NUL byte")
            }
            InvalidSpec::RelativePath(p) => write!(f, "{} is not an absolute path", p.display()),
            InvalidSpec::MountInsideRoot { root, mount } => write!(
                f,
                "{} is a mount point inside the writable root {}, which overlayfs in a user \
                 namespace cannot cover; unmount it or leave {} out of the writable roots",
                mount.display(),
                root.display(),
                root.display()
            ),
            InvalidSpec::UnmountablePath(p) => {
                write!(
                    f,
                    "{} contains ',', ':' or '\\', which overlayfs cannot mount",
                    p.display()
                )
            }
        }
    }
}

/// A kernel feature the sandbox relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Unprivileged user namespaces.
    UserNamespaces,
    /// Mounting overlayfs inside a user namespace.
    OverlayInUserNamespace,
    /// Seccomp user notification.
    SeccompNotify,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::UserNamespaces => "unprivileged user namespaces",
            Feature::OverlayInUserNamespace => "overlayfs in a user namespace",
            Feature::SeccompNotify => "seccomp user notification",
        })
    }
}

/// A step of the sandbox setup that runs inside the namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Waiting for the supervisor to write the uid/gid maps.
    WaitForIdMaps,
    /// Making the mount tree private.
    MakePrivate,
    /// Binding the host root onto the new root.
    BindRoot,
    /// Making the new root read-only.
    ReadOnlyRoot,
    /// Mounting a fresh `/proc`.
    MountProc,
    /// Building the minimal `/dev`.
    MountDev,
    /// Mounting the overlay on a writable root.
    MountOverlay,
    /// Re-binding a read-only path.
    BindReadOnly,
    /// Hiding a path behind an empty read-only directory (or `/dev/null` for a file), or
    /// making a kernel interface under `/proc` read-only.
    Mask,
    /// Bringing the loopback interface up.
    LoopbackUp,
    /// Switching to the new root.
    PivotRoot,
    /// Entering the working directory.
    Chdir,
    /// Forking the command's process.
    Fork,
    /// Installing the command's stdin/stdout/stderr.
    Stdio,
    /// Setting `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// Adding a Landlock rule or restricting the process.
    Landlock,
    /// Installing the seccomp filter.
    Seccomp,
    /// Handing the seccomp listener to the supervisor.
    SendListener,
}

impl Stage {
    pub(crate) const ALL: [Stage; 18] = [
        Stage::WaitForIdMaps,
        Stage::MakePrivate,
        Stage::BindRoot,
        Stage::ReadOnlyRoot,
        Stage::MountProc,
        Stage::MountDev,
        Stage::MountOverlay,
        Stage::BindReadOnly,
        Stage::Mask,
        Stage::LoopbackUp,
        Stage::PivotRoot,
        Stage::Chdir,
        Stage::Fork,
        Stage::Stdio,
        Stage::NoNewPrivs,
        Stage::Landlock,
        Stage::Seccomp,
        Stage::SendListener,
    ];
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::WaitForIdMaps => "wait for the uid/gid maps",
            Stage::MakePrivate => "make the mount tree private",
            Stage::BindRoot => "bind the root",
            Stage::ReadOnlyRoot => "make the root read-only",
            Stage::MountProc => "mount /proc",
            Stage::MountDev => "set up /dev at",
            Stage::MountOverlay => "mount overlay on",
            Stage::BindReadOnly => "bind read-only",
            Stage::Mask => "hide or protect",
            Stage::LoopbackUp => "bring the loopback interface up",
            Stage::PivotRoot => "pivot_root",
            Stage::Chdir => "chdir to",
            Stage::Fork => "fork the command",
            Stage::Stdio => "set up stdio",
            Stage::NoNewPrivs => "set no_new_privs",
            Stage::Landlock => "apply Landlock rule for",
            Stage::Seccomp => "install the seccomp filter",
            Stage::SendListener => "hand over the seccomp listener",
        })
    }
}
