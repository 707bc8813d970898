//! The command-line interface: the single source of truth for `--help`, the man pages and the
//! shell completions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod texts;
use texts::*;

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
                  shark(1) and `help` in the interactive shell.",
    after_long_help = EXAMPLES_SHARK
)]
pub struct Cli {
    /// Run one command line (bash syntax) in the sandbox, reusing a recorded run when nothing
    /// it read has changed.
    #[arg(short = 'c', value_name = "LINE")]
    pub line: Option<OsString>,

    /// With -c LINE or a SCRIPT: run every command even if a recorded run could be reused.
    #[arg(long)]
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
    #[command(after_long_help = EXAMPLES_RUN)]
    Run(RunArgs),
    /// List recent runs, newest first.
    #[command(after_long_help = EXAMPLES_LOG)]
    Log(LogArgs),
    /// Show one run (the latest by default) with its inputs and outputs.
    #[command(after_long_help = EXAMPLES_SHOW)]
    Show(ShowArgs),
    /// Show which runs produced a file's current content, back to its sources.
    #[command(after_long_help = EXAMPLES_LINEAGE)]
    Lineage(LineageArgs),
    /// Explain why a command ran instead of being reused (or what it reused).
    #[command(after_long_help = EXAMPLES_WHY)]
    Why(WhyArgs),
    /// Bring back the version of a file that a recorded run wrote (or read).
    #[command(after_long_help = EXAMPLES_RESTORE)]
    Restore(RestoreArgs),
    /// Re-execute a recorded computation from the store and compare its outputs.
    #[command(after_long_help = EXAMPLES_REPLAY)]
    Replay(ReplayArgs),
    /// Run a Shark markdown document's blocks and write the processed document.
    #[command(long_about = MD_ABOUT, after_long_help = EXAMPLES_MD)]
    Md(MdArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(after_long_help = EXAMPLES_COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Inspect and check the content-addressed store.
    #[command(subcommand, after_long_help = EXAMPLES_STORE)]
    Store(StoreCommand),
    /// A script to run, step by step (`shark SCRIPT [ARGS...]`).
    #[command(external_subcommand)]
    Script(Vec<OsString>),
}

/// `shark store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Count blobs and bytes: logical size, stored size and the compression ratio.
    #[command(after_long_help = EXAMPLES_STORE_STATS)]
    Stats(StatsArgs),
    /// Re-hash every blob; exit 1 and name each blob whose content does not match its digest.
    #[command(after_long_help = EXAMPLES_STORE_VERIFY)]
    Verify,
    /// Remove blobs that no kept run refers to, and report what was freed.
    #[command(long_about = GC_ABOUT, after_long_help = EXAMPLES_STORE_GC)]
    Gc(GcArgs),
    /// Print a blob's content (a file some run read or wrote, a recorded output stream).
    #[command(after_long_help = EXAMPLES_STORE_CAT)]
    Cat(CatArgs),
}

/// Options of `shark store cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// The blob's digest (as `shark show --json` lists them), or a unique prefix of it.
    #[arg(value_name = "DIGEST")]
    pub digest: String,
}

/// Options of `shark restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The file to bring back.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The run whose version of PATH to bring back: the one it wrote, else the one it read.
    #[arg(long, value_name = "RUN")]
    pub run: String,
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
        value_name = "PROG",
        value_hint = clap::ValueHint::CommandWithArguments
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
    /// Only runs that failed (a non-zero status, or killed by a signal).
    #[arg(long)]
    pub failed: bool,
    /// Only runs that read or wrote PATH.
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Only runs whose command contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Only runs started since WHEN: a date (2026-11-30), a date and time
    /// (2026-11-30T14:00:00Z) or a time ago (30m, 2h, 3d, 1w).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Print JSON Lines, one run per line.
    #[arg(long)]
    pub json: bool,
    /// Do not page the output on a terminal.
    #[arg(long)]
    pub no_pager: bool,
}

/// Options of `shark show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (as listed by `shark log`); the latest run when omitted.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
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
