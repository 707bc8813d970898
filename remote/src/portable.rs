//! Portable text: a machine's own locations replaced by the role they play.
//!
//! Two machines run the same pipeline from checkouts in different places, with different home
//! directories. What a command sees differs only in those locations: its working directory,
//! `HOME`, `TMPDIR` and the shark home. Every string that goes into a remote key (arguments,
//! environment values, recorded paths, the carried shell state) is written in a portable form
//! in which each occurrence of one of these locations, at a path boundary, is replaced by a
//! token naming its role; a machine reading it back puts its own locations in. Paths under the
//! working directory are so keyed relative to it, other paths relative to the innermost
//! location that holds them, and system files (interpreters, libraries) stay absolute.
//!
//! # Encoding
//!
//! The byte 0x01 is the escape: `0x01 '0'` is a literal 0x01, and `0x01` followed by a role
//! letter (`c` working directory, `h` home, `t` TMPDIR, `s` shark home) is that location.
//! Longer locations are matched first, so a working directory inside the home is keyed as
//! the working directory. A location matches where it is a whole path: not preceded by a
//! file name byte and not followed by one (`/home/ann` matches in `/home/ann/x` and
//! `HOME=/home/ann`, not in `/home/anna`).
//!
//! Results must also be portable: a file or stream that mentions one of the locations would
//! be wrong on another machine, so such a run is not shared ([`Locations::mentioned_in`]).

use std::path::{Path, PathBuf};

/// The escape byte of the encoding.
const ESC: u8 = 0x01;

/// The roles a machine location plays, with their letters, in matching priority order for
/// equal lengths.
const ROLES: [(Role, u8); 4] = [
    (Role::Cwd, b'c'),
    (Role::Home, b'h'),
    (Role::Tmpdir, b't'),
    (Role::SharkHome, b's'),
];

/// What a machine location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The command's working directory.
    Cwd,
    /// `$HOME`.
    Home,
    /// `$TMPDIR`.
    Tmpdir,
    /// The shark home.
    SharkHome,
}

/// One machine's own locations for one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// `(role, absolute path without a trailing slash)`, longest path first.
    places: Vec<(Role, Vec<u8>)>,
}

impl Locations {
    /// The locations of a command run in `cwd` with `home`, `tmpdir` and `shark_home`. Any
    /// may be absent; `/`, relative paths and empty ones are no locations.
    pub fn new(
        cwd: &Path,
        home: Option<&Path>,
        tmpdir: Option<&Path>,
        shark_home: Option<&Path>,
    ) -> Locations {
        use std::os::unix::ffi::OsStrExt;
        let mut places = Vec::new();
        for (role, path) in [
            (Role::Cwd, Some(cwd)),
            (Role::Home, home),
            (Role::Tmpdir, tmpdir),
            (Role::SharkHome, shark_home),
        ] {
            let Some(path) = path.filter(|p| p.is_absolute()) else {
                continue;
            };
            let mut bytes = path.as_os_str().as_bytes().to_vec();
            while bytes.len() > 1 && bytes.ends_with(b"/") {
                bytes.pop();
            }
            if bytes != b"/" {
                places.push((role, bytes));
            }
        }
        // Stable: equal lengths keep the order of `ROLES`.
        places.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
        Locations { places }
    }

    /// The path of a role's location, if this machine has one.
    pub fn get(&self, role: Role) -> Option<&[u8]> {
        self.places
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.as_slice())
    }

    /// How the locations sit inside each other, in portable form (e.g. the working
    /// directory is `<home>/src/proj`): part of every key, so that a path reached through
    /// `..` from one location means the same place on both machines.
    pub fn layout(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (role, path) in &self.places {
            let others = Locations {
                places: self
                    .places
                    .iter()
                    .filter(|(r, p)| r != role && p != path)
                    .cloned()
                    .collect(),
            };
            let encoded = others.encode(path);
            if encoded.first() == Some(&ESC) {
                out.push(format!("{}={}", letter(*role) as char, show(&encoded)));
            }
        }
        out.sort();
        out
    }

    /// The portable form of `text`.
    pub fn encode(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            if text[i] == ESC {
                out.extend_from_slice(&[ESC, b'0']);
                i += 1;
                continue;
            }
            let at_boundary = i == 0 || !is_name_byte(text[i - 1]);
            let found = at_boundary
                .then(|| {
                    self.places.iter().find(|(_, p)| {
                        text[i..].starts_with(p)
                            && text.get(i + p.len()).is_none_or(|b| !is_name_byte(*b))
                    })
                })
                .flatten();
            match found {
                Some((role, p)) => {
                    out.extend_from_slice(&[ESC, letter(*role)]);
                    i += p.len();
                }
                None => {
                    out.push(text[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// The text a portable form stands for on this machine; `None` when it names a location
    /// this machine does not have, or is not a portable form.
    pub fn decode(&self, portable: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(portable.len());
        let mut bytes = portable.iter();
        while let Some(&b) = bytes.next() {
            if b != ESC {
                out.push(b);
                continue;
            }
            match bytes.next()? {
                b'0' => out.push(ESC),
                l => {
                    let role = ROLES.iter().find(|(_, x)| x == l)?.0;
                    out.extend_from_slice(self.get(role)?);
                }
            }
        }
        Some(out)
    }

    /// The portable form of a path, as text for a protocol string field.
    pub fn encode_path(&self, path: &Path) -> Option<String> {
        use std::os::unix::ffi::OsStrExt;
        String::from_utf8(self.encode(path.as_os_str().as_bytes())).ok()
    }

    /// The path a portable path stands for on this machine.
    pub fn decode_path(&self, portable: &str) -> Option<PathBuf> {
        use std::os::unix::ffi::OsStringExt;
        let bytes = self.decode(portable.as_bytes())?;
        let path = PathBuf::from(std::ffi::OsString::from_vec(bytes));
        path.is_absolute().then_some(path)
    }

    /// The first location `bytes` mentions (anywhere, boundaries aside: a result that
    /// embeds a location in any form is not portable).
    pub fn mentioned_in(&self, bytes: &[u8]) -> Option<Role> {
        self.places
            .iter()
            .find(|(_, p)| contains(bytes, p))
            .map(|(r, _)| *r)
    }

    /// The locations, for scanning content in chunks ([`Scanner`]).
    pub fn scanner(&self) -> Scanner<'_> {
        Scanner {
            locations: self,
            tail: Vec::new(),
            found: None,
        }
    }
}

/// Looks for the machine's locations in content read in chunks (a location may straddle two).
#[derive(Debug)]
pub struct Scanner<'a> {
    locations: &'a Locations,
    tail: Vec<u8>,
    found: Option<Role>,
}

impl Scanner<'_> {
    /// Scans the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        if self.found.is_some() || self.locations.places.is_empty() {
            return;
        }
        let longest = self.locations.places[0].1.len();
        let mut joined = std::mem::take(&mut self.tail);
        let keep = chunk.len().min(longest);
        joined.extend_from_slice(&chunk[..keep]);
        self.found = self
            .locations
            .mentioned_in(&joined)
            .or_else(|| self.locations.mentioned_in(chunk));
        let from = chunk.len().saturating_sub(longest);
        self.tail = chunk[from..].to_vec();
    }

    /// The first location found, if any.
    pub fn found(&self) -> Option<Role> {
        self.found
    }
}

