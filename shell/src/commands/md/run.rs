//! `shark md DOC`: run the blocks in order in one session and write the processed document.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use shark_lineage::Run;
use shark_store::{Digest, Store};

use super::lines;
use super::parallel::{self, BlockIo};
use super::prepare::{
    check_inputs, data_dir, given_inputs, host_path, variables, warn_unused_overrides, DATA,
};
use super::record::{BlockRecord, CommandRecord, FetchRecord, Record};
use super::Loaded;
use crate::cli::MdArgs;
use crate::error::CliError;
use crate::home::Home;
use crate::markdown::{self, Block, BlockKind, BlockResult, CommandResult, Import, ImportSource};
use crate::session::{LineOptions, Session};

/// Runs the document of `args` and writes the processed document; returns the exit status
/// of the last command run (the failing one's, if one failed).
pub(crate) fn run(home: &Home, args: &MdArgs) -> Result<i32, CliError> {
    let loaded = Loaded::read_with(&args.doc, &args.env)?;
    warn_unused_overrides(&loaded, &args.env);
    let out = output_path(&loaded, args.output.as_deref())?;
    refuse_build_blocks(&loaded)?;
    let data = data_dir(&loaded, args.data.as_deref())?;
    let given = given_inputs(&loaded, &args.input)?;
    check_inputs(&loaded, data.as_deref(), &given)?;
    let variables = variables(&loaded)?;
    prepare_outputs(&loaded, &out)?;
    let mut runner = Runner::open(home, &loaded, args.fresh, variables)?;
    if let Some(host) = &data {
        runner.session.mapped = vec![shark_sandbox::MappedRoot {
            inside: PathBuf::from(DATA),
            host: host.clone(),
        }];
    }
    runner.data = data;
    runner.record.save(home, &loaded.path)?;
    runner.provide_inputs(&given)?;
    // Whatever happens, what did run is written down.
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let outcome = runner.run_blocks(jobs);
    let text = markdown::render(&loaded.doc, &runner.results);
    write_atomically(&out, &text)?;
    runner.record.running = false;
    runner.record.exit_code = outcome.as_ref().ok().copied();
    runner.record.save(home, &loaded.path)?;
    let code = outcome?;
    runner.summary(&out, code);
    Ok(code)
}

/// Where the processed document goes: `-o FILE`, else `DOC.out.md` next to the source; never
/// the source itself.
fn output_path(loaded: &Loaded, given: Option<&Path>) -> Result<PathBuf, CliError> {
    let out = match given {
        Some(p) => std::path::absolute(p)
            .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", p.display()), None))?,
        None => {
            let name = loaded.name();
            let stem = name.strip_suffix(".md").unwrap_or(&name);
            loaded.dir.join(format!("{stem}.out.md"))
        }
    };
    let resolved = match (out.parent(), out.file_name()) {
        (Some(dir), Some(name)) => dir.canonicalize().map(|d| d.join(name)),
        _ => Ok(out.clone()),
    };
    let same = resolved
        .is_ok_and(|r| r == loaded.path || r.canonicalize().is_ok_and(|c| c == loaded.path));
    if same {
        return Err(CliError::usage(
            format!(
                "refusing to write the processed document over its source {}",
                loaded.path.display()
            ),
            Some("give another file with -o, or leave -o out for DOC.out.md".into()),
        ));
    }
    Ok(out)
}

/// `shark-build` blocks build container images, which shark does not do: refuse the document
/// before anything runs, naming the block.
fn refuse_build_blocks(loaded: &Loaded) -> Result<(), CliError> {
    match loaded.doc.blocks().find(|b| b.kind == BlockKind::Build) {
        Some(block) => Err(CliError::usage(
            format!(
                "{}:{}: `{}` blocks (container image builds) are not supported",
                loaded.name(),
                block.line,
                block.info
            ),
            Some(
                "shark runs every block on this system, in its sandbox: install what the image \
                 provides and remove the block (its `shark-run:NAME` blocks run as they are)"
                    .into(),
            ),
        )),
        None => Ok(()),
    }
}

