//! Conversions between model values and SQLite columns.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use shark_store::Digest;

use crate::{InputKind, OutputKind};

/// A digest column: a 32-byte BLOB.
pub(crate) struct DigestCol(pub Digest);

impl FromSql for DigestCol {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let bytes = value.as_blob()?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| FromSqlError::InvalidBlobSize {
                expected_size: 32,
                blob_size: bytes.len(),
            })?;
        Ok(DigestCol(Digest::from_bytes(array)))
    }
}

/// Reads a nullable digest column.
pub(crate) fn digest_opt(col: Option<DigestCol>) -> Option<Digest> {
    col.map(|c| c.0)
}

/// A stored kind name that this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} kind {text:?}")]
struct UnknownKind {
    what: &'static str,
    text: String,
}

fn kind_from_text<T>(
    value: ValueRef<'_>,
    what: &'static str,
    parse: fn(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let text = value.as_str()?;
    parse(text).ok_or_else(|| {
        FromSqlError::Other(Box::new(UnknownKind {
            what,
            text: text.to_owned(),
        }))
    })
}

impl InputKind {
    /// The name stored in the database (and used wherever the kind is written as text).
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::File => "file",
            InputKind::Dir => "dir",
            InputKind::Symlink => "symlink",
            InputKind::Absent => "absent",
            InputKind::Stdin => "stdin",
            InputKind::NotDir => "notdir",
            InputKind::Special => "special",
            InputKind::Xattrs => "xattrs",
        }
    }

    /// The kind named `text` (as [`Self::as_str`] writes it), `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::File,
            Self::Dir,
            Self::Symlink,
            Self::Absent,
            Self::Stdin,
            Self::NotDir,
            Self::Special,
            Self::Xattrs,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

impl OutputKind {
    /// The name stored in the database (and used wherever the kind is written as text).
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::File => "file",
            OutputKind::Dir => "dir",
            OutputKind::Symlink => "symlink",
            OutputKind::Deleted => "deleted",
        }
    }

    /// The kind named `text` (as [`Self::as_str`] writes it), `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::File, Self::Dir, Self::Symlink, Self::Deleted]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

impl ToSql for InputKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for InputKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        kind_from_text(value, "input", Self::parse)
    }
}

impl ToSql for OutputKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for OutputKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        kind_from_text(value, "output", Self::parse)
    }
}

/// An argument vector column: a JSON array of strings.
pub(crate) struct ArgvCol(pub Vec<String>);

impl FromSql for ArgvCol {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(ArgvCol)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Encodes an argument vector for an [`ArgvCol`] column.
pub(crate) fn argv_text(argv: &[String]) -> String {
    // Serialising strings into JSON cannot fail.
    serde_json::to_string(argv).unwrap_or_default()
}

/// Encodes the excluded names of a listing input: NULL when there are none, else a JSON
/// array of strings.
pub(crate) fn names_text(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| serde_json::to_string(names).unwrap_or_default())
}

/// Decodes [`names_text`].
pub(crate) fn names_from(text: Option<String>) -> rusqlite::Result<Vec<String>> {
    match text {
        None => Ok(Vec::new()),
        Some(t) => serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        }),
    }
}
