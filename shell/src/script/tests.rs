//! Tests of [`split`] and [`is_complete`] with exact step lists.

use super::*;

/// The steps of `text` as `(line, text)` pairs.
fn steps(text: &str) -> Vec<(usize, String)> {
    split(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .into_iter()
        .map(|s| (s.line, s.text))
        .collect()
}

fn expect(text: &str, expected: &[(usize, &str)]) {
    let expected: Vec<(usize, String)> = expected.iter().map(|&(l, t)| (l, t.to_owned())).collect();
    assert_eq!(steps(text), expected, "splitting {text:?}");
}

#[test]
fn one_step_per_line() {
    expect(
        "#!/usr/bin/env shark\n\n# comment\necho a\n  echo b  # trailing\necho c; echo d &\n",
        &[(4, "echo a"), (5, "echo b"), (6, "echo c; echo d &")],
    );
    expect("", &[]);
    expect("\n\n# only comments\n", &[]);
    expect("echo no final newline", &[(1, "echo no final newline")]);
}

#[test]
fn operators_carry_over_lines() {
    expect(
        "a &&\n  b ||\n  c |\n  d\ne\n",
        &[(1, "a &&\n  b ||\n  c |\n  d"), (5, "e")],
    );
    expect("a | # comment\n b\n", &[(1, "a | # comment\n b")]);
}

#[test]
fn continuations() {
    expect(
        "gdal_translate -of GTiff \\\n  in.asc \\\n  out.tif\nnext\n",
        &[
            (1, "gdal_translate -of GTiff \\\n  in.asc \\\n  out.tif"),
            (4, "next"),
        ],
    );
    expect("echo a\\\nb\n", &[(1, "echo a\\\nb")]);
}

#[test]
fn quotes_and_expansions_span_lines() {
    expect(
        "echo 'a\nb' \"c\n$(d\ne)\"\nx=$(\n  ls\n)\ny=`date\n`\necho ${x:-\"}\"}\n",
        &[
            (1, "echo 'a\nb' \"c\n$(d\ne)\""),
            (5, "x=$(\n  ls\n)"),
            (8, "y=`date\n`"),
            (10, "echo ${x:-\"}\"}"),
        ],
    );
    expect("echo $'it\\'s\n'\n", &[(1, "echo $'it\\'s\n'")]);
    expect("echo \"a\\\"\nb\"\n", &[(1, "echo \"a\\\"\nb\"")]);
}

#[test]
fn hashes_that_are_not_comments() {
    expect(
        "echo $# ${#x} a#b '#' \"#\" \\#\necho x #real\n",
        &[(1, "echo $# ${#x} a#b '#' \"#\" \\#"), (2, "echo x")],
    );
}

#[test]
fn heredocs() {
    let script = "cat <<EOF > a.txt\nline $x\n  EOF\nEOF\ncat <<-'END' <<\"E2\"; echo after\n\tbody\n\tEND\nsecond\nE2\necho next\n";
    expect(
        script,
        &[
            (1, "cat <<EOF > a.txt\nline $x\n  EOF\nEOF"),
            (
                5,
                "cat <<-'END' <<\"E2\"; echo after\n\tbody\n\tEND\nsecond\nE2",
            ),
            (10, "echo next"),
        ],
    );
    expect(
        "x=$(cat <<EOF\n)\nEOF\n)\ny\n",
        &[(1, "x=$(cat <<EOF\n)\nEOF\n)"), (5, "y")],
    );
    expect("cat <<<word\nb\n", &[(1, "cat <<<word"), (2, "b")]);
    expect(
        "cat <<EOF\nno final newline\nEOF",
        &[(1, "cat <<EOF\nno final newline\nEOF")],
    );
}

#[test]
fn compound_commands() {
    let script = "\
if [ -f a ]; then
  echo a
elif true
then :
else
  echo c
fi
for t in a b
do echo $t; done > log
for ((i = 0; i < 3; i++)); do
  echo $i
done
while read -r line; do
  echo \"$line\"
done < list.txt
until false; do break; done
select x in a b; do break; done
{ echo a
  echo b; }
(
  cd sub && make
)
[[ -n $x &&
   $x == y ]] && echo yes
((
  n += 1
))
";
    expect(
        script,
        &[
            (
                1,
                "if [ -f a ]; then\n  echo a\nelif true\nthen :\nelse\n  echo c\nfi",
            ),
            (8, "for t in a b\ndo echo $t; done > log"),
            (10, "for ((i = 0; i < 3; i++)); do\n  echo $i\ndone"),
            (
                13,
                "while read -r line; do\n  echo \"$line\"\ndone < list.txt",
            ),
            (16, "until false; do break; done"),
            (17, "select x in a b; do break; done"),
            (18, "{ echo a\n  echo b; }"),
            (20, "(\n  cd sub && make\n)"),
            (23, "[[ -n $x &&\n   $x == y ]] && echo yes"),
            (25, "((\n  n += 1\n))"),
        ],
    );
}

#[test]
fn closers_may_follow_a_compound_command_directly() {
    expect(
        "if true; then (\n  echo\n) fi\nif [[ a ]] then { :; } fi\nwhile (( 1 )) do break; done\n",
        &[
            (1, "if true; then (\n  echo\n) fi"),
            (4, "if [[ a ]] then { :; } fi"),
            (5, "while (( 1 )) do break; done"),
        ],
    );
}

#[test]
fn nested_compound_commands() {
    expect(
        "for f in *.tif; do\n  if [ -s \"$f\" ]; then\n    while false; do :; done\n  fi\ndone\necho end\n",
        &[
            (1, "for f in *.tif; do\n  if [ -s \"$f\" ]; then\n    while false; do :; done\n  fi\ndone"),
            (6, "echo end"),
        ],
    );
}

#[test]
fn reserved_words_only_in_command_position() {
    expect(
        "echo if then fi done { }\necho for; echo case\n",
        &[(1, "echo if then fi done { }"), (2, "echo for; echo case")],
    );
    // `}` is an argument here, so the group is still open.
    assert!(!is_complete("{ echo }"));
    assert!(is_complete("{ echo; }"));
}

#[test]
fn case_statements() {
    let script = "\
case \"$1\" in
  a|b) echo ab ;;
  (c) echo c
      ;;
  *.tif)
    if true; then echo t; fi
    ;&
  (esac) echo weird;;
  *) x=$(case y in y) echo in;; esac) ;;