/// Creates the processed document (as a plain copy for now) and the publish directories
/// before the first command runs. A command that lists the document's directory (Python does,
/// to import from it) then sees the same listing on every run, where creating them at the end
/// would make every such command run a second time before it could be reused.
fn prepare_outputs(loaded: &Loaded, out: &Path) -> Result<(), CliError> {
    if !out.exists() {
        write_atomically(out, &markdown::render(&loaded.doc, &[]))?;
    }
    for block in loaded.doc.blocks() {
        if let BlockKind::Publish { dir, .. } = &block.kind {
            let dir = loaded.dir.join(dir.as_deref().unwrap_or("_shark"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e))?;
        }
    }
    Ok(())
}

/// Creates the directory `path` goes in, outside the sandbox: see [`lines`] for why.
fn make_parent(path: &Path) -> Result<(), CliError> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e)),
        None => Ok(()),
    }
}

/// Writes `text` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let fail = |e: std::io::Error| CliError::failed(format!("cannot write {}", path.display()), e);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Runs the blocks of one document and collects what happened.
struct Runner<'a> {
    home: Home,
    /// The data folder bound at `/data`, if the document has one.
    data: Option<PathBuf>,
    loaded: &'a Loaded,
    session: Session,
    store: Store,
    fresh: bool,
    /// The record of the previous run (for conditional fetches).
    previous: Record,
    /// The record of this run.
    record: Record,
    /// Runs one block of a wave for another runner, which keeps the record.
    lane: bool,
    results: Vec<BlockResult>,
    ran: usize,
    reused: usize,
}

/// One line's outcome as the document shows it, plus whether the block must stop.
struct Done {
    result: CommandResult,
    run: Option<Run>,
    stop: bool,
}

