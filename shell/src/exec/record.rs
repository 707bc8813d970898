//! Recording a run that ran: its streams and outputs stored, its inputs derived from what it
//! touched, and the whole recorded in one transaction, after every blob it names is durable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use shark_lineage::{Input, InputKind, Output, ProcessRecord, RunId};
use shark_sandbox::{Change, Report, Status};
use shark_store::Digest;

use super::reason::Reason;
use super::stdio::{self, Captured, StdinPlan};
use super::{inputs, key, outputs, Executor, Invocation, Request};
use crate::error::CliError;

/// What recording a run gives back.
pub(super) struct Recorded {
    /// The run's id.
    pub(super) id: RunId,
    /// Its inputs.
    pub(super) inputs: Vec<Input>,
    /// Its outputs.
    pub(super) outputs: Vec<Output>,
    /// The paths the sandbox named that reach elsewhere through symlinks, with where.
    pub(super) resolved: HashMap<PathBuf, PathBuf>,
}

impl Executor {
    /// Stores streams and outputs, computes inputs, and records the run in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_run(
        &mut self,
        req: &Request,
        inv: &Invocation,
        started: SystemTime,
        report: &Report,
        shell_state: Option<Digest>,
        streams: [&Captured; 2],
        reason: Reason,
    ) -> Result<Recorded, CliError> {
        let put = |c: &Captured| c.put(&self.store);
        let stdout = put(streams[0]).map_err(|e| CliError::failed("cannot store stdout", e))?;
        let stderr = put(streams[1]).map_err(|e| CliError::failed("cannot store stderr", e))?;
        let ignore = [
            PathBuf::from("/proc"),
            PathBuf::from("/sys"),
            PathBuf::from("/dev"),
            self.home.root().to_path_buf(),
            self.scratch.clone(),
        ];
        let written: HashMap<PathBuf, bool> = report
            .changes
            .iter()
            .map(|c| (c.path().to_path_buf(), matches!(c, Change::Dir { .. })))
            .collect();
        let observed = inputs::observe(&report.accesses, &written, &ignore, &self.cache);
        let mut inputs_list = observed.inputs;
        if let Some(d) = inv.stdin.digest() {
            inputs_list.push(Input::new("<stdin>", InputKind::Stdin, Some(d)));
        }
        let (outputs, outputs_faithful) = outputs::record(&report.changes, &self.store)
            .map_err(|e| CliError::failed("cannot store the command's outputs", e))?;
        let sources_faithful = self.keep_sources(&inputs_list, &inv.roots)?;
        // An earlier run with this weak key stored the same environment (the key includes
        // its digest); asking the database is cheaper than looking in the store.
        if !self.db.has_key(&inv.key).unwrap_or(false) {
            self.store
                .put_bytes(&key::env_blob(&inv.key_env))
                .map_err(|e| CliError::failed("cannot store the environment", e))?;
        }
        let mut run = self.new_run(req, inv, started);
        run.duration = report.wall;
        (run.exit_code, run.signal) = match report.status {
            Status::Exited(code) => (Some(code), None),
            Status::Signaled(signal) => (None, Some(signal)),
        };
        run.user_time = report.rusage.user;
        run.sys_time = report.rusage.system;
        run.max_rss_kib = report.rusage.max_rss_kib;
        run.stdout = Some(stdout);
        run.stderr = Some(stderr);
        run.stdin_consumed = inv.stdin_offset.and_then(|start| {
            let end = stdio::stdin_offset().ok()?;
            end.checked_sub(start)
        });
        run.unreusable = if !observed.changed.is_empty() {
            Some(changed_while_running(&observed.changed))
        } else if let Some(service) = report.services.first() {
            Some(format!(
                "it talked to a service through the socket {} (what a service replies is no \
                 recorded input)",
                service.display()
            ))
        } else if report.stats.damaged {
            Some(
                "it damaged the memory shark observes through (/dev/shm/.shark/ring), so what \
                 it read is not known in full"
                    .into(),
            )
        } else if report.terminal_input {
            // A run that read the terminal depends on what was typed, which no input records.
            Some("it read from the terminal".into())
        } else if matches!(inv.stdin, StdinPlan::Device) {
            Some(
                "its standard input was a device (what it read from it is no recorded input)"
                    .into(),
            )
        } else if read_lineage(report, &self.home.db_path()) {
            // shark's queries, run from shark's own shell, depend on what was recorded.
            Some("it read the lineage database (what it found there is no recorded input)".into())
        } else if !(observed.faithful && outputs_faithful && sources_faithful) {
            Some("some of what it read or wrote could not be recorded exactly".into())
        } else {
            None
        };
        run.reusable = report.status.success()
            && (!req.network || req.reuse_network)
            && run.unreusable.is_none();
        run.reason = Some(reason.to_json());
        run.shell_state = shell_state;
        run.inputs = inputs_list;
        run.outputs = outputs;
        run.processes = report
            .processes
            .iter()
            .map(|p| ProcessRecord {
                pid: p.pid,
                argv: p
                    .argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            })
            .collect();
        // Accesses are recorded at the paths they reached, like the inputs, in the order the
        // run made them.
        run.accesses = report
            .accesses
            .iter()
            .map(|a| {
                let at = observed.resolved.get(&a.path).unwrap_or(&a.path);
                (
                    a.pid,
                    at.to_string_lossy().into_owned(),
                    format!("{:?}", a.kind),
                )
            })
            .collect();
        // Every blob the record names must be on disk before the record is.
        self.store
            .sync()
            .map_err(|e| CliError::failed("cannot store the command's outputs", e))?;
        let id = self
            .db
            .record(&run)
            .map_err(|e| CliError::failed("cannot record the run", e))?;
        Ok(Recorded {
            id,
            inputs: run.inputs,
            outputs: run.outputs,
            resolved: observed.resolved,
        })
    }

    /// Stores the content of the files a run read under the writable roots (the user's data,
    /// not system files) that the store does not hold yet, so that `shark replay` can
    /// materialise them later. False if one changed since it was hashed: such a run is
    /// recorded but not reused.
    fn keep_sources(&self, inputs: &[Input], roots: &[PathBuf]) -> Result<bool, CliError> {
        let mut faithful = true;
        for input in inputs {
            let (InputKind::File, Some(digest)) = (input.kind, input.digest) else {
                continue;
            };
            let path = Path::new(&input.path);
            if !roots.iter().any(|r| path.starts_with(r)) || self.store.contains(&digest) {
                continue;
            }
            match self.store.put_file(path) {
                Ok(put) if put.digest == digest => {}
                // The file changed after it was hashed; what is there now is a valid blob,
                // but the run is not to be trusted.
                Ok(_) | Err(_) => faithful = false,
            }
        }
        Ok(faithful)
    }
}

/// Why a run whose inputs changed under it is not reusable, naming a few of them.
fn changed_while_running(paths: &[String]) -> String {
    let mut names: Vec<&str> = paths.iter().take(3).map(String::as_str).collect();
    if paths.len() > 3 {
        names.push("…");
    }
    let verb = if paths.len() == 1 { "was" } else { "were" };
    format!(
        "{} {verb} changed while the command ran, so what it read is not known",
        names.join(", ")
    )
}

/// Whether a run read shark's lineage database (or one of its journal files): what it found
/// there depends on what was recorded, which no input records.
fn read_lineage(report: &Report, db: &Path) -> bool {
    let db = db.as_os_str().as_encoded_bytes();
    report
        .accesses
        .iter()
        .any(|a| a.path.as_os_str().as_encoded_bytes().starts_with(db))
}
