//! `shark md DOC`: run the blocks in order in one session and write the processed document.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use shark_lineage::Run;
use shark_store::{Digest, Store};

use super::lines;
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
    let outcome = runner.run_blocks();
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

/// Every `inputs` path of the frontmatter must exist (relative ones from the document's
/// directory, `/data/...` ones in the data folder), unless `-i` gives it.
fn check_inputs(
    loaded: &Loaded,
    data: Option<&Path>,
    given: &[(String, PathBuf)],
) -> Result<(), CliError> {
    for input in &loaded.doc.frontmatter.inputs {
        if given.iter().any(|(declared, _)| declared == input) {
            continue;
        }
        let path = host_path(&loaded.dir, data, input);
        if path.symlink_metadata().is_err() {
            return Err(CliError::usage(
                format!(
                    "{}: input `{input}` does not exist ({})",
                    loaded.name(),
                    path.display()
                ),
                Some("create it, give it with `-i NAME=PATH`, or correct the `inputs` of the frontmatter".into()),
            ));
        }
    }
    Ok(())
}

/// The host path of a path as the document's commands see it: `/data/...` lies in the data
/// folder, a relative path in the document's directory.
fn host_path(dir: &Path, data: Option<&Path>, path: &str) -> PathBuf {
    match (data, Path::new(path).strip_prefix(DATA)) {
        (Some(data), Ok(rest)) => data.join(rest),
        _ => dir.join(path),
    }
}

/// Where the document's commands see the data folder.
pub(super) const DATA: &str = "/data";

/// The data folder bound at `/data`: `--data DIR`, else `DOC.data` beside the document when
/// the document mentions `/data`; created if missing.
fn data_dir(loaded: &Loaded, given: Option<&Path>) -> Result<Option<PathBuf>, CliError> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None if loaded.text.contains("/data") => {
            let name = loaded.name();
            let stem = name.strip_suffix(".md").unwrap_or(&name);
            loaded.dir.join(format!("{stem}.data"))
        }
        None => return Ok(None),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| CliError::failed(format!("cannot resolve {}", dir.display()), e))?;
    Ok(Some(dir))
}

/// `-i NAME=PATH`: each NAME an input of the frontmatter's `inputs:` mapping, each PATH an
/// existing file or folder; returns (the input's declared path, PATH made absolute).
fn given_inputs(
    loaded: &Loaded,
    given: &[(String, String)],
) -> Result<Vec<(String, PathBuf)>, CliError> {
    let named = &loaded.doc.frontmatter.named_inputs;
    given
        .iter()
        .map(|(name, path)| {
            let Some((_, declared)) = named.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
                return Err(CliError::usage(
                    format!("{}: no input `{name}` in the frontmatter", loaded.name()),
                    Some(match names.is_empty() {
                        true => "`-i NAME=PATH` names an input of an `inputs:` mapping".into(),
                        false => format!("its inputs are: {}", names.join(", ")),
                    }),
                ));
            };
            let abs = std::path::absolute(path)
                .ok()
                .filter(|p| p.exists())
                .ok_or_else(|| CliError::usage(format!("-i {name}={path}: no such file"), None))?;
            Ok((declared.clone(), abs))
        })
        .collect()
}

/// Warns about `-e KEY=VALUE` whose KEY the document neither sets in its frontmatter nor
/// exports in a block.
fn warn_unused_overrides(loaded: &Loaded, env: &[(String, String)]) {
    for (key, _) in env {
        let in_frontmatter = loaded
            .doc
            .frontmatter
            .variables
            .iter()
            .any(|(k, _)| k == key);
        let exported = loaded.doc.blocks().any(|b| match &b.kind {
            BlockKind::Run { commands } => commands
                .iter()
                .any(|c| super::export_assignment(&c.text).is_some_and(|(k, _)| k == key)),
            _ => false,
        });
        if !in_frontmatter && !exported {
            eprintln!(
                "shark: warning: -e {key}: {} sets no `{key}` (no frontmatter variable, no `export {key}=` line)",
                loaded.name()
            );
        }
    }
}

/// The frontmatter's variables, checked to be names bash can export.
fn variables(loaded: &Loaded) -> Result<Vec<(OsString, OsString)>, CliError> {
    let valid = |k: &str| {
        let mut chars = k.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut out = Vec::new();
    for (key, value) in &loaded.doc.frontmatter.variables {
        if !valid(key) {
            return Err(CliError::usage(
                format!(
                    "{}: frontmatter key `{key}` is not a shell variable name",
                    loaded.name()
                ),
                Some("use letters, digits and `_`, not starting with a digit".into()),
            ));
        }
        out.push((key.into(), value.into()));
    }
    Ok(out)
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
        let mut session = Session::open(home, vec![loaded.path.clone().into()])?;
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

    /// Runs every block in order, stopping after the first command that fails or exits;
    /// returns that command's status (0 when all succeeded).
    fn run_blocks(&mut self) -> Result<i32, CliError> {
        let loaded = self.loaded;
        for (index, block) in loaded.doc.blocks().enumerate() {
            self.results.push(BlockResult {
                block_index: index,
                commands: Vec::new(),
            });
            self.record.blocks.push(BlockRecord {
                line: block.line,
                kind: block.kind.name().to_owned(),
                commands: Vec::new(),
            });
            if let Some(code) = self.run_block(block)? {
                return Ok(code);
            }
        }
        Ok(0)
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
        let _ = self.record.save(&self.home, &self.loaded.path);
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