esac
case x
in x) ;; esac
";
    expect(
        script,
        &[
            (1, &script[..script.find("esac\ncase").unwrap() + 4]),
            (11, "case x\nin x) ;; esac"),
        ],
    );
}

#[test]
fn functions() {
    expect(
        "f() {\n  echo f\n}\ng ()\n{\n  :\n}\nfunction h {\n  :\n}\nfunction i() (\n  :\n)\nj() if true; then :; fi\n",
        &[
            (1, "f() {\n  echo f\n}"),
            (4, "g ()\n{\n  :\n}"),
            (8, "function h {\n  :\n}"),
            (11, "function i() (\n  :\n)"),
            (14, "j() if true; then :; fi"),
        ],
    );
}

#[test]
fn arrays_process_substitution_and_extglob() {
    expect(
        "a=(one\n  two)\na+=(three)\ndiff <(sort x\n) >(cat)\nls @(a|b).tif\ntee >(gzip > x.gz) > /dev/null\n",
        &[
            (1, "a=(one\n  two)"),
            (3, "a+=(three)"),
            (4, "diff <(sort x\n) >(cat)"),
            (6, "ls @(a|b).tif"),
            (7, "tee >(gzip > x.gz) > /dev/null"),
        ],
    );
}

#[test]
fn arithmetic_and_subshell_parentheses() {
    expect(
        "echo $(( (1 + 2) * 3 ))\n((cd a); echo b)\necho $( (cd a) )\n",
        &[
            (1, "echo $(( (1 + 2) * 3 ))"),
            (2, "((cd a); echo b)"),
            (3, "echo $( (cd a) )"),
        ],
    );
}

const GDAL_PIPELINE: &str = r#"#!/usr/bin/env shark
# Hillshade and slope for a synthetic DEM, tile by tile.
set -euo pipefail

OUT=out
mkdir -p "$OUT"

make_dem() {
  local size=$1
  python3 - "$size" <<'PY' > dem.asc
import sys
n = int(sys.argv[1])
print(f"ncols {n}\nnrows {n}")
PY
}

make_dem 64
gdal_translate -of GTiff -a_srs EPSG:4326 \
    dem.asc "$OUT/dem.tif"
gdalwarp -t_srs EPSG:3857 "$OUT/dem.tif" "$OUT/dem_3857.tif"

for tile in 0 1 2 3; do
  gdal_translate -srcwin $((tile * 16)) 0 16 16 "$OUT/dem_3857.tif" "$OUT/tile_$tile.tif"
  gdaldem hillshade "$OUT/tile_$tile.tif" "$OUT/hs_$tile.tif"   # per tile
done

gdaldem slope "$OUT/dem_3857.tif" "$OUT/slope.tif" && gdalinfo -stats "$OUT/slope.tif" \
  | grep -i mean
cat > "$OUT/README" <<EOF
Made on $(date -u +%F)
EOF
"#;

#[test]
fn gdal_pipeline() {
    expect(
        GDAL_PIPELINE,
        &[
            (3, "set -euo pipefail"),
            (5, "OUT=out"),
            (6, "mkdir -p \"$OUT\""),
            (
                8,
                "make_dem() {\n  local size=$1\n  python3 - \"$size\" <<'PY' > dem.asc\nimport sys\nn = int(sys.argv[1])\nprint(f\"ncols {n}\\nnrows {n}\")\nPY\n}",
            ),
            (17, "make_dem 64"),
            (18, "gdal_translate -of GTiff -a_srs EPSG:4326 \\\n    dem.asc \"$OUT/dem.tif\""),
            (20, "gdalwarp -t_srs EPSG:3857 \"$OUT/dem.tif\" \"$OUT/dem_3857.tif\""),
            (
                22,
                "for tile in 0 1 2 3; do\n  gdal_translate -srcwin $((tile * 16)) 0 16 16 \"$OUT/dem_3857.tif\" \"$OUT/tile_$tile.tif\"\n  gdaldem hillshade \"$OUT/tile_$tile.tif\" \"$OUT/hs_$tile.tif\"   # per tile\ndone",
            ),
            (
                27,
                "gdaldem slope \"$OUT/dem_3857.tif\" \"$OUT/slope.tif\" && gdalinfo -stats \"$OUT/slope.tif\" \\\n  | grep -i mean",
            ),
            (29, "cat > \"$OUT/README\" <<EOF\nMade on $(date -u +%F)\nEOF"),
        ],
    );
}