fn letter(role: Role) -> u8 {
    ROLES.iter().find(|(r, _)| *r == role).map_or(b'?', |x| x.1)
}

/// Bytes that continue a file name (so a location followed by one is a different name).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'.' | b'_' | b'-' | b'+' | b'~' | b'@' | b'%')
        || b >= 0x80
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// A portable form for people: tokens shown as `$CWD`, `$HOME`, `$TMPDIR`, `$SHARK_HOME`.
pub fn show(portable: &[u8]) -> String {
    let mut out = String::new();
    let mut bytes = portable.iter();
    while let Some(&b) = bytes.next() {
        if b != ESC {
            out.push(b as char);
            continue;
        }
        match bytes.next() {
            Some(b'c') => out.push_str("$CWD"),
            Some(b'h') => out.push_str("$HOME"),
            Some(b't') => out.push_str("$TMPDIR"),
            Some(b's') => out.push_str("$SHARK_HOME"),
            _ => out.push('\u{1}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> Locations {
        Locations::new(
            Path::new("/home/ann/src/proj"),
            Some(Path::new("/home/ann")),
            None,
            Some(Path::new("/home/ann/.local/share/shark")),
        )
    }

    fn there() -> Locations {
        Locations::new(
            Path::new("/home/bob/src/proj"),
            Some(Path::new("/home/bob/")),
            None,
            Some(Path::new("/home/bob/.local/share/shark")),
        )
    }

    #[test]
    fn paths_are_keyed_by_the_innermost_location() {
        let l = here();
        assert_eq!(
            show(&l.encode(b"/home/ann/src/proj/data/x.csv")),
            "$CWD/data/x.csv"
        );
        assert_eq!(show(&l.encode(b"/home/ann/.bashrc")), "$HOME/.bashrc");
        assert_eq!(show(&l.encode(b"/usr/lib/libc.so.6")), "/usr/lib/libc.so.6");
        assert_eq!(
            show(&l.encode(b"PATH=/home/ann/bin:/usr/bin")),
            "PATH=$HOME/bin:/usr/bin"
        );
        // Only whole names match.
        assert_eq!(show(&l.encode(b"/home/anna/x")), "/home/anna/x");
        assert_eq!(show(&l.encode(b"/x/home/ann")), "/x/home/ann");
    }

    #[test]
    fn another_machine_reads_its_own_locations_back() {
        let text = b"cd /home/ann/src/proj && cat /home/ann/in \x01 /etc/passwd";
        let portable = here().encode(text);
        assert_eq!(here().decode(&portable).unwrap(), text);
        assert_eq!(
            there().decode(&portable).unwrap(),
            b"cd /home/bob/src/proj && cat /home/bob/in \x01 /etc/passwd"
        );
        // A machine without a TMPDIR cannot read a path under one.
        let with_tmp = Locations::new(Path::new("/w"), None, Some(Path::new("/scratch")), None);
        let p = with_tmp.encode(b"/scratch/f");
        assert!(there().decode(&p).is_none());
    }

    #[test]
    fn layout_says_how_locations_nest() {
        assert_eq!(here().layout(), there().layout());
        assert_eq!(
            here().layout(),
            vec!["c=$HOME/src/proj", "s=$HOME/.local/share/shark"]
        );
        let elsewhere = Locations::new(
            Path::new("/srv/proj"),
            Some(Path::new("/home/ann")),
            None,
            None,
        );
        assert_ne!(elsewhere.layout(), here().layout());
    }

    #[test]
    fn mentions_are_found_across_chunks() {
        let l = here();
        assert_eq!(l.mentioned_in(b"out: /home/ann/x"), Some(Role::Home));
        assert_eq!(l.mentioned_in(b"nothing"), None);
        let mut s = l.scanner();
        s.update(b"xxxx /home/a");
        assert_eq!(s.found(), None);
        s.update(b"nn/src/proj/out yyyy");
        assert_eq!(s.found(), Some(Role::Cwd));
    }
}
