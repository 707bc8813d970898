//! YAML frontmatter: the small subset of YAML that Shark documents use.
//!
//! Supported: `key: value` scalars (plain, `'single'` or `"double"` quoted, `# comments`),
//! lists as indented `- item` lines or `[a, b]`, and, under `inputs` only, one level of nested
//! `name: path` mapping (the reference system's form, whose values are the inputs). Anything
//! else (block scalars, flow mappings, deeper nesting) is an error naming its line rather than
//! being misread.
//!
//! Every top-level key but `inputs` is a variable that the executor exports to the document's
//! commands; a list variable's value is its items joined by single spaces (so `for id in $ids`
//! iterates over them).

use super::{numbered_lines, strip_eol};

/// The frontmatter of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontmatter {
    /// The `inputs` the document declares (paths), in order.
    pub inputs: Vec<String>,
    /// Every other key with its value, in order.
    pub variables: Vec<(String, String)>,
    /// The names of the inputs given as a `name: path` mapping (the reference system's form),
    /// with their paths; what `shark md -i NAME=PATH` refers to.
    pub named_inputs: Vec<(String, String)>,
    /// Every variable with its values: a list's items, or a scalar as one item (what
    /// `shark template` makes its combinations of).
    pub lists: Vec<(String, Vec<String>)>,
}

/// Why the frontmatter cannot be read. Lines are 1-based document lines.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrontmatterError {
    /// The opening `---` has no closing `---`.
    #[error("line {line}: the frontmatter is never closed (expected a `---` line)")]
    Unterminated {
        /// Line of the opening `---`.
        line: usize,
    },
    /// A top-level line is not `key: value`.
    #[error("line {line}: expected `key: value` in the frontmatter")]
    ExpectedKey {
        /// The offending line.
        line: usize,
    },
    /// A line is indented where no nested value can start.
    #[error("line {line}: unexpected indentation in the frontmatter")]
    UnexpectedIndent {
        /// The offending line.
        line: usize,
    },
    /// A nested mapping under a key other than `inputs`.
    #[error("line {line}: `{key}` holds a nested mapping; only `inputs` may")]
    NestedMapping {
        /// The offending line.
        line: usize,
        /// The key whose value is a mapping.
        key: String,
    },
    /// A list mixes `- item` lines with other lines.
    #[error("line {line}: expected a `- item` line in the list")]
    ExpectedItem {
        /// The offending line.
        line: usize,
    },
    /// A quoted scalar is not closed on its line.
    #[error("line {line}: unterminated quoted value in the frontmatter")]
    UnterminatedQuote {
        /// The offending line.
        line: usize,
    },
    /// A `[` list is not closed on its line.
    #[error("line {line}: unterminated `[` list in the frontmatter")]
    UnterminatedList {
        /// The offending line.
        line: usize,
    },
    /// YAML that this reader does not support.
    #[error("line {line}: {what} are not supported in shark frontmatter")]
    Unsupported {
        /// The offending line.
        line: usize,
        /// What was found, in the plural (e.g. "block scalars").
        what: &'static str,
    },
    /// A key appears twice.
    #[error("line {line}: `{key}` is given twice in the frontmatter")]
    DuplicateKey {
        /// The second occurrence.
        line: usize,
        /// The key.
        key: String,
    },
}

/// A parsed value.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    Scalar(String),
    List(Vec<String>),
    Map(Vec<(String, String)>),
}

type Lines<'a> = [(usize, &'a str)];

/// Reads the frontmatter at the top of `text`; returns it and how many bytes it spans (0 when
/// the document has none).
pub(super) fn split(text: &str) -> Result<(Frontmatter, usize), FrontmatterError> {
    let mut lines = numbered_lines(text, 1);
    match lines.next() {
        Some((_, first)) if strip_eol(first).trim_end() == "---" => {}
        _ => return Ok((Frontmatter::default(), 0)),
    }
    let mut consumed = text.split_inclusive('\n').next().map_or(0, str::len);
    let mut yaml = Vec::new();
    for (n, line) in lines {
        consumed += line.len();
        let content = strip_eol(line);
        if matches!(content.trim_end(), "---" | "...") {
            return Ok((frontmatter(parse(&yaml)?), consumed));
        }
        yaml.push((n, content));
    }
    Err(FrontmatterError::Unterminated { line: 1 })
}

