//! Reading runs back: the row of a run, then (for full runs) its lists.

use rusqlite::{Connection, Row};

use crate::sql::{digest_opt, names_from, ArgvCol, DigestCol};
use crate::time::{duration_from_nanos, from_nanos};
use crate::{AsLeft, Input, Output, ProcessRecord, Run, RunId};

/// The columns [`run_from_row`] reads, qualified by the alias `r`, for `SELECT ... FROM runs r`.
pub(crate) const RUN_COLUMNS: &str = "r.id, r.command, r.argv, r.cwd, r.env_digest, r.weak_key,
    r.started_ns, r.duration_ns, r.exit_code, r.signal, r.user_ns, r.sys_ns, r.max_rss_kib,
    r.stdout, r.stderr, r.reused_from, r.reusable, r.network, r.reason, r.shell_state,
    coalesce(r.unit_id, r.id), r.stdin_consumed, r.unreusable";

/// The number of columns in [`RUN_COLUMNS`]; a query may select more after them.
pub(crate) const RUN_COLUMN_COUNT: usize = 23;

/// A run summary (empty lists) from a row that starts with [`RUN_COLUMNS`].
pub(crate) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let reused_from: Option<i64> = row.get(15)?;
    let max_rss: i64 = row.get(12)?;
    Ok(Run {
        id: RunId(row.get(0)?),
        command: row.get(1)?,
        argv: row.get::<_, ArgvCol>(2)?.0,
        cwd: row.get(3)?,
        env_digest: row.get::<_, DigestCol>(4)?.0,
        weak_key: row.get::<_, DigestCol>(5)?.0,
        started: from_nanos(row.get(6)?),
        duration: duration_from_nanos(row.get(7)?),
        exit_code: row.get(8)?,
        signal: row.get(9)?,
        user_time: duration_from_nanos(row.get(10)?),
        sys_time: duration_from_nanos(row.get(11)?),
        max_rss_kib: u64::try_from(max_rss).unwrap_or(0),
        stdout: digest_opt(row.get(13)?),
        stderr: digest_opt(row.get(14)?),
        cached: reused_from.is_some(),
        reused_from: reused_from.map(RunId),
        reusable: row.get(16)?,
        network: row.get(17)?,
        reason: row.get(18)?,
        shell_state: digest_opt(row.get(19)?),
        unit: RunId(row.get(20)?),
        stdin_consumed: row
            .get::<_, Option<i64>>(21)?
            .map(|n| u64::try_from(n).unwrap_or(0)),
        unreusable: row.get(22)?,
        inputs: Vec::new(),
        outputs: Vec::new(),
        processes: Vec::new(),
        accesses: Vec::new(),
    })
}

/// The inputs of run `id`, in recorded order.
pub(crate) fn inputs_of(conn: &Connection, id: RunId) -> rusqlite::Result<Vec<Input>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, kind, digest, mode, exclude, as_left FROM inputs
         WHERE run_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id.0], |row| {
        Ok(Input {
            path: row.get(0)?,
            kind: row.get(1)?,
            digest: digest_opt(row.get(2)?),
            mode: row.get(3)?,
            exclude: names_from(row.get(4)?)?,
            as_left: AsLeft::from_code(row.get(5)?),
        })
    })?;
    rows.collect()
}

/// The outputs of run `id`, in recorded (application) order.
pub(crate) fn outputs_of(conn: &Connection, id: RunId) -> rusqlite::Result<Vec<Output>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, kind, digest, mode, symlink_target FROM outputs
         WHERE run_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id.0], |row| output_at(row, 0))?;
    rows.collect()
}

/// An output from a row of `path, kind, digest, mode, symlink_target` starting at `at`.
pub(crate) fn output_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Output> {
    Ok(Output {
        path: row.get(at)?,
        kind: row.get(at + 1)?,
        digest: digest_opt(row.get(at + 2)?),
        mode: row.get(at + 3)?,
        symlink_target: row.get(at + 4)?,
    })
}

/// Fills in every list of `run`.
pub(crate) fn load_lists(conn: &Connection, run: &mut Run) -> rusqlite::Result<()> {
    run.inputs = inputs_of(conn, run.id)?;
    run.outputs = outputs_of(conn, run.id)?;
    let mut stmt =
        conn.prepare_cached("SELECT pid, argv FROM processes WHERE run_id = ?1 ORDER BY seq")?;
    run.processes = stmt
        .query_map([run.id.0], |row| {
            Ok(ProcessRecord {
                pid: row.get(0)?,
                argv: row.get::<_, ArgvCol>(1)?.0,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT pid, path, kind FROM accesses WHERE run_id = ?1 ORDER BY seq")?;
    run.accesses = stmt
        .query_map([run.id.0], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(())
}
