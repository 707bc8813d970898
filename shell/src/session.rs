//! A shell session: steps run one after another, each memoized on its own, with the shell
//! state carried between them as bash carries it within one process. The interactive shell,
//! the script runner and `shark md` all run their commands through a [`Session`].
//!
//! Each step runs as `bash NAME ARGS...` on a generated program ([`state::program`]) that
//! bash finds under the script's own name: the session keeps a folder in the shark home's
//! `steps` (bound read-only in the sandbox, and left out of what a run reads) where NAME, taken
//! relative to the folder bash starts in, is the program. An absolute NAME is made relative
//! to the folder, and `$0` set back to it.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use shark_lineage::RunId;

use crate::error::CliError;
use crate::exec::{Executor, Outcome, Request};
use crate::home::Home;
use crate::state::program::{self, Origin, Step};
use crate::state::{reach, ShellState};

/// The bash that interprets each step inside the sandbox.
pub const BASH: &str = "/bin/bash";

/// How to run one step.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineOptions {
    /// Run even if a recorded run could be reused.
    pub fresh: bool,
    /// Allow network access (the run is then never reused).
    pub network: bool,
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct LineResult {
    /// Its exit status.
    pub code: i32,
    /// The record of this execution.
    pub run: RunId,
    /// For a reuse: the run reused and the time it had taken.
    pub reused: Option<(RunId, Duration)>,
    /// How long the step took (for a reuse: restoring and replaying).
    pub took: Duration,
    /// The step ended the shell (`exit`, or a failure under `set -e`).
    pub exited: bool,
}

/// Whether steps run as a script's or as an interactive shell's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `bash NAME`: a script's steps.
    Script,
    /// The lines of the interactive shell, with their history in this file (which a line
    /// that looks at the history gets).
    Interactive {
        /// The history file.
        history: Option<PathBuf>,
    },
}

/// A sequence of steps sharing one shell state.
#[derive(Debug)]
pub struct Session {
    /// Script or interactive steps.
    pub mode: Mode,
    exec: Executor,
    /// The state the next step starts in.
    pub state: ShellState,
    /// `$0` as given.
    name: OsString,
    /// Where the programs are written.
    programs: tempfile::TempDir,
    /// Functions defined by a step of their own, by name.
    origins: BTreeMap<Vec<u8>, Origin>,
    /// The shark home's scratch folder.
    scratch: PathBuf,
    /// Host folders every step sees at other paths (a document's data folder at `/data`).
    pub mapped: Vec<shark_sandbox::MappedRoot>,
}

