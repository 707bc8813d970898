//! The session lines that carry out `shark-import` and `shark-publish` blocks.
//!
//! They are ordinary shell lines, run and recorded like a `shark-run` command, so an imported
//! or published file is the output of a run and `shark lineage` can name where it came from:
//!
//! - a local import of a file: `cat -- SOURCE > DEST`, reused while SOURCE is unchanged; of a
//!   directory: `cp -RT -- SOURCE DEST`;
//! - a URL import: `curl -fsSL -R -o DEST URL`, run with the network on and so never reused. When
//!   DEST still holds exactly what the last fetch of that URL left, `-z DEST` turns the download
//!   into a conditional request: an unchanged remote file costs one round trip, not a transfer;
//! - a URL whose path ends with `.git`: `git clone -q URL DEST`, or `git -C DEST pull -q
//!   --ff-only` when DEST already holds a clone, with the network on;
//! - a published path: the same copy to `OUT/NAME`, NAME being PATH's last component (as the
//!   reference system's `rsync` into `_shark` does).
//!
//! Why `cat >` rather than `cp`, and why the caller creates DEST's directory beforehand rather
//! than `mkdir -p` in the line: a run is reused only while every path it looked at is as it
//! was, and `cp` and `mkdir -p` look at their destination first. The first run finds it absent
//! and creates it, so the second would find it present and run again. A redirection creates its
//! file without looking at what was there.

use std::ffi::OsString;
use std::path::Path;

use crate::commands::run::shell_words;

/// Quotes one word for bash.
fn quote(word: &str) -> String {
    shell_words(&[OsString::from(word)])
}

/// The line that copies a local `source` (a directory when `dir`) to `dest`.
pub(super) fn copy(source: &str, dest: &str, dir: bool) -> String {
    if dir {
        format!("cp -RT -- {} {}", quote(source), quote(dest))
    } else {
        format!("cat -- {} > {}", quote(source), quote(dest))
    }
}

/// The line that downloads `url` to `dest`; `conditional` when DEST holds the last download.
pub(super) fn fetch(url: &str, dest: &str, conditional: bool) -> String {
    let since = if conditional {
        format!("-z {} ", quote(dest))
    } else {
        String::new()
    };
    format!("curl -fsSL -R {since}-o {} {}", quote(dest), quote(url))
}

/// The line that fetches the git repository at `url` into `dest`: a clone, or (`update`,
/// when `dest` already holds a clone) a fast-forward pull. Run with the network on.
pub(super) fn git(url: &str, dest: &str, update: bool) -> String {
    match update {
        true => format!("git -C {} pull -q --ff-only", quote(dest)),
        false => format!("git clone -q {} {}", quote(url), quote(dest)),
    }
}

/// Whether an import URL names a git repository (its path ends with `.git`).
pub(super) fn is_git(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.trim_end_matches('/').ends_with(".git")
}

/// The name a published `path` gets in the output directory, or `None` for a path with no
/// last component (`/`, `..`).
pub(super) fn published_name(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    let name = Path::new(trimmed).file_name()?;
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_lines_quote_their_words() {
        assert_eq!(copy("in.csv", "x.csv", false), "cat -- in.csv > x.csv");
        assert_eq!(
            copy("/srv/my data", "data/in", true),
            "cp -RT -- '/srv/my data' data/in"
        );
        assert_eq!(
            fetch("http://h/a?b=1&c", "a.txt", false),
            "curl -fsSL -R -o a.txt 'http://h/a?b=1&c'"
        );
        assert_eq!(
            fetch("http://h/a", "d/a.txt", true),
            "curl -fsSL -R -z d/a.txt -o d/a.txt http://h/a"
        );
    }

    #[test]
    fn git_imports() {
        assert!(is_git("https://h/org/repo.git"));
        assert!(is_git("http://127.0.0.1:8/r.git/?x=1"));
        assert!(!is_git("https://h/data.tif"));
        assert_eq!(
            git("http://h/r.git", "src/r", false),
            "git clone -q http://h/r.git src/r"
        );
        assert_eq!(
            git("http://h/r.git", "my r", true),
            "git -C 'my r' pull -q --ff-only"
        );
    }

    #[test]
    fn published_names_are_last_components() {
        assert_eq!(
            published_name("out/slope.tif").as_deref(),
            Some("slope.tif")
        );
        assert_eq!(published_name("out/tiles/").as_deref(), Some("tiles"));
        assert_eq!(published_name("/"), None);
        assert_eq!(published_name(".."), None);
    }
}
