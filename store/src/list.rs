//! Listing a store's blobs: the shard directories' files and the pack's rows, merged into one
//! ascending sequence of digests.
//!
//! Both sides are read a little at a time (a shard directory, a page of rows), so listing a
//! large store holds little in memory and no lock on the pack between pages. A digest found
//! both as a file and as a row (only a concurrent put by an older shark can make that) is
//! listed once, as the row: the same copy a lookup finds first when its size is known.

use std::cmp::Ordering;
use std::fs;
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use crate::blob::{parse_blob_name, Encoding};
use crate::pack::{Listed, Pack};
use crate::{Digest, Store, StoreError};

/// One blob found by listing the store.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub digest: Digest,
    pub encoding: Encoding,
    pub place: Place,
}

/// Where a listed blob is, with what listing it told about its size.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    /// A blob file.
    File(PathBuf),
    /// A row of the pack, with its content size and stored size.
    Packed { size: u64, stored: u64 },
}

impl Store {
    /// Every blob with its place and encoding, in ascending digest order.
    pub(crate) fn entries(&self) -> Entries {
        Entries {
            files: FileEntries {
                blobs: self.blobs.clone(),
                shards: None,
                current: Vec::new().into_iter(),
            }
            .peekable(),
            packed: PackEntries {
                pack: self.pack.clone(),
                after: Vec::new(),
                page: Vec::new().into_iter(),
                done: false,
            }
            .peekable(),
        }
    }
}

/// Iterator over all the store's blobs: files and rows merged.
#[derive(Debug)]
pub(crate) struct Entries {
    files: Peekable<FileEntries>,
    packed: Peekable<PackEntries>,
}

impl Iterator for Entries {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.files.peek(), self.packed.peek()) {
            (None, None) => return None,
            (Some(Err(_)), _) | (Some(_), None) => Ordering::Less,
            (_, Some(Err(_))) | (None, Some(_)) => Ordering::Greater,
            (Some(Ok(file)), Some(Ok(row))) => file.digest.cmp(&row.digest),
        };
        if order == Ordering::Equal {
            self.files.next();
        }
        match order {
            Ordering::Less => self.files.next(),
            Ordering::Equal | Ordering::Greater => self.packed.next(),
        }
    }
}

/// Iterator over the pack's rows, a page at a time; stops after an error.
#[derive(Debug)]
struct PackEntries {
    pack: Pack,
    /// The last digest listed (empty before the first page).
    after: Vec<u8>,
    page: std::vec::IntoIter<Listed>,
    done: bool,
}

impl Iterator for PackEntries {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(row) = self.page.next() {
            return Some(Ok(Entry {
                digest: row.digest,
                encoding: row.encoding,
                place: Place::Packed {
                    size: row.size,
                    stored: row.stored,
                },
            }));
        }
        if self.done {
            return None;
        }
        match self.pack.page(&self.after) {
            Ok(rows) => {
                self.done = !Pack::page_is_full(rows.len());
                let last = rows.last()?;
                self.after = last.digest.as_bytes().to_vec();
                self.page = rows.into_iter();
                self.next()
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over the blob files, one shard directory at a time.
#[derive(Debug)]
struct FileEntries {
    blobs: PathBuf,
    shards: Option<std::vec::IntoIter<(String, PathBuf)>>,
    current: std::vec::IntoIter<Entry>,
}

impl FileEntries {
    fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let list_err = |source| StoreError::List {
            path: dir.to_owned(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push((name, entry.path()));
            }
        }
        names.sort();
        Ok(names)
    }

    fn load_shard(&mut self, shard: &str, dir: &Path) -> Result<(), StoreError> {
        let entries: Vec<Entry> = Self::list(dir)?
            .into_iter()
            .filter_map(|(name, path)| {
                let (digest, encoding) = parse_blob_name(shard, &name)?;
                Some(Entry {
                    digest,
                    encoding,
                    place: Place::File(path),
                })
            })
            .collect();
        self.current = entries.into_iter();
        Ok(())
    }
}

impl Iterator for FileEntries {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some(Ok(entry));
            }
            if self.shards.is_none() {
                match Self::list(&self.blobs) {
                    Ok(shards) => self.shards = Some(shards.into_iter()),
                    Err(e) => {
                        self.shards = Some(Vec::new().into_iter());
                        return Some(Err(e));
                    }
                }
            }
            let (shard, dir) = self.shards.as_mut()?.next()?;
            if shard.len() != 2 || !dir.is_dir() {
                continue;
            }
            if let Err(e) = self.load_shard(&shard, &dir) {
                return Some(Err(e));
            }
        }
    }
}
