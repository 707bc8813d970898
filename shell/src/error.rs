//! The one error type the command line reports, and how each kind maps to an exit status.
//!
//! Exit statuses: 0 success, 1 a failure of the operation (a corrupt blob, an I/O error),
//! 2 bad usage (an unknown option, a malformed run id, a path that does not exist), and a
//! command's own status when shark ran a command.

use std::error::Error as StdError;
use std::io::Write;
use std::path::PathBuf;

/// Exit status for usage errors, as in bash and most Unix tools.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for failed operations.
pub const EXIT_FAILURE: i32 = 1;

/// A user-facing error: a message, its cause chain, an optional hint and an exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user asked for something malformed or impossible.
    #[error("{message}")]
    Usage {
        /// What is wrong, naming the option, path or id.
        message: String,
        /// How to put it right.
        hint: Option<String>,
    },
    /// The shark home cannot be used.
    #[error("cannot use shark home {}", path.display())]
    Home {
        /// The home directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
        /// How to put it right.
        hint: Option<String>,
    },
    /// The operation would lose data and was not done.
    #[error("{message}")]
    Refused {
        /// What was refused and why, naming the paths.
        message: String,
        /// How to go ahead anyway.
        hint: String,
    },
    /// An operation failed.
    #[error("{message}")]
    Failed {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl CliError {
    /// A usage error with an optional hint.
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint,
        }
    }

    /// An operation failure caused by `source`.
    pub fn failed(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        CliError::Failed {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The exit status this error leaves with.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => EXIT_USAGE,
            CliError::Home { .. } | CliError::Failed { .. } | CliError::Refused { .. } => {
                EXIT_FAILURE
            }
        }
    }

    fn hint(&self) -> Option<&str> {
        match self {
            CliError::Usage { hint, .. } | CliError::Home { hint, .. } => hint.as_deref(),
            // The pack and the stat cache heal themselves: damage that reaches the user is
            // the lineage database's.
            CliError::Failed { .. } if shark_store::heal::is_damage_chain(self) => {
                Some(LINEAGE_DAMAGE_HINT)
            }
            CliError::Refused { hint, .. } => Some(hint),
            CliError::Failed { .. } => None,
        }
    }

    /// Prints `shark: error: ...`, the cause chain and the hint to stderr; returns the status.
    pub fn report(&self) -> i32 {
        let line = format!("shark: error: {}", chain(self));
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
        if let Some(hint) = self.hint() {
            let _ = writeln!(err, "hint: {hint}");
        }
        self.exit_code()
    }
}

/// What to do about a damaged lineage database.
pub const LINEAGE_DAMAGE_HINT: &str = "the lineage database (the history of your runs) is \
    damaged; `shark store verify` checks it and keeps a copy, and `shark store verify --repair` \
    rebuilds it from what can still be read";

/// Prints a clap error (or `--help`/`--version`) and returns its exit status: 0 for help and
/// version, 2 for usage errors. A closed stdout (`shark --help | head -1`) is not an error.
pub fn clap_exit(e: clap::Error) -> i32 {
    let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
    match e.print() {
        Ok(()) => code,
        Err(io) if io.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(_) => code,
    }
}

/// True when writing failed only because the reader went away (`shark log | head`).
pub fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// An error and its causes on one line, joined by `: `.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
