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

    /// Share results through a remote cache (a REAPI server): grpc://HOST:PORT[/INSTANCE], or
    /// grpcs:// for TLS; an empty value turns a configured remote off [default: the config
    /// file's remote.url]
    #[arg(long, global = true, env = "SHARK_REMOTE", value_name = "URL")]
    pub remote: Option<String>,

    /// Write results to the remote cache (false: use it as a read-only mirror) [default: true]
    #[arg(long, global = true, env = "SHARK_REMOTE_UPLOAD", value_name = "BOOL")]
    pub remote_upload: Option<bool>,

    /// Read results from the remote cache [default: true]
    #[arg(
        long,
        global = true,
        env = "SHARK_REMOTE_DOWNLOAD",
        value_name = "BOOL"
    )]
    pub remote_download: Option<bool>,

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
    /// Revert what a run did to the files (default: the last run that changed anything).
    Undo(UndoArgs),
    /// Materialise the files a run read and wrote, as they were right after it.
    Checkout(CheckoutArgs),
    /// List the filesystem snapshots (ZFS, btrfs) taken before runs, for undo.
    Snapshots(SnapshotsArgs),
    /// Write one document per combination of a document's frontmatter variables.
    Template(TemplateArgs),
    /// Write the lineage of files as an RO-Crate (Process or Workflow Run Crate).
    Export(ExportArgs),
    /// Serve a read-only web view of the runs, files, lineage and documents.
    Serve(ServeArgs),
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
    /// Upload a run's result to the remote cache (--remote), so other machines reuse it.
    Push(PushArgs),
}

/// Options of `shark store push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// A run id, or a file whose producing run to upload.
    #[arg(value_name = "RUN|PATH")]
    pub target: String,
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

/// Options of `shark undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The run to undo, as listed by `shark log` [default: the last run that changed
    /// anything; after an undo, that is the undo itself, so a second `shark undo` redoes].
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Undo even if some of the run's paths changed since (those changes are lost).
    #[arg(long)]
    pub force: bool,
    /// Only list what undo would do, and what changed since the run.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Options of `shark checkout`.
#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// The run whose files to materialise.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The new directory to write them into, each at its absolute path below it [default:
    /// ./shark-checkout-RUN].
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Options of `shark snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Print JSON Lines, one snapshot per line.
    #[arg(long)]
    pub json: bool,
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
    /// Set KEY to VALUE where the document sets it: an `export KEY=...` line of a block, or a
    /// frontmatter variable (also in `%{KEY}`). Repeatable.
    #[arg(short = 'e', value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// Give the frontmatter input NAME (of an `inputs:` mapping) the file at PATH: it is
    /// copied to the input's path before the first block. Repeatable.
    #[arg(short = 'i', value_name = "NAME=PATH", value_parser = key_value)]
    pub input: Vec<(String, String)>,
    /// Run up to N blocks at once where the recorded lineage shows they do not feed each
    /// other [default: the number of CPUs].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// The folder bound at /data inside the sandbox for the document's commands
    /// [default: DOC's name with `.data`, beside it].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Parses `KEY=VALUE`.
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
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
    #[arg(long, conflicts_with_all = ["dot", "prov"])]
    pub json: bool,
    /// Print a Graphviz graph.
    #[arg(long, conflicts_with = "prov")]
    pub dot: bool,
    /// Print W3C PROV-JSON (entities with digests, activities with times, used,
    /// wasGeneratedBy, wasDerivedFrom, wasAssociatedWith).
    #[arg(long)]
    pub prov: bool,
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

/// Options of `shark export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write an RO-Crate into DIR (created; it must be empty): the files, copied from the
    /// store, and the runs that made them, following the Process Run Crate profile, or the
    /// Workflow Run Crate profile when every run came from one script or document.
    #[arg(long = "ro-crate", value_name = "DIR", required = true)]
    pub ro_crate: PathBuf,
    /// The files whose lineage to export.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// The crate's license: a URL (e.g. an SPDX license's) or a text.
    #[arg(long, value_name = "LICENSE", default_value = "not specified")]
    pub license: String,
    /// Also include system files (interpreters, libraries) among the inputs.
    #[arg(long)]
    pub system: bool,
}

/// Options of `shark serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TCP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080, value_name = "N")]
    pub port: u16,
    /// The address to listen on [default: 127.0.0.1, this machine only]. Any other address
    /// lets others on the network read your runs and files.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,
    /// The folder whose files the view browses [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Options of `shark template`.
#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// The Shark markdown document whose `%{NAME}` variables to fill in.
    #[arg(value_name = "DOC")]
    pub doc: PathBuf,
    /// Where to write the documents (created if missing).
    #[arg(long = "output-dir", value_name = "DIR")]
    pub output_dir: PathBuf,
}
