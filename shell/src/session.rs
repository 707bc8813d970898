//! A shell session: lines run one after another, each memoized on its own, with the shell
//! state (cwd, variables, functions, aliases, options, positional parameters) carried between
//! them as bash carries it within one process. The interactive shell, the script runner and
//! `shark md` all run their commands through a [`Session`].

use std::ffi::OsString;
use std::time::Duration;

use shark_lineage::RunId;

use crate::error::CliError;
use crate::exec::{Executor, Outcome, Request};
use crate::home::Home;
use crate::state::{self, ShellState};

/// The bash that interprets each line inside the sandbox.
pub const BASH: &str = "/bin/bash";

/// How to run one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineOptions {
    /// Run even if a recorded run could be reused.
    pub fresh: bool,
    /// Allow network access (the run is then never reused).
    pub network: bool,
}

/// What one line did.
#[derive(Debug, Clone)]
pub struct LineResult {
    /// Its exit status.
    pub code: i32,
    /// The record of this execution.
    pub run: RunId,
    /// For a reuse: the run reused and the time it had taken.
    pub reused: Option<(RunId, Duration)>,
    /// How long the line took (for a reuse: restoring and replaying).
    pub took: Duration,
    /// The line ended the shell (`exit`, or a failure under `set -e`).
    pub exited: bool,
}

/// A sequence of lines sharing one shell state.
#[derive(Debug)]
pub struct Session {
    exec: Executor,
    /// The state the next line starts in.
    pub state: ShellState,
    /// `$0` and the initial positional parameters.
    pub args: Vec<OsString>,
    /// Host folders every line sees at other paths (a document's data folder at `/data`).
    pub mapped: Vec<shark_sandbox::MappedRoot>,
}

impl Session {
    /// A session in this process's environment and working directory; `args` are `$0` and
    /// the positional parameters.
    pub fn open(home: &Home, args: Vec<OsString>) -> Result<Session, CliError> {
        let state = ShellState::from_process()
            .map_err(|e| CliError::failed("cannot read the current directory", e))?;
        Ok(Session {
            exec: Executor::open(home)?,
            state,
            args,
            mapped: Vec::new(),
        })
    }

    /// Makes the session one script or document: its lines are the steps of one unit of work,
    /// and a step is reused when what it read is as the script last left it (see
    /// [`Executor::run_as_whole_unit`]).
    pub fn as_whole_unit(mut self) -> Session {
        self.exec.run_as_whole_unit();
        self
    }

    /// The executor (and through it the lineage database).
    pub fn executor(&self) -> &Executor {
        &self.exec
    }

    /// Runs (or reuses) `line` in the current state and moves to the state it leaves.
    pub fn run_line(&mut self, line: &str, opts: LineOptions) -> Result<LineResult, CliError> {
        let mut argv: Vec<OsString> = vec![BASH.into(), "-c".into(), state::wrap(line).into()];
        if self.args.is_empty() {
            argv.push("shark".into());
        }
        argv.extend(self.args.iter().cloned());
        let req = Request {
            text: line.to_owned(),
            argv,
            fresh: opts.fresh,
            network: opts.network,
            reuse_network: false,
            cwd: self.state.cwd.clone(),
            env: self.state.line_env(),
            stateful: true,
            mapped: self.mapped.clone(),
        };
        let outcome: Outcome = self.exec.execute(&req)?;
        let exited = match outcome.state {
            Some(next) => {
                let exited = next.exited;
                self.state = next;
                exited
            }
            // Killed before the EXIT trap could run: the state stays as it was.
            None => false,
        };
        Ok(LineResult {
            code: outcome.code,
            run: outcome.run,
            reused: outcome.reused,
            took: outcome.took,
            exited,
        })
    }
}