impl Session {
    /// A session in this process's environment and working directory; `args` are `$0` and
    /// the positional parameters (`$0` is `bash` when `args` is empty).
    pub fn open(home: &Home, mut args: Vec<OsString>) -> Result<Session, CliError> {
        let mut state = ShellState::from_process()
            .map_err(|e| CliError::failed("cannot read the current directory", e))?;
        let name = if args.is_empty() {
            OsString::from("bash")
        } else {
            args.remove(0)
        };
        state.args = args;
        let exec = Executor::open(home)?;
        let scratch = home.root().join("tmp");
        // Not in the scratch folder, which the sandbox hides: bash must find the program.
        let steps = crate::exec::steps_dir(home);
        let programs = std::fs::create_dir_all(&steps)
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix(&format!(".shark-step-{}-", std::process::id()))
                    .tempdir_in(&steps)
            })
            .map_err(|e| {
                CliError::failed(format!("cannot create a folder in {}", steps.display()), e)
            })?;
        Ok(Session {
            mode: Mode::Script,
            exec,
            state,
            name,
            programs,
            origins: BTreeMap::new(),
            scratch,
            mapped: Vec::new(),
        })
    }

    /// Makes the session one script or document: its steps are the steps of one unit of
    /// work, and a step is reused when what it read is as the script last left it (see
    /// [`Executor::run_as_whole_unit`]).
    pub fn as_whole_unit(mut self) -> Session {
        self.exec.run_as_whole_unit();
        self
    }

    /// The executor (and through it the lineage database).
    pub fn executor(&self) -> &Executor {
        &self.exec
    }

    /// Runs (or reuses) one line of text as line 1, not the last of anything.
    pub fn run_line(&mut self, line: &str, opts: LineOptions) -> Result<LineResult, CliError> {
        let step = Step {
            text: line.as_bytes(),
            line: 1,
            last: false,
            dollar0: None,
            unparsed: false,
        };
        self.run_step(&step, opts)
    }

    /// Runs (or reuses) `step` in the current state and moves to the state it leaves.
    pub fn run_step(&mut self, step: &Step<'_>, opts: LineOptions) -> Result<LineResult, CliError> {
        let arg = bash_name(Path::new(&self.name));
        let libraries = self.libraries(arg.as_bytes());
        let mut names = vec![Path::new(&self.name)];
        names.extend(
            libraries
                .iter()
                .map(|l| Path::new(OsStr::from_bytes(&l.file))),
        );
        let (start, files) = layout(self.programs.path(), &names);
        for (library, file) in libraries.iter().zip(&files[1..]) {
            write_program(file, &library.text)?;
        }
        let name = self.name.clone();
        let absolute = Path::new(&name).is_absolute();
        let step = Step {
            dollar0: absolute.then_some(name.as_bytes()),
            ..*step
        };
        let stdin_at = crate::exec::stdio::shared_stdin_offset(&self.scratch)
            .map_err(|e| CliError::failed("cannot read standard input", e))?;
        let sourced: Vec<Vec<u8>> = libraries.iter().map(|l| l.file.clone()).collect();
        // Reading the history costs; only a line that looks at it gets it.
        let words = reach::identifiers(step.text);
        let wants_history = words.contains(&b"history"[..]) || words.contains(&b"fc"[..]);
        let history = match &self.mode {
            Mode::Interactive { history: Some(h) } if wants_history => Some(h.as_os_str()),
            _ => None,
        };
        let setting = program::Setting {
            stdin_at,
            libraries: &sourced,
            history: history.map(OsStr::as_bytes),
            ..program::SANDBOX
        };
        let placements = self.placements(arg.as_bytes());
        // Functions of the libraries are defined by sourcing them, not again from the state.
        let mut state = self.state.clone();
        for library in &libraries {
            for f in &library.functions {
                state.functions.remove(f);
            }
        }
        let text = program::generate(&state, &step, &placements, setting);
        write_program(&files[0], &text)?;
        let mut argv: Vec<OsString> = vec![BASH.into(), arg.clone()];
        argv.extend(self.state.args.iter().cloned());
        let req = Request {
            text: String::from_utf8_lossy(step.text).into_owned(),
            argv,
            fresh: opts.fresh,
            network: opts.network,
            reuse_network: false,
            cwd: self.state.cwd.clone(),
            env: self.state.env.clone(),
            stateful: true,
            key_env: Some(reach::key_entries(&self.state, &step, &self.origins)),
            start_dir: Some(start),
            mapped: self.mapped.clone(),
        };
        let outcome: Outcome = self.exec.execute(&req)?;
        let exited = match outcome.state {
            Some(next) => {
                let next = match outcome.reused {
                    Some(_) => reach::merge_reused(&self.state, next, step.text),
                    None => next,
                };
                self.track_origins(&step, arg.as_bytes(), &next);
                self.state = next;
                false
            }
            None => true,
        };
        Ok(LineResult {
            code: outcome.code,
            run: outcome.run,
            reused: outcome.reused,
            took: outcome.took,
            exited,
        })
    }

    /// Notes where functions come from: the text of a function this step defined, taken
    /// from the step's own text at the line bash says it was defined on; any other change to
    /// a function forgets where it came from.
    fn track_origins(&mut self, step: &Step<'_>, bash_name: &[u8], next: &ShellState) {
        let changed: Vec<Vec<u8>> = next
            .functions
            .iter()
            .filter(|(name, body)| self.state.functions.get(*name) != Some(body))
            .map(|(name, _)| name.clone())
            .chain(
                self.state
                    .functions
                    .keys()
                    .filter(|name| !next.functions.contains_key(*name))
                    .cloned(),
            )
            .collect();
        for name in changed {
            self.origins.remove(&name);
            let Some((line, file)) = next.function_lines.get(&name) else {
                continue;
            };
            if file.as_slice() != bash_name {
                continue;
            }
            if let Some(text) = definition(step, *line, &name) {
                self.origins.insert(name, Origin { line: *line, text });
            }
        }
    }

    /// Where to define each function in the program: its own text where it is known, else
    /// bash's `declare -f` of it at the line it was defined on (right when it was written as
    /// bash prints it, one command a line with the brace on the name's line).
    fn placements(&self, bash_name: &[u8]) -> BTreeMap<Vec<u8>, Origin> {
        let mut all = self.origins.clone();
        for (name, body) in &self.state.functions {
            if all.contains_key(name) {
                continue;
            }
            let Some((line, file)) = self.state.function_lines.get(name) else {
                continue;
            };
            if file.as_slice() == bash_name {
                let text = join_brace(body);
                all.insert(name.clone(), Origin { line: *line, text });
            }
        }
        all
    }
}

