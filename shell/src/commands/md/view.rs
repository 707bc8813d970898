//! What `shark serve` shows of documents: each document's last run (its [`Record`]) joined
//! with the document's text and the recorded runs, as `shark-web`'s plain values.

use std::path::Path;

use shark_lineage::{Db, RunId};
use shark_store::{Digest, Store};
use shark_web::{DocCommand, DocSegment, DocStatus, DocSummary, DocView, Documents};

use super::record::Record;
use super::Loaded;
use crate::home::Home;
use crate::markdown::{Segment, MAX_OUTPUT_BYTES};

/// The documents of one shark home.
#[derive(Debug)]
pub(crate) struct ShellDocuments {
    home: Home,
}

impl ShellDocuments {
    pub(crate) fn new(home: &Home) -> Self {
        ShellDocuments { home: home.clone() }
    }
}

fn status(record: &Record) -> DocStatus {
    match (record.is_running(), record.exit_code) {
        (true, _) => DocStatus::Running,
        (false, Some(0)) => DocStatus::Done,
        (false, Some(code)) => DocStatus::Failed(code),
        // Killed while running: no status was written.
        (false, None) => DocStatus::Failed(-1),
    }
}

impl Documents for ShellDocuments {
    fn list(&self) -> Vec<DocSummary> {
        Record::all(&self.home)
            .into_iter()
            .map(|r| DocSummary {
                path: r.doc.clone().into(),
                status: status(&r),
            })
            .collect()
    }

    fn get(&self, path: &Path) -> Option<DocView> {
        let loaded = Loaded::read(path).ok()?;
        let record = Record::load(&self.home, &loaded.path)?;
        let db = Db::open(&self.home.db_path()).ok()?;
        let store = Store::open_read_only(&self.home.store_dir()).ok()?;
        let mut blocks = record.blocks.iter();
        let segments = loaded
            .doc
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => DocSegment::Prose(text.clone()),
                Segment::Block(block) => DocSegment::Block {
                    info: block.info.clone(),
                    line: block.line,
                    body: block.body.clone(),
                    commands: blocks
                        .next()
                        .map(|b| b.commands.iter().map(|c| command(&db, &store, c)).collect())
                        .unwrap_or_default(),
                },
            })
            .collect();
        Some(DocView {
            path: loaded.path.clone(),
            status: status(&record),
            changed: record.digest != Digest::of_bytes(loaded.text.as_bytes()).to_hex(),
            segments,
        })
    }
}

/// One recorded command with its run's outcome and (cut) stdout.
fn command(db: &Db, store: &Store, c: &super::record::CommandRecord) -> DocCommand {
    let run = db.run(RunId(c.run)).ok();
    let stdout = run
        .as_ref()
        .and_then(|r| r.stdout)
        .and_then(|d| store.read_to_vec(&d).ok())
        .map(|mut b| {
            b.truncate(MAX_OUTPUT_BYTES);
            String::from_utf8_lossy(&b).into_owned()
        })
        .unwrap_or_default();
    DocCommand {
        text: run
            .as_ref()
            .map_or_else(|| c.text.clone(), |r| r.command.clone()),
        run: c.run,
        reused_from: run.as_ref().and_then(|r| r.reused_from).map(|id| id.0),
        exit_code: run.as_ref().and_then(|r| r.exit_code),
        stdout,
    }
}