/// Turns parsed entries into inputs and variables.
fn frontmatter(entries: Vec<(String, Value)>) -> Frontmatter {
    let mut fm = Frontmatter::default();
    for (key, value) in entries {
        match (key.as_str(), value) {
            ("inputs", Value::Scalar(s)) => fm.inputs.extend((!s.is_empty()).then_some(s)),
            ("inputs", Value::List(items)) => fm.inputs = items,
            ("inputs", Value::Map(map)) => {
                fm.inputs = map.iter().map(|(_, v)| v.clone()).collect();
                fm.named_inputs = map;
            }
            (_, Value::Scalar(s)) => {
                fm.lists.push((key.clone(), vec![s.clone()]));
                fm.variables.push((key, s));
            }
            (_, Value::List(items)) => {
                fm.variables.push((key.clone(), items.join(" ")));
                fm.lists.push((key, items));
            }
            // `parse` only lets `inputs` hold a mapping.
            (_, Value::Map(_)) => {}
        }
    }
    fm
}

/// Parses the YAML lines into top-level entries, in order.
fn parse(lines: &Lines<'_>) -> Result<Vec<(String, Value)>, FrontmatterError> {
    let lines: Vec<(usize, &str)> = lines
        .iter()
        .copied()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (line, text) = lines[i];
        if indent(text) > 0 {
            return Err(FrontmatterError::UnexpectedIndent { line });
        }
        let (key, rest) = key_value(text).ok_or(FrontmatterError::ExpectedKey { line })?;
        // YAML lets a list's items sit at their key's indentation.
        let nested = lines[i + 1..]
            .iter()
            .take_while(|(_, l)| indent(l) > 0 || (rest.is_empty() && list_item(l).is_some()))
            .count();
        let value = if rest.is_empty() {
            nested_value(key, &lines[i + 1..i + 1 + nested])?
        } else {
            let value = inline_value(rest, line)?;
            if nested > 0 {
                let line = lines[i + 1].0;
                return Err(FrontmatterError::UnexpectedIndent { line });
            }
            value
        };
        if entries.iter().any(|(k, _)| k == key) {
            let key = key.to_owned();
            return Err(FrontmatterError::DuplicateKey { line, key });
        }
        entries.push((key.to_owned(), value));
        i += 1 + nested;
    }
    Ok(entries)
}

/// The value of `key:` given on the indented lines after it.
fn nested_value(key: &str, lines: &Lines<'_>) -> Result<Value, FrontmatterError> {
    let Some(&(first, text)) = lines.first() else {
        return Ok(Value::Scalar(String::new()));
    };
    let base = indent(text);
    if let Some(&(line, _)) = lines.iter().find(|(_, l)| indent(l) != base) {
        return Err(FrontmatterError::UnexpectedIndent { line });
    }
    if list_item(text).is_some() {
        let items = lines.iter().map(|&(line, l)| {
            let item = list_item(l).ok_or(FrontmatterError::ExpectedItem { line })?;
            scalar(item, line)
        });
        return items.collect::<Result<_, _>>().map(Value::List);
    }
    if key != "inputs" {
        let key = key.to_owned();
        return Err(FrontmatterError::NestedMapping { line: first, key });
    }
    let entries = lines.iter().map(|&(line, l)| {
        let (k, v) = key_value(l.trim_start()).ok_or(FrontmatterError::ExpectedKey { line })?;
        Ok((k.to_owned(), scalar(v, line)?))
    });
    entries.collect::<Result<_, _>>().map(Value::Map)
}

/// The value written after `key:` on the same line.
fn inline_value(rest: &str, line: usize) -> Result<Value, FrontmatterError> {
    match rest.as_bytes()[0] {
        b'[' => flow_list(rest, line).map(Value::List),
        b'{' => Err(FrontmatterError::Unsupported {
            line,
            what: "flow mappings",
        }),
        b'|' | b'>' => Err(FrontmatterError::Unsupported {
            line,
            what: "block scalars",
        }),
        b'&' | b'*' | b'!' => Err(FrontmatterError::Unsupported {
            line,
            what: "anchors, aliases and tags",
        }),
        _ => scalar(rest, line).map(Value::Scalar),
    }
}