/// `declare -f` output with the opening brace moved up to the name's line.
fn join_brace(body: &[u8]) -> Vec<u8> {
    match body.iter().position(|&b| b == b'\n') {
        Some(nl) if body[nl + 1..].starts_with(b"{ \n") || body[nl + 1..].starts_with(b"{\n") => {
            let mut out = body[..nl].to_vec();
            out.extend_from_slice(b"{");
            out.extend_from_slice(
                &body[nl + 1 + body[nl + 1..].iter().position(|&b| b == b'\n').unwrap_or(0)..],
            );
            out
        }
        _ => body.to_vec(),
    }
}

/// The function `text` defines, when it is exactly one definition (`name() ...`,
/// `function name ...`) ending with its body.
fn defined_function(text: &[u8]) -> Option<&[u8]> {
    let text = text.trim_ascii();
    let closes = [&b"}"[..], b")", b"fi", b"done", b"esac"]
        .iter()
        .any(|end| text.ends_with(end));
    if !closes {
        return None;
    }
    let name_end = |t: &[u8]| {
        t.iter()
            .position(|b| b" \t\n(){};&|<>\"'$`".contains(b))
            .unwrap_or(t.len())
    };
    if let Some(rest) = text.strip_prefix(b"function") {
        let rest = rest
            .strip_prefix(b" ")
            .or_else(|| rest.strip_prefix(b"\t"))?;
        let rest = rest.trim_ascii_start();
        let name = &rest[..name_end(rest)];
        return (!name.is_empty()).then_some(name);
    }
    let name = &text[..name_end(text)];
    let after = text[name.len()..].trim_ascii_start();
    (!name.is_empty() && after.starts_with(b"()")).then_some(name)
}

/// The definition of function `name` as written in `step`, starting on the script's line
/// `line`: one complete command that is exactly that definition.
fn definition(step: &Step<'_>, line: usize, name: &[u8]) -> Option<Vec<u8>> {
    let skip = line.checked_sub(step.line)?;
    let mut start = 0;
    for _ in 0..skip {
        start += step.text[start..].iter().position(|&b| b == b'\n')? + 1;
    }
    let rest = &step.text[start..];
    let indent = rest
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    let rest = &rest[indent..];
    let first = crate::script::first_command(rest)?;
    let text = &rest[..first];
    (defined_function(text) == Some(name)).then(|| text.to_vec())
}

/// The name bash is given for a script named `name`: itself, or made relative when absolute.
pub(crate) fn bash_name(name: &Path) -> OsString {
    match name.is_absolute() {
        true => name
            .components()
            .filter(|c| *c != Component::RootDir)
            .collect::<PathBuf>()
            .into_os_string(),
        false => name.as_os_str().to_owned(),
    }
}

