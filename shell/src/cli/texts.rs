//! The longer texts of the command line: examples for each command (shown by `--help` and as
//! the EXAMPLES section of its man page) and the descriptions that need more than a line.

pub(super) const EXAMPLES_SHARK: &str = "\
Examples:
  shark
      An interactive shell: every line is recorded, and reused when nothing it read changed.
  shark build.sh --release
      Run a script step by step; run it again and only the steps whose inputs changed run.
  shark --fresh build.sh
      Run every step, reusing nothing.
  shark -c 'sort data.csv > sorted.csv'
      One command line.
  shark log --failed
      The runs that failed.
  shark lineage sorted.csv
      Where a file came from.";

pub(super) const EXAMPLES_RUN: &str = "\
Examples:
  shark run gdalwarp -t_srs EPSG:4326 in.tif out.tif
      Run a program (no shell in between); a second identical run is reused.
  shark run --fresh make
      Run even if a recorded run could be reused.
  shark run --net curl -O https://example.org/data.csv
      Allow network access; such a run is recorded but never reused.";

pub(super) const EXAMPLES_LOG: &str = "\
Examples:
  shark log
      The 20 latest runs: id, start, how long it ran or which run it reused, status, command.
  shark log -n 100 --failed
      The failures among the last 100 runs.
  shark log --path out/result.tif
      The runs that read or wrote a file.
  shark log --grep gdalwarp --since 2d
      The runs of the last two days whose command mentions gdalwarp.
  shark log --json | jq .command
      JSON Lines, for scripts.";

pub(super) const EXAMPLES_SHOW: &str = "\
Examples:
  shark show
      The latest run, with what it read and wrote.
  shark show 42
      Run 42.
  shark show 42 --json
      Everything recorded, full digests included (see shark store cat).";

pub(super) const EXAMPLES_LINEAGE: &str = "\
Examples:
  shark lineage out/result.tif
      The runs that made the file's current content, and what they read, back to sources.
  shark lineage out/result.tif --dot | dot -Tsvg > lineage.svg
      The same as a Graphviz graph.
  shark lineage out/result.tif --system
      Also list the system files (programs, libraries) the runs read.
  shark lineage out/result.tif --prov > result.prov.json
      The lineage as W3C PROV-JSON.";

pub(super) const EXAMPLES_WHY: &str = "\
Examples:
  shark why out/result.tif
      Why the run that made the file ran: which input changed, which variable changed, or
      that it had never run before.
  shark why 42
      The same for run 42, or which run it reused.";

pub(super) const EXAMPLES_RESTORE: &str = "\
Examples:
  shark log --path report.csv
      Find the runs that wrote report.csv.
  shark restore report.csv --run 17
      Put back the report.csv that run 17 wrote (or, if it only read the file, the version
      it read). The file is replaced; shark lineage then traces it to run 17.";

pub(super) const EXAMPLES_REPLAY: &str = "\
Examples:
  shark replay out/result.tif
      Run again, in a scratch tree, every run that led to the file, and compare outputs.
  shark replay 42 --into /tmp/check
      Replay run 42 into a folder that is kept.";

pub(super) const MD_ABOUT: &str = "\
Run a Shark markdown document's blocks and write the processed document.

