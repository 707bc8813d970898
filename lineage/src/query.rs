//! Looking runs up: by id, recent ones, cache candidates, producers of content, statistics.

use rusqlite::{params, OptionalExtension, Params};
use shark_store::Digest;

use crate::error::query;
use crate::load::RUN_COLUMN_COUNT;
use crate::load::{inputs_of, load_lists, output_at, outputs_of, run_from_row, RUN_COLUMNS};
use crate::sql::digest_opt;
use crate::time::duration_from_nanos;
use crate::{Db, InputKind, LineageError, Output, PathState, Run, RunId, Stats};

/// Where a consumer sits in time: a producer must have started strictly before it, ties
/// broken by id, so that no run is its own ancestor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Before {
    pub(crate) started_ns: i64,
    pub(crate) id: RunId,
}

impl Before {
    /// After every run.
    pub(crate) const END: Before = Before {
        started_ns: i64::MAX,
        id: RunId(i64::MAX),
    };

    /// Just before `run`.
    pub(crate) fn of(run: &Run) -> Self {
        Before {
            started_ns: crate::time::to_nanos(run.started),
            id: run.id,
        }
    }
}

/// Reusable runs of weak key `?1`, newest first, at most `?2`.
const CANDIDATES: &str = "WHERE r.weak_key = ?1 AND r.reusable = 1 AND r.exit_code = 0
      AND r.reused_from IS NULL
    ORDER BY r.id DESC LIMIT ?2";

/// The newest row of weak key `?1` older than run `?2`.
const PREVIOUS: &str = "WHERE r.weak_key = ?1 AND r.id < ?2 ORDER BY r.id DESC LIMIT 1";

/// Real executions that wrote content `?1` and started before `(?2, ?3)`.
const PRODUCER: &str = "FROM outputs o JOIN runs r ON r.id = o.run_id
    WHERE o.digest = ?1 AND r.reused_from IS NULL
      AND (r.started_ns < ?2 OR (r.started_ns = ?2 AND r.id < ?3))";

/// Newest first by the outputs' own column, so SQLite walks the `outputs_by_digest` or
/// `outputs_by_path_digest` index backwards and stops at the first match.
const NEWEST_PRODUCER: &str = "ORDER BY o.run_id DESC LIMIT 1";

