//! The command-line interface: the single source of truth for `--help`, the man pages and the
//! shell completions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Shark: a shell that records what every command reads and writes, and reuses results whose
/// inputs have not changed.
#[derive(Debug, Parser)]
#[command(name = "shark", version, about, long_about = None)]
pub struct Cli {
    /// Where shark keeps its store and lineage database [default: $XDG_DATA_HOME/shark, else
    /// ~/.local/share/shark]
    #[arg(long, global = true, env = "SHARK_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Shark's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect and check the content-addressed store.
    #[command(subcommand)]
    Store(StoreCommand),
}

/// `shark store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Count blobs and bytes: logical size, stored size and the compression ratio.
    Stats(StatsArgs),
    /// Re-hash every blob; exit 1 and name each blob whose content does not match its digest.
    Verify,
}

/// Options of `shark store stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