impl<'a> Runner<'a> {
    fn open(
        home: &Home,
        loaded: &'a Loaded,
        fresh: bool,
        variables: Vec<(OsString, OsString)>,
    ) -> Result<Runner<'a>, CliError> {
        let mut session = Session::open(home, vec![loaded.path.clone().into()])?.as_whole_unit();
        session.state.cwd = loaded.dir.clone();
        for (key, value) in variables {
            session.state.env.retain(|(k, _)| *k != key);
            session.state.env.push((key, value));
        }
        let store = Store::open(&home.store_dir())
            .map_err(|e| CliError::failed("cannot open the store", e))?;
        let record = Record {
            doc: loaded.path.to_string_lossy().into_owned(),
            digest: Digest::of_bytes(loaded.text.as_bytes()).to_hex(),
            running: true,
            pid: std::process::id(),
            ..Record::default()
        };
        Ok(Runner {
            home: home.clone(),
            data: None,
            loaded,
            session,
            store,
            fresh,
            previous: Record::load(home, &loaded.path).unwrap_or_default(),
            record,
            lane: false,
            results: Vec::new(),
            ran: 0,
            reused: 0,
        })
    }

    /// Copies each `-i` input to the path the document declares for it, as recorded runs.
    fn provide_inputs(&mut self, given: &[(String, PathBuf)]) -> Result<(), CliError> {
        for (declared, source) in given {
            make_parent(&host_path(&self.loaded.dir, self.data.as_deref(), declared))?;
            let line = lines::copy(&source.to_string_lossy(), declared, source.is_dir());
            let done = self.line(&line, false)?;
            if done.result.exit_code != 0 {
                return Err(CliError::usage(
                    format!("cannot copy {} to the input {declared}", source.display()),
                    None,
                ));
            }
            eprintln!("shark: input {declared} is {}", source.display());
        }
        Ok(())
    }

    /// Runs every block, in waves of independent ones (see [`parallel`]), stopping after the
    /// wave of the first command that fails or exits; returns that command's status (0 when
    /// all succeeded).
    fn run_blocks(&mut self, jobs: usize) -> Result<i32, CliError> {
        let blocks: Vec<&Block> = self.loaded.doc.blocks().collect();
        let judged: Vec<Option<BlockIo>> = (0..blocks.len())
            .map(|i| self.judge(i, blocks[i]))
            .collect();
        for wave in parallel::waves(&judged, jobs.max(1)) {
            let code = match wave.as_slice() {
                [one] => self.run_block_at(*one, blocks[*one])?,
                _ => self.run_wave(&wave, &blocks)?,
            };
            if let Some(code) = code {
                return Ok(code);
            }
        }
        Ok(0)
    }

    /// What block `index` did last time, when it may run beside others: it is unchanged
    /// since and left the shell state as it found it.
    fn judge(&self, index: usize, block: &Block) -> Option<BlockIo> {
        let last = self.previous.blocks.get(index)?;
        let same = last.body == Digest::of_bytes(block.body.as_bytes()).to_hex();
        if !same || last.changes_state != Some(false) {
            return None;
        }
        BlockIo::of(self.session.executor().db(), last)
    }

    /// Runs block `index` in this runner's session and records it.
    fn run_block_at(&mut self, index: usize, block: &Block) -> Result<Option<i32>, CliError> {
        self.results.push(BlockResult {
            block_index: index,
            commands: Vec::new(),
        });
        self.record.blocks.push(BlockRecord {
            line: block.line,
            kind: block.kind.name().to_owned(),
            commands: Vec::new(),
            body: Digest::of_bytes(block.body.as_bytes()).to_hex(),
            changes_state: None,
        });
        let before = self.session.state.clone();
        let code = self.run_block(block)?;
        let changed = self.session.state != before;
        // A session's first state is this process's, not one bash dumped, so a block that
        // starts there cannot be compared (bash adds its own variables and options): unknown.
        let comparable = code.is_none() && !before.script.is_empty();
        let last = self.record.blocks.last_mut().expect("a block is open");
        last.changes_state = comparable.then_some(changed);
        Ok(code)
    }

    /// Runs the blocks of `wave` at once, each in its own session starting from this one's
    /// state, and merges what they did in document order.
    fn run_wave(&mut self, wave: &[usize], blocks: &[&Block]) -> Result<Option<i32>, CliError> {
        let mut lanes = Vec::new();
        for _ in wave {
            lanes.push(self.lane()?);
        }
        let outcomes: Vec<Result<Option<i32>, CliError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = lanes
                .iter_mut()
                .zip(wave)
                .map(|(lane, &i)| scope.spawn(move || lane.run_block_at(i, blocks[i])))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut stop = None;
        let first = self.record.blocks.len();
        for (lane, outcome) in lanes.into_iter().zip(outcomes) {
            let code = outcome?;
            self.results.extend(lane.results);
            self.record.blocks.extend(lane.record.blocks);
            self.record.fetches.extend(lane.record.fetches);
            (self.ran, self.reused) = (self.ran + lane.ran, self.reused + lane.reused);
            self.session.state = lane.session.state;
            stop = stop.or(code);
        }
        self.check_wave(&self.record.blocks[first..]);
        let _ = self.record.save(&self.home, &self.loaded.path);
        Ok(stop)
    }

    /// Warns when blocks that ran at once turned out to touch each other's files this time
    /// (their last run said they would not): their results may differ from a run in order.
    fn check_wave(&self, blocks: &[BlockRecord]) {
        let db = self.session.executor().db();
        let io: Vec<Option<BlockIo>> = blocks.iter().map(|b| BlockIo::of(db, b)).collect();
        for (i, a) in io.iter().enumerate() {
            for (j, b) in io.iter().enumerate().skip(i + 1) {
                if let (Some(a), Some(b)) = (a, b) {
                    if !a.independent(b) {
                        eprintln!(
                            "shark: warning: {}: the blocks at lines {} and {} ran at once but \
                             touched the same files; run with -j 1 for their results in order",
                            self.loaded.name(),
                            blocks[i].line,
                            blocks[j].line
                        );
                    }
                }
            }
        }
    }

    /// A runner for one block of a wave: its own session (and so its own executor) in this
    /// one's state, writing no record of its own.
    fn lane(&self) -> Result<Runner<'a>, CliError> {
        let mut session = Session::open(&self.home, vec![self.loaded.path.clone().into()])?;
        session.state = self.session.state.clone();
        session.mapped = self.session.mapped.clone();
        Ok(Runner {
            home: self.home.clone(),
            data: self.data.clone(),
            loaded: self.loaded,
            session,
            store: self.store.clone(),
            fresh: self.fresh,
            previous: self.previous.clone(),
            record: Record::default(),
            lane: true,
            results: Vec::new(),
            ran: 0,
            reused: 0,
        })
    }

    /// Runs one block; `Some(status)` when the document must stop here.
    fn run_block(&mut self, block: &Block) -> Result<Option<i32>, CliError> {
        if let (BlockKind::Run { .. }, Some(image)) = (&block.kind, &block.image) {
            eprintln!(
                "shark: note: line {}: the block's environment `{image}` is not used; \
                 its commands run on this system",
                block.line
            );
        }
        match &block.kind {
            BlockKind::Run { commands } => {
                for command in commands {
                    let done = self.line(&command.text, false)?;
                    if let Some(code) = self.push(done, Vec::new()) {
                        if code != 0 {
                            eprintln!(
                                "shark: {}:{}: `{}` failed with status {code}",
                                self.loaded.name(),
                                command.line,
                                command.text
                            );
                        }
                        return Ok(Some(code));
                    }
                }
            }
            BlockKind::Import { imports } => {
                for import in imports {
                    if let Some(code) = self.import(import)? {
                        return Ok(Some(code));
                    }
                }
            }
            BlockKind::Publish { paths, dir } => {
                let out = self.loaded.dir.join(dir.as_deref().unwrap_or("_shark"));
                for path in paths {
                    if let Some(code) = self.publish(block, path, &out)? {
                        return Ok(Some(code));
                    }
                }
            }
            // Refused before anything ran.
            BlockKind::Build => {}
        }
        Ok(None)
    }

    /// Runs one session line and reads back what it printed.
    fn line(&mut self, text: &str, network: bool) -> Result<Done, CliError> {
        let opts = LineOptions {
            fresh: self.fresh,
            network,
        };
        let line = self.session.run_line(text, opts)?;
        match line.reused {
            Some(_) => self.reused += 1,
            None => self.ran += 1,
        }
        let run = self.session.executor().db().run(line.run).ok();
        let stdout = run
            .as_ref()
            .and_then(|r| r.stdout)
            .and_then(|d| self.store.read_to_vec(&d).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(Done {
            result: CommandResult {
                run_id: line.run.0,
                reused_from: line.reused.map(|(r, _)| r.0),
                exit_code: line.code,
                stdout,
            },
            run,
            stop: line.code != 0 || line.exited,
        })
    }

    /// Adds a line's outcome to the current block; `Some(status)` when the document stops.
    fn push(&mut self, done: Done, writes: Vec<String>) -> Option<i32> {
        let block = self.record.blocks.last_mut().expect("a block is open");
        block.commands.push(CommandRecord {
            text: done
                .run
                .as_ref()
                .map_or_else(String::new, |r| r.command.clone()),
            run: done.result.run_id,
            writes,
        });
        let code = done.result.exit_code;
        let result = self.results.last_mut().expect("a block is open");
        result.commands.push(done.result);
        // For `shark serve`, which shows the document as it runs; a record that cannot be
        // written now is written (or reported) at the end.
        if !self.lane {
            let _ = self.record.save(&self.home, &self.loaded.path);
        }
        done.stop.then_some(code)
    }

    /// Imports one file: a recorded copy, or a recorded download with the network on.
    fn import(&mut self, import: &Import) -> Result<Option<i32>, CliError> {
        let cwd = self.session.state.cwd.clone();
        let dest_abs = host_path(&cwd, self.data.as_deref(), &import.dest);
        let dest_key = dest_abs.to_string_lossy().into_owned();
        make_parent(&dest_abs)?;
        let (mut done, source) = match &import.source {
            ImportSource::Path(path) => {
                let line = lines::copy(path, &import.dest, cwd.join(path).is_dir());
                (self.line(&line, false)?, path)
            }
            ImportSource::Url(url) if lines::is_git(url) => {
                let update = dest_abs.join(".git").is_dir();
                eprintln!("shark: fetching {url} (network commands are never reused)");
                (
                    self.line(&lines::git(url, &import.dest, update), true)?,
                    url,
                )
            }
            ImportSource::Url(url) => (self.fetch(url, &import.dest, &dest_abs)?, url),
        };
        if done.result.exit_code == 0 {
            if let Ok(digest) = Digest::of_file(&dest_abs) {
                let note = format!("{source} -> {} blake3:{digest}\n", import.dest);
                done.result.stdout.push_str(&note);
                if let ImportSource::Url(url) = &import.source {
                    self.record.fetches.push(FetchRecord {
                        url: url.clone(),
                        dest: dest_key.clone(),
                        digest: digest.to_hex(),
                    });
                }
            }
        }
        Ok(self.push(done, vec![dest_key]))
    }

    /// Downloads `url` to `dest`, conditionally when `dest` still holds the last download.
    fn fetch(&mut self, url: &str, dest: &str, dest_abs: &Path) -> Result<Done, CliError> {
        let key = dest_abs.to_string_lossy();
        let pristine = self
            .previous
            .fetch(url, &key)
            .is_some_and(|f| Digest::of_file(dest_abs).is_ok_and(|d| d.to_hex() == f.digest));
        eprintln!("shark: fetching {url} (network commands are never reused)");
        let done = self.line(&lines::fetch(url, dest, pristine), true)?;
        let wrote = done
            .run
            .as_ref()
            .is_some_and(|r| r.outputs.iter().any(|o| o.path == key));
        if pristine && done.result.exit_code == 0 && !wrote {
            eprintln!("shark: {url} is unchanged since the last fetch; kept {dest}");
        }
        Ok(done)
    }

    /// Publishes `path` into `out`.
    fn publish(&mut self, block: &Block, path: &str, out: &Path) -> Result<Option<i32>, CliError> {
        let Some(name) = lines::published_name(path) else {
            return Err(CliError::usage(
                format!(
                    "{}:{}: cannot publish `{path}`: it names no file",
                    self.loaded.name(),
                    block.line
                ),
                None,
            ));
        };
        let target = out.join(&name);
        make_parent(&target)?;
        let is_dir = self.session.state.cwd.join(path).is_dir();
        let line = lines::copy(path, &target.to_string_lossy(), is_dir);
        let mut done = self.line(&line, false)?;
        if done.result.exit_code == 0 {
            let shown = target.strip_prefix(&self.loaded.dir).unwrap_or(&target);
            let note = format!("{path} -> {}\n", shown.display());
            done.result.stdout.push_str(&note);
        }
        let target = target.to_string_lossy().into_owned();
        Ok(self.push(done, vec![target]))
    }

    /// One line on stderr: where the document went and how much was reused.
    fn summary(&self, out: &Path, code: i32) {
        let how = if code == 0 { "wrote" } else { "stopped; wrote" };
        eprintln!(
            "shark: {how} {} ({} ran, {} reused)",
            out.display(),
            self.ran,
            self.reused
        );
    }
}
