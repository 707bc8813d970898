//! The bodies of shark blocks: run commands, imports and published paths.

use super::{BlockKind, Command, Import, ImportSource, MarkdownError};

const RUN: &str = "shark-run";
const IMPORT: &str = "shark-import";
const PUBLISH: &str = "shark-publish";
const BUILD: &str = "shark-build";

/// The shark word an info string starts with (`shark-run` or `shark-run:X`), if any.
pub(super) fn kind_of(info: &str) -> Option<&'static str> {
    let first = info.split_whitespace().next()?;
    let word = first.split_once(':').map_or(first, |(w, _)| w);
    [RUN, IMPORT, PUBLISH, BUILD]
        .into_iter()
        .find(|k| *k == word)
}

/// Parses a block's content lines (`(document line, text)`) given its shark word and the text
/// after the word's colon; returns the kind and the image.
pub(super) fn parse_body(
    word: &str,
    suffix: Option<String>,
    lines: &[(usize, &str)],
) -> Result<(BlockKind, Option<String>), MarkdownError> {
    Ok(match word {
        RUN => (
            BlockKind::Run {
                commands: commands(lines),
            },
            suffix,
        ),
        IMPORT => (
            BlockKind::Import {
                imports: imports(lines)?,
            },
            None,
        ),
        PUBLISH => (
            BlockKind::Publish {
                paths: significant(lines).map(|(_, l)| l.to_owned()).collect(),
                dir: suffix,
            },
            None,
        ),
        _ => (BlockKind::Build, suffix),
    })
}