/// A `[a, 'b', "c"]` list.
fn flow_list(text: &str, line: usize) -> Result<Vec<String>, FrontmatterError> {
    let mut items = Vec::new();
    let mut start = 1;
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ',' | ']') => {
                let item = text[start..i].trim();
                if !item.is_empty() {
                    items.push(scalar(item, line)?);
                }
                start = i + 1;
                if c == ']' {
                    let after = text[i + 1..].trim_start();
                    return match after.is_empty() || after.starts_with('#') {
                        true => Ok(items),
                        false => Err(FrontmatterError::ExpectedKey { line }),
                    };
                }
            }
            (None, _) => {}
        }
    }
    Err(FrontmatterError::UnterminatedList { line })
}

/// A scalar: quoted (with its quotes removed) or plain (comment removed, trimmed).
fn scalar(text: &str, line: usize) -> Result<String, FrontmatterError> {
    let text = text.trim();
    let (value, rest) = match text.chars().next() {
        Some('\'') => single_quoted(&text[1..], line)?,
        Some('"') => double_quoted(&text[1..], line)?,
        _ => {
            let end = text.find(" #").or_else(|| text.find("\t#"));
            let plain = if text.starts_with('#') {
                ""
            } else {
                &text[..end.unwrap_or(text.len())]
            };
            return Ok(plain.trim().to_owned());
        }
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err(FrontmatterError::ExpectedKey { line })
    }
}

/// The content of a `'...'` scalar (`''` is a quote) and what follows it.
fn single_quoted(text: &str, line: usize) -> Result<(String, &str), FrontmatterError> {
    let mut value = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            value.push(c);
        } else if chars.peek().is_some_and(|&(_, n)| n == '\'') {
            value.push('\'');
            chars.next();
        } else {
            return Ok((value, &text[i + 1..]));
        }
    }
    Err(FrontmatterError::UnterminatedQuote { line })
}

/// The content of a `"..."` scalar (common escapes decoded) and what follows it.
fn double_quoted(text: &str, line: usize) -> Result<(String, &str), FrontmatterError> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[i + 1..])),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(e) => value.push(e),
                None => break,
            },
            _ => value.push(c),
        }
    }
    Err(FrontmatterError::UnterminatedQuote { line })
}

/// Splits `key: value` (or `key:`) into the key (unquoted) and the trimmed value.
fn key_value(text: &str) -> Option<(&str, &str)> {
    let colon = text
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| text[i + 1..].is_empty() || text[i + 1..].starts_with([' ', '\t']))?;
    let key = text[..colon].trim();
    let key = ['\'', '"']
        .iter()
        .find_map(|&q| key.strip_prefix(q).and_then(|k| k.strip_suffix(q)))
        .unwrap_or(key);
    let value = text[colon + 1..].trim();
    let value = if value.starts_with('#') { "" } else { value };
    (!key.is_empty()).then_some((key, value))
}

/// The text of a `- item` line, if it is one.
fn list_item(text: &str) -> Option<&str> {
    let t = text.trim();
    if t == "-" {
        return Some("");
    }
    t.strip_prefix("- ").or_else(|| t.strip_prefix("-\t"))
}