impl Db {
    /// Run summaries (empty lists) selected by `tail`, a SQL clause after `FROM runs r`.
    fn summaries<P: Params>(
        &self,
        tail: &str,
        params: P,
        what: &str,
    ) -> Result<Vec<Run>, LineageError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r {tail}");
        let run_all = || -> rusqlite::Result<Vec<Run>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params, run_from_row)?;
            rows.collect()
        };
        run_all().map_err(query(what))
    }

    /// Loads the inputs and outputs of each run (not processes or accesses).
    fn with_io(&self, mut runs: Vec<Run>, what: &str) -> Result<Vec<Run>, LineageError> {
        for run in &mut runs {
            run.inputs = inputs_of(&self.conn, run.id).map_err(query(what))?;
            run.outputs = outputs_of(&self.conn, run.id).map_err(query(what))?;
        }
        Ok(runs)
    }

    /// One run with everything recorded about it.
    pub fn run(&self, id: RunId) -> Result<Run, LineageError> {
        let what = format!("load run {id}");
        let mut run = self
            .summaries("WHERE r.id = ?1", [id.0], &what)?
            .pop()
            .ok_or(LineageError::NoSuchRun { id })?;
        load_lists(&self.conn, &mut run).map_err(query(&what))?;
        Ok(run)
    }

    /// The `n` newest runs, newest first, reuses included. Summaries: their input, output,
    /// process and access lists are empty (use [`Db::run`] for one run in full).
    pub fn recent(&self, n: usize) -> Result<Vec<Run>, LineageError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        self.summaries("ORDER BY r.id DESC LIMIT ?1", [limit], "list recent runs")
    }

    /// Earlier runs with this weak key that a new run may reuse, newest first, at most
    /// `limit`: reusable, exit status 0, and not reuses themselves. Their inputs and outputs
    /// are loaded; processes and accesses are not.
    pub fn candidates(&self, weak_key: &Digest, limit: usize) -> Result<Vec<Run>, LineageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let what = "look up reusable runs";
        let runs = self.summaries(CANDIDATES, params![weak_key.as_bytes(), limit], what)?;
        self.with_io(runs, what)
    }

    /// The newest row with this weak key, reuses included, with inputs and outputs.
    pub fn last_run_of(&self, weak_key: &Digest) -> Result<Option<Run>, LineageError> {
        self.previous_run_of(weak_key, RunId(i64::MAX))
    }

    /// The newest row with this weak key older than `before`, reuses included, with inputs
    /// and outputs: what `shark why` compares a run against.
    pub fn previous_run_of(
        &self,
        weak_key: &Digest,
        before: RunId,
    ) -> Result<Option<Run>, LineageError> {
        let what = "look up earlier runs of a command";
        let args = params![weak_key.as_bytes(), before.0];
        let runs = self.summaries(PREVIOUS, args, what)?;
        Ok(self.with_io(runs, what)?.pop())
    }

    /// Every real execution (not a reuse) that wrote a file or symlink with this digest,
    /// newest first, each with the output that carried it. The runs are summaries.
    pub fn producers_of(&self, digest: &Digest) -> Result<Vec<(Run, Output)>, LineageError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}, o.path, o.kind, o.digest, o.mode, o.symlink_target
             FROM outputs o JOIN runs r ON r.id = o.run_id
             WHERE o.digest = ?1 AND r.reused_from IS NULL
             ORDER BY r.id DESC, o.seq"
        );
        let run_all = || -> rusqlite::Result<Vec<(Run, Output)>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([digest.as_bytes()], |row| {
                Ok((run_from_row(row)?, output_at(row, RUN_COLUMN_COUNT)?))
            })?;
            rows.collect()
        };
        run_all().map_err(query("look up the producers of a digest"))
    }

    /// The run that produced `digest` at `path`: the newest real execution that wrote that
    /// content there. Content equal to what some run wrote elsewhere does not count: a
    /// source file that happens to match an output was not produced by that run. A summary.
    pub fn producer_of(&self, path: &str, digest: &Digest) -> Result<Option<Run>, LineageError> {
        self.producer_before(path, digest, Before::END)
    }

    /// Like [`Db::producer_of`], among runs that came before `before`.
    pub(crate) fn producer_before(
        &self,
        path: &str,
        digest: &Digest,
        before: Before,
    ) -> Result<Option<Run>, LineageError> {
        Ok(self
            .first_writer(digest, Some(path), before)?
            .map(|(run, _)| run))
    }

    /// The newest real execution before `before` that wrote `digest` (at `path` if given),
    /// and the path it wrote it at.
    fn first_writer(
        &self,
        digest: &Digest,
        path: Option<&str>,
        before: Before,
    ) -> Result<Option<(Run, String)>, LineageError> {
        let at_path = if path.is_some() {
            "AND o.path = ?4"
        } else {
            ""
        };
        let sql = format!("SELECT {RUN_COLUMNS}, o.path {PRODUCER} {at_path} {NEWEST_PRODUCER}");
        let run_one = || -> rusqlite::Result<Option<(Run, String)>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let bytes = digest.as_bytes();
            let mut args = params![bytes, before.started_ns, before.id.0].to_vec();
            args.extend(path.as_ref().map(|p| p as &dyn rusqlite::ToSql));
            let row =
                |row: &rusqlite::Row<'_>| Ok((run_from_row(row)?, row.get(RUN_COLUMN_COUNT)?));
            stmt.query_row(args.as_slice(), row).optional()
        };
        run_one().map_err(query("look up the producer of a file"))
    }

    /// Runs that read `path` (in any way, including finding it absent), newest first.
    /// Summaries.
    pub fn runs_reading(&self, path: &str) -> Result<Vec<Run>, LineageError> {
        self.summaries(
            &runs_reading_filter(path),
            [path],
            "look up the runs that read a path",
        )
    }

    /// Runs that changed `path` (wrote, created or deleted it), newest first. Summaries.
    pub fn runs_writing(&self, path: &str) -> Result<Vec<Run>, LineageError> {
        self.summaries(
            "WHERE r.id IN (SELECT run_id FROM outputs WHERE path = ?1) ORDER BY r.id DESC",
            [path],
            "look up the runs that wrote a path",
        )
    }

    /// Totals: how many rows, how many reuses, and how much computing the reuses saved.
    pub fn stats(&self) -> Result<Stats, LineageError> {
        let sql = "SELECT
                (SELECT count(*) FROM runs),
                (SELECT count(*) FROM runs WHERE reused_from IS NOT NULL),
                (SELECT coalesce(sum(o.duration_ns), 0)
                 FROM runs r JOIN runs o ON o.id = r.reused_from)";
        let (runs, reused, saved): (i64, i64, i64) = self
            .conn
            .query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(query("compute statistics"))?;
        Ok(Stats {
            runs: u64::try_from(runs).unwrap_or(0),
            reused: u64::try_from(reused).unwrap_or(0),
            time_saved: duration_from_nanos(saved),
        })
    }
}