fn unexpected(token: &str, line: usize) -> SplitError {
    SplitError::Unexpected {
        token: token.into(),
        line,
    }
}

#[test]
fn errors_name_where_things_opened() {
    use SplitError::*;
    let cases: Vec<(&str, SplitError)> = vec![
        (
            "echo a\necho 'open\n\n",
            UnterminatedQuote {
                quote: '\'',
                line: 2,
            },
        ),
        (
            "echo \"x\n",
            UnterminatedQuote {
                quote: '"',
                line: 1,
            },
        ),
        (
            "echo `x\n",
            UnterminatedQuote {
                quote: '`',
                line: 1,
            },
        ),
        (
            "a\ncat <<EOF\nbody\n",
            UnterminatedHeredoc {
                delimiter: "EOF".into(),
                line: 2,
            },
        ),
        (
            "cat <<EOF",
            UnterminatedHeredoc {
                delimiter: "EOF".into(),
                line: 1,
            },
        ),
        (
            "if true; then\n  for x in a; do\n",
            Unclosed {
                construct: "loop",
                line: 2,
            },
        ),
        (
            "if true; then\n  echo\n",
            Unclosed {
                construct: "if",
                line: 1,
            },
        ),
        (
            "x\ncase a in\n",
            Unclosed {
                construct: "case",
                line: 2,
            },
        ),
        (
            "{ a\n",
            Unclosed {
                construct: "{",
                line: 1,
            },
        ),
        (
            "(\n",
            Unclosed {
                construct: "(",
                line: 1,
            },
        ),
        (
            "[[ a\n",
            Unclosed {
                construct: "[[",
                line: 1,
            },
        ),
        (
            "echo $(\nls\n",
            Unclosed {
                construct: "$(",
                line: 1,
            },
        ),
        (
            "echo ${x\n",
            Unclosed {
                construct: "${",
                line: 1,
            },
        ),
        (
            "a=(1\n",
            Unclosed {
                construct: "(",
                line: 1,
            },
        ),
        ("f()\n\n", MissingFunctionBody { line: 1 }),
        (
            "a &&\n\n",
            MissingCommand {
                after: "&&",
                line: 1,
            },
        ),
        (
            "a |",
            MissingCommand {
                after: "|",
                line: 1,
            },
        ),
        ("echo >\n", MissingRedirectTarget { line: 1 }),
        ("a\nfi\n", unexpected("fi", 2)),
        ("if a; fi\n", unexpected("fi", 1)),
        ("done\n", unexpected("done", 1)),
        (")\n", unexpected(")", 1)),
        ("echo (\n", unexpected("newline", 1)),
        ("case x in\n esac) ;; esac\n", unexpected(")", 2)),
        ("case x in a b) ;; esac\n", unexpected("b", 1)),
        ("a;;\n", unexpected(";;", 1)),
        ("case a b\n", unexpected("b", 1)),
        ("}\n", unexpected("}", 1)),
        ("(cd a) ls\n", unexpected("ls", 1)),
        ("{ echo; } }\n", unexpected("}", 1)),
        ("a && && b\n", unexpected("&&", 1)),
    ];
    for (text, error) in cases {
        assert_eq!(split(text), Err(error), "splitting {text:?}");
    }
}

#[test]
fn error_messages() {
    assert_eq!(
        split("echo 'x").unwrap_err().to_string(),
        "line 1: unterminated ' quote"
    );
    assert_eq!(
        split("for x in a; do\n").unwrap_err().to_string(),
        "line 1: `loop` is never closed"
    );
}

#[test]
fn completeness_for_the_interactive_shell() {
    for incomplete in [
        "echo 'a",
        "echo \"a",
        "echo a \\",
        "echo a \\\n",
        "cat <<EOF",
        "cat <<EOF\nbody",
        "if true; then",
        "for x in a b",
        "while true; do echo",
        "case x in",
        "f() {",
        "f()",
        "a &&",
        "a ||",
        "a |",
        "echo $(ls",
        "x=(1 2",
        "[[ -n x",
    ] {
        assert!(!is_complete(incomplete), "{incomplete:?} is not complete");
    }
    for complete in [
        "",
        "echo a",
        "echo a # comment \\",
        "echo 'a\nb'",
        "cat <<EOF\nbody\nEOF",
        "if true; then echo; fi",
        "f() { :; }",
        "fi",
        "echo >",
        "a &",
    ] {
        assert!(is_complete(complete), "{complete:?} is complete");
    }
}
