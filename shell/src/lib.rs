//! `shark-shell`: everything the user touches.
//!
//! - [`cli`]: the clap definitions of `shark` and its subcommands (also the source of the man
//!   pages and shell completions);
//! - [`error`]: the one user-facing error type, which maps each kind of failure to an exit status
//!   and prints its cause chain and a hint;
//! - [`home`]: where shark keeps its store and database (`--home`, `SHARK_HOME`, XDG).
//!
//! The binary's `main` only calls [`main`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod error;
pub mod home;
mod store_cmd;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Runs shark with the process's arguments and returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return error::clap_exit(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

fn run(cli: Cli) -> Result<i32, CliError> {
    let home = home::Home::resolve(cli.home.as_deref())?;
    match cli.command {
        Command::Store(cmd) => store_cmd::run(&home, cmd),
    }
}
