//! Helpers shared by the test modules.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shark_lineage::{Db, Input, InputKind, NewRun, Output, OutputKind};
use shark_store::Digest;
use tempfile::TempDir;

/// A fresh database in its own temporary directory (kept alive by the returned guard).
pub fn fresh() -> (TempDir, PathBuf, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lineage.db");
    let db = Db::open(&path).unwrap();
    (dir, path, db)
}

/// The digest of `text`.
pub fn d(text: &str) -> Digest {
    Digest::of_bytes(text.as_bytes())
}

/// A fixed instant `secs` seconds after 2024-01-01T00:00:00Z.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_704_067_200 + secs)
}

/// A successful, reusable run of `command` with weak key `key`, started at `at(secs)`.
pub fn ok_run(command: &str, key: &str, secs: u64) -> NewRun {
    NewRun {
        argv: command.split(' ').map(String::from).collect(),
        exit_code: Some(0),
        reusable: true,
        duration: Duration::from_millis(250),
        ..NewRun::new(command, "/work", d("env"), d(key), at(secs))
    }
}

/// A file input at `path` holding `content`.
pub fn file_in(path: &str, content: &str) -> Input {
    Input {
        path: path.into(),
        kind: InputKind::File,
        digest: Some(d(content)),
        mode: None,
        exclude: Vec::new(),
        as_left: shark_lineage::AsLeft::No,
    }
}

/// A file output at `path` holding `content`, mode 644.
pub fn file_out(path: &str, content: &str) -> Output {
    Output {
        path: path.into(),
        kind: OutputKind::File,
        digest: Some(d(content)),
        mode: Some(0o644),
        symlink_target: None,
    }
}
