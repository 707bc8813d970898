//! The command-line interface: the single source of truth for `--help`, the man pages and the
//! shell completions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Shark: a shell that records what every command reads and writes, and reuses results whose
/// inputs have not changed.
#[derive(Debug, Parser)]
#[command(
    name = "shark",
    version,
    override_usage = "shark [OPTIONS]                          (an interactive shell on a terminal)\n       \
                      shark [OPTIONS] SCRIPT [ARGS]...         (each command of SCRIPT memoized)\n       \
                      shark [OPTIONS] -c LINE [NAME [ARGS]...]\n       \
                      shark [OPTIONS] <COMMAND>",
    after_help = "Every command runs in a sandbox; what it reads and writes is recorded, and a \
                  command whose inputs have not changed is reused instead of run again. See \
                  shark(1) and `help` in the interactive shell."
)]
pub struct Cli {
    /// Run one command line (bash syntax) in the sandbox, reusing a recorded run when nothing
    /// it read has changed.
    #[arg(short = 'c', value_name = "LINE")]
    pub line: Option<String>,

    /// With -c: run even if a recorded run could be reused.
    #[arg(long, requires = "line")]
    pub fresh: bool,

    /// With -c: allow network access (such runs are recorded but never reused).
    #[arg(long, requires = "line")]
    pub net: bool,

    /// With --net: reuse the run like any other (you vouch that what it fetches is fixed).
    #[arg(long, requires = "net")]
    pub reuse_net: bool,

    /// Where shark keeps its store and lineage database [default: $XDG_DATA_HOME/shark, else
    /// ~/.local/share/shark]
    #[arg(long, global = true, env = "SHARK_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Act as a login shell: read the profile (~/.config/shark/profile) first.
    #[arg(short = 'l', long)]
    pub login: bool,

    /// Act as an interactive shell even if standard input is not a terminal.
    #[arg(short = 'i', conflicts_with = "line")]
    pub interactive: bool,

    /// What to do (a subcommand, or a script to run with its arguments).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Shark's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one program with its arguments in the sandbox, or reuse a recorded run.
    Run(RunArgs),
    /// List recent runs, newest first.
    Log(LogArgs),
    /// Show one run with its inputs and outputs.
    Show(ShowArgs),
    /// Show which runs produced a file's current content, back to its sources.
    Lineage(LineageArgs),
    /// Explain why a command ran instead of being reused (or what it reused).
    Why(WhyArgs),
    /// Re-execute a recorded computation from the store and compare its outputs.
    Replay(ReplayArgs),
    /// Run a Shark markdown document's blocks and write the processed document.
    Md(MdArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Inspect and check the content-addressed store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// A script to run, step by step (`shark SCRIPT [ARGS...]`).
    #[command(external_subcommand)]
    Script(Vec<OsString>),
}

/// `shark store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Count blobs and bytes: logical size, stored size and the compression ratio.
    Stats(StatsArgs),
    /// Re-hash every blob and check every database; exit 1 and name each blob whose
    /// content does not match its digest, each blob a reusable run needs that is missing,
    /// and each damaged database (the pack and the stat cache are healed, the lineage
    /// database is copied aside and left as it is unless --repair is given).
    Verify(VerifyArgs),
    /// Remove blobs that no kept run refers to, and report what was freed.
    Gc(GcArgs),
}

/// Options of `shark store verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Rebuild a damaged lineage database from what can still be read of it (a copy of the
    /// damaged file is kept): runs recovered whole are kept for lineage but no longer
    /// reused, runs that cannot be read whole are dropped.
    #[arg(long)]
    pub repair: bool,
}

/// Options of `shark store gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep only runs started in the last N days (and the runs they reused); by default
    /// every recorded run is kept and only unreferenced blobs go.
    #[arg(long, value_name = "N")]
    pub keep_days: Option<u64>,
    /// Only report what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `shark replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A run id, or a file whose producing chain to replay.
    #[arg(value_name = "RUN|PATH")]
    pub target: String,
    /// Where to build the scratch tree (default: a new temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Options of `shark md`.
#[derive(Debug, Args)]
pub struct MdArgs {
    /// The Shark markdown document.
    #[arg(value_name = "DOC")]
    pub doc: PathBuf,
    /// Where to write the processed document [default: DOC's name with `.out.md`].
    #[arg(short, long, value_name = "FILE", conflicts_with = "dot")]
    pub output: Option<PathBuf>,
    /// Print the document's dataflow graph (Graphviz) from the recorded runs instead.
    #[arg(long)]
    pub dot: bool,
    /// Run every block even if a recorded run could be reused.
    #[arg(long)]
    pub fresh: bool,
}

/// Options of `shark store stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `shark run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run even if a recorded run could be reused.
    #[arg(long)]
    pub fresh: bool,
    /// Allow network access (such runs are recorded but never reused).
    #[arg(long)]
    pub net: bool,
    /// With --net: reuse the run like any other (you vouch that what it fetches is fixed).
    #[arg(long, requires = "net")]
    pub reuse_net: bool,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROG"
    )]
    pub argv: Vec<std::ffi::OsString>,
}

/// Options of `shark log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// How many runs to list.
    #[arg(
        short = 'n',
        long = "max-count",
        default_value_t = 20,
        value_name = "N"
    )]
    pub count: usize,
    /// Print JSON Lines, one run per line.
    #[arg(long)]
    pub json: bool,
}

/// Options of `shark show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (as listed by `shark log`).
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Options of `shark lineage`.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The file whose history to show.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Print nested JSON.
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
    /// Print a Graphviz graph.
    #[arg(long)]
    pub dot: bool,
    /// Also list system files (interpreters, libraries) among the sources.
    #[arg(long)]
    pub system: bool,
    /// How many producing runs deep to follow.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub depth: usize,
}

/// Options of `shark why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// A run id, or a path whose producing command to explain.
    #[arg(value_name = "PATH|RUN")]
    pub target: String,
}

/// Options of `shark completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}
