//! Recording a run: one immediate transaction per run, so a run row is never visible without
//! all of its inputs and outputs, and a crash mid-way leaves nothing behind.

use rusqlite::{params, Transaction, TransactionBehavior};

use crate::sql::{argv_text, names_text};
use crate::time::{duration_nanos, to_nanos};
use shark_store::Digest;

use crate::{rfc3339, Db, LineageError, NewRun, PathState, RunId, UnitState};

impl Db {
    /// Records `run` and returns its new id. All or nothing: on error nothing was stored.
    pub fn record(&mut self, run: &NewRun) -> Result<RunId, LineageError> {
        let record_err = |source| LineageError::Record {
            command: run.command.clone(),
            source,
        };
        // Immediate: take the write lock up front, waiting through the busy timeout, rather
        // than failing when a deferred read lock cannot be upgraded.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(record_err)?;
        let id = insert_all(&tx, run).map_err(record_err)?;
        tx.commit().map_err(record_err)?;
        Ok(id)
    }
}

fn insert_all(tx: &Transaction<'_>, run: &NewRun) -> rusqlite::Result<RunId> {
    let id = insert_run(tx, run)?;
    insert_inputs(tx, id, run)?;
    insert_outputs(tx, id, run)?;
    insert_processes(tx, id, run)?;
    Ok(id)
}

fn insert_run(tx: &Transaction<'_>, run: &NewRun) -> rusqlite::Result<RunId> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO runs (command, argv, cwd, env_digest, weak_key, started, started_ns,
             duration_ns, exit_code, signal, user_ns, sys_ns, max_rss_kib, stdout, stderr,
             reused_from, reusable, network, reason, shell_state, unit_id, stdin_consumed,
             unreusable)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23)",
    )?;
    stmt.execute(params![
        run.command,
        argv_text(&run.argv),
        run.cwd,
        run.env_digest.as_bytes(),
        run.weak_key.as_bytes(),
        rfc3339(run.started),
        to_nanos(run.started),
        duration_nanos(run.duration),
        run.exit_code,
        run.signal,
        duration_nanos(run.user_time),
        duration_nanos(run.sys_time),
        i64::try_from(run.max_rss_kib).unwrap_or(i64::MAX),
        run.stdout.as_ref().map(|d| d.as_bytes()),
        run.stderr.as_ref().map(|d| d.as_bytes()),
        run.reused_from.map(|r| r.0),
        run.reusable,
        run.network,
        run.reason,
        run.shell_state.as_ref().map(|d| d.as_bytes()),
        run.unit.map(|u| u.0),
        run.stdin_consumed
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        run.unreusable,
    ])?;
    Ok(RunId(tx.last_insert_rowid()))
}

fn insert_inputs(tx: &Transaction<'_>, id: RunId, run: &NewRun) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO inputs (run_id, seq, path, kind, digest, mode, exclude, as_left)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (seq, i) in (0_i64..).zip(&run.inputs) {
        let digest = i.digest.as_ref().map(|d| d.as_bytes());
        let exclude = names_text(&i.exclude);
        stmt.execute(params![
            id.0,
            seq,
            i.path,
            i.kind,
            digest,
            i.mode,
            exclude,
            i.as_left.code()
        ])?;
    }
    Ok(())
}

fn insert_outputs(tx: &Transaction<'_>, id: RunId, run: &NewRun) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outputs (run_id, seq, path, kind, digest, mode, symlink_target)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (seq, o) in (0_i64..).zip(&run.outputs) {
        let digest = o.digest.as_ref().map(|d| d.as_bytes());
        stmt.execute(params![
            id.0,
            seq,
            o.path,
            o.kind,
            digest,
            o.mode,
            o.symlink_target
        ])?;
    }
    Ok(())
}

fn insert_processes(tx: &Transaction<'_>, id: RunId, run: &NewRun) -> rusqlite::Result<()> {
    let mut stmt = tx
        .prepare_cached("INSERT INTO processes (run_id, seq, pid, argv) VALUES (?1, ?2, ?3, ?4)")?;
    for (seq, p) in (0_i64..).zip(&run.processes) {
        stmt.execute(params![id.0, seq, p.pid, argv_text(&p.argv)])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO accesses (run_id, seq, pid, path, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (seq, (pid, path, kind)) in (0_i64..).zip(&run.accesses) {
        stmt.execute(params![id.0, seq, pid, path, kind])?;
    }
    Ok(())
}

impl Db {
    /// Marks run `id` as never to be reused, saying why (its changes could not all be
    /// applied, say). Recorded runs are otherwise never changed.
    pub fn mark_unreusable(&mut self, id: RunId, why: &str) -> Result<(), LineageError> {
        self.conn
            .execute(
                "UPDATE runs SET reusable = 0, unreusable = ?2 WHERE id = ?1",
                params![id.0, why],
            )
            .map(|_| ())
            .map_err(|source| LineageError::Record {
                command: format!("(run {id})"),
                source,
            })
    }

    /// Records the state the unit of work whose first run is `unit` left `states` in, after
    /// its latest run, replacing what was recorded for the same paths. One transaction.
    pub fn record_unit_states(
        &mut self,
        unit: RunId,
        states: &[UnitState],
    ) -> Result<(), LineageError> {
        let err = |source| LineageError::Record {
            command: format!("(state left by unit {unit})"),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO unit_states (unit_id, path, kind, digest)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            for s in states {
                let (kind, digest) = state_columns(&s.state);
                stmt.execute(params![
                    unit.0,
                    s.path,
                    kind,
                    digest.as_ref().map(|d| d.as_bytes())
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

/// The `kind` and `digest` columns of a unit state.
pub(crate) fn state_columns(state: &PathState) -> (&'static str, Option<Digest>) {
    match *state {
        PathState::Listing { digest } => ("listing", Some(digest)),
        PathState::Entry { kind, digest } => (kind.as_str(), digest),
    }
}