/// How many leading blanks a line has.
fn indent(text: &str) -> usize {
    text.len() - text.trim_start_matches([' ', '\t']).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fm(yaml: &str) -> Result<Frontmatter, FrontmatterError> {
        let text = format!("---\n{yaml}---\nbody\n");
        split(&text).map(|(fm, n)| {
            assert_eq!(&text[n..], "body\n");
            fm
        })
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_frontmatter() {
        assert_eq!(
            split("# Title\n---\n").unwrap(),
            (Frontmatter::default(), 0)
        );
        assert_eq!(split("").unwrap(), (Frontmatter::default(), 0));
        assert_eq!(split(" ---\n---\n").unwrap().1, 0);
    }

    #[test]
    fn scalars_and_lists() {
        let got = fm(concat!(
            "# a comment\n",
            "path_prefix: /var/  # trailing comment\n",
            "title: 'It''s a: title'\n",
            "quoted: \"a \\\"b\\\" #c\"\n",
            "\n",
            "project_ids:\n",
            "  - 1234\n",
            "  - '4321'\n",
            "tiles: [n00e000, \"n00e001\" , ]\n",
            "empty:\n",
            "url: http://x/y#frag\n",
        ))
        .unwrap();
        assert_eq!(got.inputs, Vec::<String>::new());
        assert_eq!(
            got.variables,
            vars(&[
                ("path_prefix", "/var/"),
                ("title", "It's a: title"),
                ("quoted", "a \"b\" #c"),
                ("project_ids", "1234 4321"),
                ("tiles", "n00e000 n00e001"),
                ("empty", ""),
                ("url", "http://x/y#frag"),
            ])
        );
    }

    #[test]
    fn inputs_in_every_form() {
        let list = fm("inputs:\n- dem.asc\n- 'with space.csv'\nn: 1\n").unwrap();
        assert_eq!(list.inputs, vec!["dem.asc", "with space.csv"]);
        assert_eq!(list.variables, vars(&[("n", "1")]));
        let flow = fm("inputs: [a.tif, b.tif]\n").unwrap();
        assert_eq!(flow.inputs, vec!["a.tif", "b.tif"]);
        let map = fm("inputs:\n  p1: /data/stuff\n  p2: /data/other/\n").unwrap();
        assert_eq!(map.inputs, vec!["/data/stuff", "/data/other/"]);
        assert_eq!(
            map.named_inputs,
            vars(&[("p1", "/data/stuff"), ("p2", "/data/other/")])
        );
        assert_eq!(fm("inputs: one.csv\n").unwrap().inputs, vec!["one.csv"]);
        assert_eq!(fm("inputs:\n").unwrap().inputs, Vec::<String>::new());
    }

    #[test]
    fn crlf_and_dots_terminator() {
        let text = "---\r\na: b\r\n...\r\nrest";
        let (got, n) = split(text).unwrap();
        assert_eq!(got.variables, vars(&[("a", "b")]));
        assert_eq!(&text[n..], "rest");
    }

    #[test]
    fn errors_name_document_lines() {
        use FrontmatterError::*;
        assert_eq!(split("---\na: b\n"), Err(Unterminated { line: 1 }));
        assert_eq!(fm("a: b\njust words\n"), Err(ExpectedKey { line: 3 }));
        assert_eq!(fm("a: b\n  c: d\n"), Err(UnexpectedIndent { line: 3 }));
        assert_eq!(
            fm("author:\n  name: x\n"),
            Err(NestedMapping {
                line: 3,
                key: "author".into()
            })
        );
        assert_eq!(fm("l:\n  - a\n  b\n"), Err(ExpectedItem { line: 4 }));
        assert_eq!(
            fm("l:\n  - a\n    - b\n"),
            Err(UnexpectedIndent { line: 4 })
        );
        assert_eq!(fm("a: 'open\n"), Err(UnterminatedQuote { line: 2 }));
        assert_eq!(fm("a: [x, y\n"), Err(UnterminatedList { line: 2 }));
        assert_eq!(
            fm("a: |\n  text\n"),
            Err(Unsupported {
                line: 2,
                what: "block scalars"
            })
        );
        assert_eq!(
            fm("a: >\n"),
            Err(Unsupported {
                line: 2,
                what: "block scalars"
            })
        );
        assert_eq!(
            fm("a: {b: c}\n"),
            Err(Unsupported {
                line: 2,
                what: "flow mappings"
            })
        );
        assert_eq!(
            fm("a: 1\na: 2\n"),
            Err(DuplicateKey {
                line: 3,
                key: "a".into()
            })
        );
        assert_eq!(fm("a: 'x' y\n"), Err(ExpectedKey { line: 2 }));
    }
}
