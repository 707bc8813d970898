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
mod commands;
pub mod error;
pub mod exec;
pub mod home;
pub mod man;
pub mod markdown;
mod repl;
pub mod script;
pub mod session;
pub mod state;
pub mod undo;

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
    if let Some(Command::Completions(args)) = &cli.command {
        return man::completions(args.shell);
    }
    let home = home::Home::resolve(cli.home.as_deref())?.with_remote(exec::remote::settings(&cli)?);
    if let Some(line) = cli.line {
        // `shark -c LINE [$0 [ARGS...]]`, as bash.
        let args = match cli.command {
            None => Vec::new(),
            Some(Command::Script(args)) => args,
            Some(_) => {
                return Err(CliError::usage(
                    "-c LINE cannot be combined with a subcommand",
                    Some("words after -c LINE are $0 and the positional parameters".into()),
                ))
            }
        };
        return commands::run::line(&home, line, args, cli.fresh, cli.net, cli.reuse_net);
    }
    match cli.command {
        Some(Command::Store(cmd)) => commands::store::run(&home, cmd),
        Some(Command::Run(args)) => commands::run::argv(&home, args),
        Some(Command::Log(args)) => commands::query::log(&home, &args),
        Some(Command::Show(args)) => commands::query::show(&home, &args),
        Some(Command::Lineage(args)) => commands::query::lineage(&home, &args),
        Some(Command::Why(args)) => commands::query::why(&home, &args),
        Some(Command::Replay(args)) => commands::replay::run(&home, &args),
        Some(Command::Md(args)) => commands::md::command(&home, &args),
        Some(Command::Undo(args)) => commands::undo::undo(&home, &args),
        Some(Command::Checkout(args)) => commands::undo::checkout(&home, &args),
        Some(Command::Snapshots(args)) => commands::undo::snapshots(&home, &args),
        Some(Command::Template(args)) => commands::md::template(&args),
        Some(Command::Export(args)) => commands::export::export(&home, &args),
        Some(Command::Serve(args)) => commands::serve::run(&home, &args),
        Some(Command::Completions(_)) => unreachable!("handled before the home is resolved"),
        Some(Command::Script(mut args)) => {
            let path = std::path::PathBuf::from(args.remove(0));
            commands::script::run_file(&home, &path, args)
        }
        None if cli.interactive || std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            let login = cli.login
                || std::env::args_os()
                    .next()
                    .is_some_and(|a| a.to_string_lossy().starts_with('-'));
            repl::run(&home, login)
        }
        None => commands::script::run_stdin(&home),
    }
}
