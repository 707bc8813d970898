//! Queries for browsing the history page by page: filtered run listings, the versions a path
//! had, the reuses of a run. They serve `shark serve` and the exports, and stay index lookups
//! (or bounded scans from the newest row) on a database of a hundred thousand runs.

use rusqlite::params;

use crate::error::query;
use crate::load::{output_at, run_from_row, RUN_COLUMNS, RUN_COLUMN_COUNT};
use crate::{Db, LineageError, Output, Run, RunId};

/// Which runs a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs whose command contains this text (case-sensitive); empty for all.
    pub text: String,
    /// Only runs of this outcome.
    pub outcome: RunOutcome,
    /// Only runs older than this id (the next page after a page ending at it).
    pub before: Option<RunId>,
}

/// The outcome a [`RunFilter`] selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every run.
    #[default]
    All,
    /// Real executions (not reuses).
    Ran,
    /// Reuses of earlier runs.
    Reused,
    /// Runs that exited non-zero or were killed.
    Failed,
}

impl RunOutcome {
    /// The SQL condition on `runs r` for this outcome.
    fn condition(self) -> &'static str {
        match self {
            RunOutcome::All => "1",
            RunOutcome::Ran => "r.reused_from IS NULL",
            RunOutcome::Reused => "r.reused_from IS NOT NULL",
            RunOutcome::Failed => "(r.exit_code IS NULL OR r.exit_code != 0)",
        }
    }
}

/// `text` with SQL `LIKE`'s wildcards escaped (by `\`), inside `%...%`.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Db {
    /// At most `limit` runs that `filter` selects, newest first. Summaries. The rows are
    /// walked from the newest (the primary key backwards), so a page costs what it skips.
    pub fn runs_where(&self, filter: &RunFilter, limit: usize) -> Result<Vec<Run>, LineageError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r
             WHERE r.id < ?1 AND {} AND (?2 = '%%' OR r.command LIKE ?2 ESCAPE '\\')
             ORDER BY r.id DESC LIMIT ?3",
            filter.outcome.condition()
        );
        let before = filter.before.map_or(i64::MAX, |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pattern = like_pattern(&filter.text);
        let run_all = || -> rusqlite::Result<Vec<Run>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![before, pattern, limit], run_from_row)?;
            rows.collect()
        };
        run_all().map_err(query("list runs"))
    }

    /// Every version a path had: each real execution that wrote, created or deleted it,
    /// newest first, with what it left there (its last change to the path). Summaries.
    pub fn versions_of(&self, path: &str) -> Result<Vec<(Run, Output)>, LineageError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}, o.path, o.kind, o.digest, o.mode, o.symlink_target
             FROM outputs o JOIN runs r ON r.id = o.run_id
             WHERE o.path = ?1 AND r.reused_from IS NULL
               AND o.seq = (SELECT max(seq) FROM outputs x
                            WHERE x.run_id = o.run_id AND x.path = o.path)
             ORDER BY o.run_id DESC"
        );
        let run_all = || -> rusqlite::Result<Vec<(Run, Output)>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([path], |row| {
                Ok((run_from_row(row)?, output_at(row, RUN_COLUMN_COUNT)?))
            })?;
            rows.collect()
        };
        run_all().map_err(query("list the versions of a path"))
    }

    /// The rows that reused run `id`, newest first, at most `limit`. Summaries.
    pub fn reuses_of(&self, id: RunId, limit: usize) -> Result<Vec<Run>, LineageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.reused_from = ?1
             ORDER BY r.id DESC LIMIT ?2"
        );
        let run_all = || -> rusqlite::Result<Vec<Run>> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![id.0, limit], run_from_row)?;
            rows.collect()
        };
        run_all().map_err(query("list the reuses of a run"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql` on a fresh database.
    fn plan(sql: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("plan.db")).unwrap();
        let mut stmt = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let mut rows = stmt.raw_query();
        let mut lines = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            lines.push(row.get::<_, String>(3).unwrap());
        }
        lines.join("\n")
    }

    /// A page of the log walks the primary key from the newest row, and the versions of a
    /// path come from the path index: no sort, no scan of the outputs.
    #[test]
    fn browsing_queries_use_keys_and_indexes() {
        let log = plan(&format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.id < ?1 AND 1 ORDER BY r.id DESC LIMIT 50"
        ));
        assert!(log.contains("USING INTEGER PRIMARY KEY"), "{log}");
        assert!(!log.contains("TEMP B-TREE"), "{log}");
        let versions = plan(&format!(
            "SELECT {RUN_COLUMNS} FROM outputs o JOIN runs r ON r.id = o.run_id
             WHERE o.path = ?1 ORDER BY o.run_id DESC"
        ));
        assert!(versions.contains("outputs_by_path_digest"), "{versions}");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(""), "%%");
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
