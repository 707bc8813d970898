//! `shark store verify`: every blob re-hashed, and every database of the home checked.
//!
//! The pack of small blobs and the stat cache heal themselves when found damaged (see
//! `shark_store::heal`); verify runs SQLite's integrity check on each so that damage that no
//! command happened to meet is found too, and says what was kept and lost. The lineage
//! database is the user's history: verify checks it, keeps a copy of it if it is damaged and
//! says how to rebuild it, but changes nothing in it. Then it lists the blobs that reusable
//! runs need and the store no longer holds (those runs will run again). Any of these exits
//! with status 1.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use shark_lineage::{Db, LineageError};
use shark_store::heal;
use shark_store::{Healed, StatCache, Store, StoreError};

use crate::error::{CliError, EXIT_FAILURE};
use crate::home::Home;

/// What went wrong while verifying.
pub(crate) enum Failure {
    Store(StoreError),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Verifies the store, the stat cache and the lineage database of `home`; the exit status.
pub(crate) fn verify(
    home: &Home,
    store: &Store,
    repair: bool,
    out: &mut impl Write,
) -> Result<i32, Failure> {
    let report = store.verify_all()?;
    let mut damaged = report.healed.len();
    for healed in &report.healed {
        writeln!(out, "{healed}")?;
    }
    let cache = home.root().join("statcache.db");
    if cache.exists() {
        // Damage is found when the cache is opened or by its check; either way it is
        // rebuilt and reported through the callback.
        let said = Arc::new(Mutex::new(Vec::new()));
        let tell = said.clone();
        let on_heal = move |h: &Healed| {
            tell.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(h.to_string())
        };
        StatCache::open_with(&cache, Some(Arc::new(on_heal)))?.check()?;
        for line in said.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            writeln!(out, "{line}")?;
            damaged += 1;
        }
    }
    let missing = match lineage(home, repair, out)? {
        Some(db) => missing_blobs(&db, store, out)?,
        None if home.db_path().exists() => {
            damaged += 1;
            0
        }
        None => 0,
    };
    for (digest, reason) in &report.corrupt {
        writeln!(out, "corrupt {digest}: {}", reason.summary())?;
    }
    let corrupt = report.corrupt.len();
    if corrupt + missing + damaged == 0 {
        writeln!(out, "{} blobs verified, all intact", report.checked)?;
        return Ok(0);
    }
    let mut summary = format!("{} blobs verified, {corrupt} corrupt", report.checked);
    if missing > 0 {
        summary.push_str(&format!(", {missing} missing"));
    }
    if damaged > 0 {
        summary.push_str(&format!(", {damaged} damaged databases"));
    }
    writeln!(out, "{summary}")?;
    Ok(EXIT_FAILURE)
}

/// Checks the lineage database: the open database when it is sound, else `None` after
/// saying what is wrong (a copy of a damaged one is kept beside it), and, with `repair`,
/// after rebuilding it from that copy.
fn lineage(home: &Home, repair: bool, out: &mut impl Write) -> Result<Option<Db>, Failure> {
    let path = home.db_path();
    if !path.exists() {
        return Ok(None);
    }
    let what = match Db::open(&path) {
        Ok(db) => match db.integrity_check() {
            Ok(messages) if messages == ["ok"] => return Ok(Some(db)),
            Ok(messages) => format!("integrity check: {}", messages.join("; ")),
            Err(e) => damage_of(e)?,
        },
        Err(e) => damage_of(e)?,
    };
    write!(out, "{} is damaged ({what})", path.display())?;
    let copy = match heal::keep_copy_once(&path) {
        Ok(copy) => copy,
        Err(e) => {
            writeln!(out, "; no copy could be kept ({e}), so it is left as it is")?;
            return Ok(None);
        }
    };
    writeln!(out, "; a copy is kept at {}", copy.display())?;
    if !repair {
        writeln!(out, "hint: {}", crate::error::LINEAGE_DAMAGE_HINT)?;
        return Ok(None);
    }
    // No run may be recorded while the history is rebuilt.
    let _lock = home.lock(true).map_err(io::Error::other)?;
    let rebuilt = Db::rebuild_from(&path, &copy).map_err(io::Error::other)?;
    write!(
        out,
        "rebuilt {} from the copy: {} runs recovered (kept for lineage, no longer reused), {} lost",
        path.display(),
        rebuilt.runs,
        rebuilt.lost.len()
    )?;
    match rebuilt.complete {
        true => writeln!(out)?,
        false => writeln!(out, ", and others that could not be listed")?,
    }
    Ok(None)
}

/// What a lineage error says about damage, or the error itself when it is something else.
fn damage_of(e: LineageError) -> Result<String, Failure> {
    match heal::is_damage_chain(&e) {
        true => Ok(crate::error::chain(&e)),
        false => Err(Failure::Io(io::Error::other(e))),
    }
}

/// Names each blob that a reusable run needs and the store does not hold; how many.
fn missing_blobs(db: &Db, store: &Store, out: &mut impl Write) -> Result<usize, Failure> {
    let needed = db.needed_blobs().map_err(io::Error::other)?;
    let mut missing = std::collections::BTreeMap::new();
    for (digest, run) in needed {
        if !store.contains(&digest) {
            missing.entry(digest).or_insert(run);
        }
    }
    for (digest, run) in &missing {
        writeln!(
            out,
            "missing {digest}: needed to reuse run {run}, which will run again"
        )?;
    }
    Ok(missing.len())
}

/// A verify failure as the command line reports it.
pub(crate) fn cli_error(f: Failure) -> Result<i32, CliError> {
    match f {
        Failure::Store(e) => Err(super::store::store_err(e)),
        Failure::Io(e) if crate::error::is_broken_pipe(&e) => Ok(0),
        Failure::Io(e) => Err(CliError::failed("cannot verify the store", e)),
    }
}