/// Where bash starts in the programs folder `root` so that each of `names` (the script, the
/// files it sourced), taken from there as bash takes it, is a file of the folder; and those
/// files.
pub(crate) fn layout(root: &Path, names: &[&Path]) -> (PathBuf, Vec<PathBuf>) {
    let rel: Vec<PathBuf> = names.iter().map(|n| PathBuf::from(bash_name(n))).collect();
    // Enough levels below the root that `..` never climbs out of it.
    let mut up = 0i64;
    for r in &rel {
        let mut depth = 0i64;
        for c in r.components() {
            match c {
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
            up = up.max(-depth);
        }
    }
    let mut start = root.to_path_buf();
    for _ in 0..up {
        start.push("_");
    }
    let files = rel
        .iter()
        .map(|r| {
            let mut file = start.clone();
            for c in r.components() {
                match c {
                    Component::ParentDir => {
                        file.pop();
                    }
                    Component::Normal(part) => file.push(part),
                    _ => {}
                }
            }
            file
        })
        .collect();
    (start, files)
}

/// A file the script sourced, as bash named it, made again with the functions it defined
/// (bash's `declare -f` of each at the line it was defined on), so that sourcing it defines
/// them with that file as their source.
struct Library {
    file: Vec<u8>,
    text: Vec<u8>,
    functions: Vec<Vec<u8>>,
}

impl Session {
    /// The libraries of the functions the script defined in files it sourced (by a relative
    /// name: an absolute one cannot be made again where bash would look).
    fn libraries(&self, bash_name: &[u8]) -> Vec<Library> {
        let mut by_file: BTreeMap<&[u8], Vec<(&Vec<u8>, usize)>> = BTreeMap::new();
        for (name, (line, file)) in &self.state.function_lines {
            let foreign = file.as_slice() != bash_name
                && !file.starts_with(b"/")
                && !matches!(file.as_slice(), b"" | b"main" | b"environment");
            if foreign && self.state.functions.contains_key(name) {
                by_file.entry(file).or_default().push((name, *line));
            }
        }
        by_file
            .into_iter()
            .map(|(file, functions)| {
                let mut lines: Vec<Vec<u8>> = Vec::new();
                let mut placed = Vec::new();
                for (name, line) in functions {
                    let text = join_brace(&self.state.functions[name]);
                    let parts: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
                    let first = line.max(1) - 1;
                    if lines.len() < first + parts.len() {
                        lines.resize(first + parts.len(), Vec::new());
                    }
                    if lines[first..first + parts.len()]
                        .iter()
                        .all(|l| l.is_empty())
                    {
                        for (i, part) in parts.into_iter().enumerate() {
                            lines[first + i] = part.to_vec();
                        }
                        placed.push(name.clone());
                    }
                }
                Library {
                    file: file.to_vec(),
                    text: lines.join(&b'\n'),
                    functions: placed,
                }
            })
            .collect()
    }
}

pub(crate) fn write_program(file: &Path, text: &[u8]) -> Result<(), CliError> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e))?;
    }
    std::fs::write(file, text)
        .map_err(|e| CliError::failed(format!("cannot write {}", file.display()), e))
}

/// A name for `$0` from bytes.
pub fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_keep_the_name_bash_is_given() {
        let root = Path::new("/r");
        let one = |n: &str| {
            let (start, files) = layout(root, &[Path::new(n)]);
            (start, files[0].clone(), bash_name(Path::new(n)))
        };
        assert_eq!(one("s.sh"), ("/r".into(), "/r/s.sh".into(), "s.sh".into()));
        assert_eq!(
            one("../x/s.sh"),
            ("/r/_".into(), "/r/x/s.sh".into(), "../x/s.sh".into())
        );
        assert_eq!(
            one("/home/u/s.sh"),
            ("/r".into(), "/r/home/u/s.sh".into(), "home/u/s.sh".into())
        );
        assert_eq!(
            one("./a/../../s.sh"),
            ("/r/_".into(), "/r/s.sh".into(), "./a/../../s.sh".into())
        );
        let (start, files) = layout(root, &[Path::new("s.sh"), Path::new("../../lib.sh")]);
        assert_eq!(start, Path::new("/r/_/_"));
        assert_eq!(files, [Path::new("/r/_/_/s.sh"), Path::new("/r/lib.sh")]);
    }

    #[test]
    fn a_step_defining_one_function_is_recognised() {
        assert_eq!(defined_function(b"f() {\n  echo\n}"), Some(&b"f"[..]));
        assert_eq!(defined_function(b"function g {\n  :\n}"), Some(&b"g"[..]));
        assert_eq!(defined_function(b"my-fn () ( ls )"), Some(&b"my-fn"[..]));
        assert_eq!(defined_function(b"f() { :; }; f"), None);
        assert_eq!(defined_function(b"echo hi"), None);
    }
}