impl Db {
    /// The newest real, successful execution of this command text in `cwd`, whatever its
    /// weak key: what `shark why` compares a miss against. A summary.
    pub fn last_run_of_command(
        &self,
        command: &str,
        cwd: &str,
    ) -> Result<Option<Run>, LineageError> {
        let runs = self.summaries(
            "WHERE r.command = ?1 AND r.cwd = ?2 AND r.reused_from IS NULL AND r.exit_code = 0
             ORDER BY r.id DESC LIMIT 1",
            params![command, cwd],
            "look up earlier runs of a command",
        )?;
        Ok(runs.into_iter().next())
    }

    /// What the units of work that ran or reused run `id` left at `path`, newest first (at
    /// most a few): the states an input of `id` with [`Input::as_left`](crate::Input) may also
    /// match.
    pub fn unit_states_for(&self, id: RunId, path: &str) -> Result<Vec<PathState>, LineageError> {
        let ask = || -> rusqlite::Result<Vec<PathState>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.kind, s.digest FROM unit_states s
                 WHERE s.path = ?2 AND s.unit_id IN (
                     SELECT coalesce(unit_id, id) FROM runs
                     WHERE id = ?1 OR reused_from = ?1 ORDER BY id DESC LIMIT 8)",
            )?;
            let rows = stmt.query_map(params![id.0, path], |row| {
                let kind: String = row.get(0)?;
                let digest = digest_opt(row.get(1)?);
                Ok(state_from(&kind, digest))
            })?;
            Ok(rows
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect())
        };
        ask().map_err(query("look up the state a unit of work left"))
    }

    /// Whether any run (or reuse) with this weak key is recorded: then its environment, which
    /// the weak key includes, was stored before it was.
    pub fn has_key(&self, weak_key: &Digest) -> Result<bool, LineageError> {
        let ask = || -> rusqlite::Result<bool> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM runs WHERE weak_key = ?1)")?;
            stmt.query_row([weak_key.as_bytes().as_slice()], |row| row.get(0))
        };
        ask().map_err(query("look up a weak key"))
    }
}

/// A unit state from its `kind` and `digest` columns; `None` for a kind this build does not
/// know (it then matches nothing).
fn state_from(kind: &str, digest: Option<Digest>) -> Option<PathState> {
    match (kind, digest) {
        ("listing", Some(digest)) => Some(PathState::Listing { digest }),
        ("listing", None) => None,
        (kind, digest) => Some(PathState::Entry {
            kind: InputKind::parse(kind)?,
            digest,
        }),
    }
}

/// The filter of [`Db::runs_reading`]: through the partial path index for a user file (the
/// index's terms repeated, so SQLite can use it), a scan for a system file, which the index
/// leaves out (see schema version 4).
fn runs_reading_filter(path: &str) -> String {
    use crate::schema::{UNINDEXED_DIRS, USER_PATH_TERMS};
    let system = UNINDEXED_DIRS.iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
    });
    let terms = match system {
        true => String::new(),
        false => format!(" AND {USER_PATH_TERMS}"),
    };
    format!("WHERE r.id IN (SELECT run_id FROM inputs WHERE path = ?1{terms}) ORDER BY r.id DESC")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql` against a fresh database, one detail line per step.
    fn plan(sql: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("plan.db")).unwrap();
        let mut stmt = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        // Unbound parameters are NULL, which is fine for planning.
        let mut rows = stmt.raw_query();
        let mut lines = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            lines.push(row.get::<_, String>(3).unwrap());
        }
        lines.join("\n")
    }

    /// The hot queries are index lookups, never scans of a whole table, so they stay fast on
    /// a database holding a hundred thousand runs.
    #[test]
    fn hot_queries_use_indexes() {
        let select = format!("SELECT {RUN_COLUMNS} FROM runs r");
        let cases = [
            (format!("{select} {CANDIDATES}"), "runs_by_weak_key"),
            (format!("{select} {PREVIOUS}"), "runs_by_weak_key"),
            // What `has_key` asks inside its EXISTS (whose wrapper is a constant row).
            (
                "SELECT 1 FROM runs WHERE weak_key = ?1".into(),
                "runs_by_weak_key",
            ),
            (
                format!("SELECT {RUN_COLUMNS} {PRODUCER} {NEWEST_PRODUCER}"),
                "outputs_by_digest",
            ),
            (
                format!("SELECT {RUN_COLUMNS} {PRODUCER} AND o.path = ?4 {NEWEST_PRODUCER}"),
                "outputs_by_path_digest",
            ),
        ];
        let cases = cases.into_iter().chain([(
            format!(
                "SELECT {RUN_COLUMNS} FROM runs r {}",
                runs_reading_filter("/home/u/data.csv")
            ),
            "inputs_by_user_path",
        )]);
        for (sql, index) in cases {
            let plan = plan(&sql);
            assert!(plan.contains(index), "{index} unused:\n{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "sorts rows:\n{plan}");
            for line in plan.lines() {
                assert!(!line.starts_with("SCAN"), "scans a table:\n{plan}");
            }
        }
    }
}