/// The lines that are neither blank nor `#` comments, trimmed.
fn significant<'a>(lines: &'a [(usize, &'a str)]) -> impl Iterator<Item = (usize, &'a str)> {
    lines
        .iter()
        .map(|&(n, l)| (n, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// The commands of a run block: one per line, an optional `$ ` prompt, `\` continuations.
fn commands(lines: &[(usize, &str)]) -> Vec<Command> {
    let mut out = Vec::new();
    let mut current: Option<Command> = None;
    for &(n, line) in lines {
        let line = line.trim_end();
        let text = match &mut current {
            Some(cmd) => {
                cmd.text.push_str(line);
                cmd
            }
            None => {
                let trimmed = line.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let unprompted = strip_prompt(trimmed);
                current.insert(Command {
                    text: unprompted.to_owned(),
                    line: n,
                })
            }
        };
        if continues(&text.text) {
            // As bash does, the backslash-newline pair disappears.
            text.text.pop();
        } else {
            out.extend(current.take().and_then(finish));
        }
    }
    // A continuation on the block's last line simply ends the command.
    out.extend(current.and_then(finish));
    out
}

/// A finished command, trailing blanks removed; `None` when nothing is left.
fn finish(mut cmd: Command) -> Option<Command> {
    cmd.text.truncate(cmd.text.trim_end().len());
    (!cmd.text.is_empty()).then_some(cmd)
}

/// `line` without a leading `$ ` (or a lone `$`).
fn strip_prompt(line: &str) -> &str {
    match line.strip_prefix('$') {
        Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// Whether a command line ends with an unescaped backslash.
fn continues(text: &str) -> bool {
    let slashes = text.len() - text.trim_end_matches('\\').len();
    slashes % 2 == 1
}

/// The imports of an import block.
fn imports(lines: &[(usize, &str)]) -> Result<Vec<Import>, MarkdownError> {
    significant(lines)
        .map(|(line, l)| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let [source, dest] = fields[..] else {
                return Err(MarkdownError::ImportFields {
                    line,
                    fields: fields.len(),
                });
            };
            Ok(Import {
                source: import_source(source, line)?,
                dest: dest.to_owned(),
                line,
            })
        })
        .collect()
}

/// Classifies an import source: http(s) URLs, `file://` URLs and plain paths.
fn import_source(source: &str, line: usize) -> Result<ImportSource, MarkdownError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        return Ok(ImportSource::Url(source.to_owned()));
    }
    if let Some(path) = source.strip_prefix("file://") {
        return Ok(ImportSource::Path(path.to_owned()));
    }
    match source.split_once("://") {
        Some((scheme, _)) if is_scheme(scheme) => Err(MarkdownError::ImportScheme {
            line,
            scheme: scheme.to_owned(),
        }),
        _ => Ok(ImportSource::Path(source.to_owned())),
    }
}

/// Whether `s` looks like a URL scheme (RFC 3986: a letter, then letters, digits, `+-.`).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered<'a>(lines: &[&'a str]) -> Vec<(usize, &'a str)> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| (10 + i, *l))
            .collect()
    }

    fn cmd(text: &str, line: usize) -> Command {
        Command {
            text: text.into(),
            line,
        }
    }

    #[test]
    fn kinds_from_info_strings() {
        assert_eq!(kind_of("shark-run"), Some(RUN));
        assert_eq!(kind_of("shark-run:gdal-env:abc123"), Some(RUN));
        assert_eq!(kind_of("shark-import extra words"), Some(IMPORT));
        assert_eq!(kind_of("shark-publish:out"), Some(PUBLISH));
        assert_eq!(kind_of("shark-build:env"), Some(BUILD));
        assert_eq!(kind_of("shark-runner"), None);
        assert_eq!(kind_of("bash shark-run"), None);
        assert_eq!(kind_of(""), None);
    }

    #[test]
    fn run_commands() {
        let lines = numbered(&[
            "$ gdalinfo --version > v.txt",
            "",
            "# a comment",
            "  $ gdal_translate -of GTiff \\",
            "      in.asc out.tif",
            "echo '$ not a prompt'",
            "$",
            "$echo x",
            "  echo a \\\\",
            "tail \\",
        ]);
        assert_eq!(
            commands(&lines),
            vec![
                cmd("gdalinfo --version > v.txt", 10),
                cmd("gdal_translate -of GTiff       in.asc out.tif", 13),
                cmd("echo '$ not a prompt'", 15),
                cmd("$echo x", 17),
                cmd("echo a \\\\", 18),
                cmd("tail", 19),
            ]
        );
    }

    #[test]
    fn continuation_over_a_comment_line_is_joined_as_bash_would() {
        let lines = numbered(&["$ a \\", "# b", "c"]);
        assert_eq!(commands(&lines), vec![cmd("a # b", 10), cmd("c", 12)]);
    }

    #[test]
    fn import_lines() {
        let lines = numbered(&[
            "https://example.com/dem.tif data/dem.tif",
            "# comment",
            "  /srv/in.csv   in.csv  ",
            "file:///srv/x.csv x.csv",
            "http://h/repo.git repo",
        ]);
        let got = imports(&lines).unwrap();
        let sources: Vec<_> = got
            .iter()
            .map(|i| (&i.source, i.dest.as_str(), i.line))
            .collect();
        assert_eq!(
            sources,
            vec![
                (
                    &ImportSource::Url("https://example.com/dem.tif".into()),
                    "data/dem.tif",
                    10
                ),
                (&ImportSource::Path("/srv/in.csv".into()), "in.csv", 12),
                (&ImportSource::Path("/srv/x.csv".into()), "x.csv", 13),
                (&ImportSource::Url("http://h/repo.git".into()), "repo", 14),
            ]
        );
    }

    #[test]
    fn bad_imports_name_their_line() {
        let lines = numbered(&["a b", "only-one"]);
        assert_eq!(
            imports(&lines),
            Err(MarkdownError::ImportFields {
                line: 11,
                fields: 1
            })
        );
        let lines = numbered(&["a b c"]);
        assert_eq!(
            imports(&lines),
            Err(MarkdownError::ImportFields {
                line: 10,
                fields: 3
            })
        );
        let lines = numbered(&["s3://bucket/k k"]);
        assert_eq!(
            imports(&lines),
            Err(MarkdownError::ImportScheme {
                line: 10,
                scheme: "s3".into()
            })
        );
    }

    #[test]
    fn publish_and_build_bodies() {
        let lines = numbered(&["out/hillshade.tif", "", "  out/slope.tif  "]);
        assert_eq!(
            parse_body(PUBLISH, Some("site".into()), &lines).unwrap(),
            (
                BlockKind::Publish {
                    paths: vec!["out/hillshade.tif".into(), "out/slope.tif".into()],
                    dir: Some("site".into())
                },
                None
            )
        );
        assert_eq!(
            parse_body(BUILD, Some("env".into()), &lines).unwrap(),
            (BlockKind::Build, Some("env".into()))
        );
    }
}
