//! Checks and preparations of `shark md` before anything runs: the data folder bound at
//! `/data`, the frontmatter's inputs (and `-i` replacements), the variables to export, and
//! warnings about `-e` overrides that match nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::Loaded;
use crate::error::CliError;
use crate::markdown::BlockKind;

/// Every `inputs` path of the frontmatter must exist (relative ones from the document's
/// directory, `/data/...` ones in the data folder), unless `-i` gives it.
pub(super) fn check_inputs(
    loaded: &Loaded,
    data: Option<&Path>,
    given: &[(String, PathBuf)],
) -> Result<(), CliError> {
    for input in &loaded.doc.frontmatter.inputs {
        if given.iter().any(|(declared, _)| declared == input) {
            continue;
        }
        let path = host_path(&loaded.dir, data, input);
        if path.symlink_metadata().is_err() {
            return Err(CliError::usage(
                format!(
                    "{}: input `{input}` does not exist ({})",
                    loaded.name(),
                    path.display()
                ),
                Some("create it, give it with `-i NAME=PATH`, or correct the `inputs` of the frontmatter".into()),
            ));
        }
    }
    Ok(())
}

/// The host path of a path as the document's commands see it: `/data/...` lies in the data
/// folder, a relative path in the document's directory.
pub(super) fn host_path(dir: &Path, data: Option<&Path>, path: &str) -> PathBuf {
    match (data, Path::new(path).strip_prefix(DATA)) {
        (Some(data), Ok(rest)) => data.join(rest),
        _ => dir.join(path),
    }
}

/// Where the document's commands see the data folder.
pub(super) const DATA: &str = "/data";

/// The data folder bound at `/data`: `--data DIR`, else `DOC.data` beside the document when
/// the document mentions `/data`; created if missing.
pub(super) fn data_dir(loaded: &Loaded, given: Option<&Path>) -> Result<Option<PathBuf>, CliError> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None if loaded.text.contains("/data") => {
            let name = loaded.name();
            let stem = name.strip_suffix(".md").unwrap_or(&name);
            loaded.dir.join(format!("{stem}.data"))
        }
        None => return Ok(None),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::failed(format!("cannot create {}", dir.display()), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| CliError::failed(format!("cannot resolve {}", dir.display()), e))?;
    Ok(Some(dir))
}

/// `-i NAME=PATH`: each NAME an input of the frontmatter's `inputs:` mapping, each PATH an
/// existing file or folder; returns (the input's declared path, PATH made absolute).
pub(super) fn given_inputs(
    loaded: &Loaded,
    given: &[(String, String)],
) -> Result<Vec<(String, PathBuf)>, CliError> {
    let named = &loaded.doc.frontmatter.named_inputs;
    given
        .iter()
        .map(|(name, path)| {
            let Some((_, declared)) = named.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
                return Err(CliError::usage(
                    format!("{}: no input `{name}` in the frontmatter", loaded.name()),
                    Some(match names.is_empty() {
                        true => "`-i NAME=PATH` names an input of an `inputs:` mapping".into(),
                        false => format!("its inputs are: {}", names.join(", ")),
                    }),
                ));
            };
            let abs = std::path::absolute(path)
                .ok()
                .filter(|p| p.exists())
                .ok_or_else(|| CliError::usage(format!("-i {name}={path}: no such file"), None))?;
            Ok((declared.clone(), abs))
        })
        .collect()
}

/// Warns about `-e KEY=VALUE` whose KEY the document neither sets in its frontmatter nor
/// exports in a block.
pub(super) fn warn_unused_overrides(loaded: &Loaded, env: &[(String, String)]) {
    for (key, _) in env {
        let in_frontmatter = loaded
            .doc
            .frontmatter
            .variables
            .iter()
            .any(|(k, _)| k == key);
        let exported = loaded.doc.blocks().any(|b| match &b.kind {
            BlockKind::Run { commands } => commands
                .iter()
                .any(|c| super::export_assignment(&c.text).is_some_and(|(k, _)| k == key)),
            _ => false,
        });
        if !in_frontmatter && !exported {
            eprintln!(
                "shark: warning: -e {key}: {} sets no `{key}` (no frontmatter variable, no `export {key}=` line)",
                loaded.name()
            );
        }
    }
}

/// The frontmatter's variables, checked to be names bash can export.
pub(super) fn variables(loaded: &Loaded) -> Result<Vec<(OsString, OsString)>, CliError> {
    let valid = |k: &str| {
        let mut chars = k.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut out = Vec::new();
    for (key, value) in &loaded.doc.frontmatter.variables {
        if !valid(key) {
            return Err(CliError::usage(
                format!(
                    "{}: frontmatter key `{key}` is not a shell variable name",
                    loaded.name()
                ),
                Some("use letters, digits and `_`, not starting with a digit".into()),
            ));
        }
        out.push((key.into(), value.into()));
    }
    Ok(out)
}