A Shark markdown document is a markdown file whose fenced code blocks with these info strings
are the steps of a pipeline, run in order in one shell session in the document's folder:

  shark-run        shell commands, one a line (an optional leading `$ `; a `\\` at the end
                   of a line continues the command; `#` lines are comments). Each command
                   is memoized like a step of a script.
  shark-import     `SOURCE DEST` lines: SOURCE is a local path or an http(s) URL, copied or
                   downloaded to DEST (a recorded run).
  shark-publish    one path a line, copied into the output folder (`shark-publish:DIR`).
  shark-build      a container image build, which shark does not support (an error naming
                   the block's line).

Everything else (prose, other code blocks) is kept as it is. An optional YAML frontmatter
between `---` lines at the top sets variables (exported to the commands) and `inputs` (files
the document needs, checked before anything runs). The processed document, written beside
the source (DOC.out.md unless --output), has each shark block followed by a `shark-output`
block with its run ids and what it printed.";

pub(super) const EXAMPLES_MD: &str = "\
Examples:
  shark md analysis.md
      Run the document's blocks (reusing what did not change) and write analysis.out.md.
  shark md analysis.md --fresh
      Run every command again.
  shark md analysis.md --dot | dot -Tpng > flow.png
      The document's dataflow graph: which block's outputs feed which block.";

pub(super) const EXAMPLES_COMPLETIONS: &str = "\
Examples:
  shark completions bash > ~/.local/share/bash-completion/completions/shark
      Completion for bash (subcommands, options, run ids, commands after shark run).
  shark completions zsh > ~/.zfunc/_shark
      Completion for zsh.";

pub(super) const EXAMPLES_STORE: &str = "\
Examples:
  shark store stats
      How many blobs, how many bytes, how well they compress.
  shark store verify
      Re-hash every blob and name any that is damaged.
  shark store gc --keep-days 30
      Forget runs older than 30 days and remove the blobs nothing kept refers to.
  shark store cat 3f5a9c01
      Print a blob.
  shark --remote grpc://cache:8980 store push out/result.tif
      Upload the run that made a file to the remote cache.";

pub(super) const EXAMPLES_STORE_STATS: &str = "\
Examples:
  shark store stats
      Blobs, logical and stored bytes, compression ratio.
  shark store stats --json
      The same as one JSON object.";

pub(super) const EXAMPLES_STORE_VERIFY: &str = "\
Examples:
  shark store verify
      Exit 0 when every blob matches its digest and every database is sound, 1 (naming
      each damaged blob or database) otherwise.
  shark store verify --repair
      Also rebuild a damaged lineage database from what can still be read of it.";

pub(super) const GC_ABOUT: &str = "\
Remove blobs that no kept run refers to, and report what was freed.

By default every recorded run is kept and only blobs no run refers to are removed. With
--keep-days N, runs started more than N days ago are retired first: a retired run is
forgotten (its record leaves the lineage database, so it is no longer listed, explained or
reused), except a run that a kept run reused, which stays. The blobs only retired runs
referred to are then removed with the others.";

pub(super) const EXAMPLES_STORE_GC: &str = "\
Examples:
  shark store gc --dry-run
      Count the blobs that would be removed.
  shark store gc --keep-days 30
      Retire runs older than 30 days, then remove unreferenced blobs.";

pub(super) const EXAMPLES_STORE_CAT: &str = "\
Examples:
  shark show 42 --json | jq -r '.outputs[0].digest'
      The digest of a file run 42 wrote.
  shark store cat 9c1e0b7a > old-version.csv
      Its content (a unique prefix of the digest is enough).";

pub(super) const EXAMPLES_STORE_PUSH: &str = "\
Examples:
  shark --remote grpc://cache:8980 store push 42
      Upload run 42's result, so that other machines using the cache reuse it.
  shark store push out/result.tif
      Upload the run that made a file's current content (with the configured remote).";

pub(super) const EXAMPLES_UNDO: &str = "\
Examples:
  shark undo
      Revert the last run that changed anything (a second shark undo redoes).
  shark undo 41 --dry-run
      What undoing run 41 would do, and which of its paths changed since.
  shark undo 41 --force
      Undo run 41 even though a path changed since (losing that change).";

pub(super) const EXAMPLES_CHECKOUT: &str = "\
Examples:
  shark checkout 41
      The files run 41 read and wrote, as right after it, below ./shark-checkout-41.
  shark checkout 41 --into /tmp/r41
      The same, below /tmp/r41.";

pub(super) const EXAMPLES_SNAPSHOTS: &str = "\
Examples:
  shark snapshots
      The ZFS and btrfs snapshots taken before runs, for shark undo.
  shark snapshots --json
      The same as JSON Lines.";

pub(super) const EXAMPLES_TEMPLATE: &str = "\
Examples:
  shark template study.md --output-dir studies
      One document per combination of the frontmatter variables' values, in studies/.";

pub(super) const EXAMPLES_EXPORT: &str = "\
Examples:
  shark export --ro-crate crate out/result.tif
      An RO-Crate in crate/: the file, what it was made from, and the runs that made it.
  shark export --ro-crate crate --license https://spdx.org/licenses/CC-BY-4.0 a.csv b.csv
      The lineage of two files, with a license.";

pub(super) const EXAMPLES_SERVE: &str = "\
Examples:
  shark serve
      A read-only web view of the runs, files and lineage at http://127.0.0.1:8080.
  shark serve --port 0 --dir ~/project
      On a free port, browsing ~/project.";
