//! Whole-document tests of [`parse`] and [`render`].

use super::*;

const PIPELINE: &str = "---
title: Hillshade
inputs:
  - dem.asc
tiles: [a, b]
---

# Hillshade

```shark-import
https://example.com/dem.asc data/dem.asc
```

Some prose with `inline` code.

```python
print('not a shark block')
```

~~~~shark-run:ghcr.io/osgeo/gdal:ubuntu-small-3.6.3
$ gdal_translate -of GTiff \\
    data/dem.asc dem.tif
# comment
gdaldem hillshade dem.tif hs.tif
~~~~

```shark-publish
hs.tif
```

```shark-build:env
((from alpine))
```
";

fn cmd(text: &str, line: usize) -> Command {
    Command {
        text: text.into(),
        line,
    }
}

#[test]
fn parses_the_pipeline() {
    let doc = parse(PIPELINE).unwrap();
    assert_eq!(doc.frontmatter.inputs, vec!["dem.asc"]);
    assert_eq!(
        doc.frontmatter.variables,
        vec![
            ("title".to_owned(), "Hillshade".to_owned()),
            ("tiles".to_owned(), "a b".to_owned())
        ]
    );
    let blocks: Vec<&Block> = doc.blocks().collect();
    assert_eq!(blocks.len(), 4);
    assert_eq!(
        blocks[0].kind,
        BlockKind::Import {
            imports: vec![Import {
                source: ImportSource::Url("https://example.com/dem.asc".into()),
                dest: "data/dem.asc".into(),
                line: 11,
            }]
        }
    );
    assert_eq!(blocks[0].line, 10);
    assert_eq!(blocks[0].image, None);
    assert_eq!(
        blocks[1].kind,
        BlockKind::Run {
            commands: vec![
                cmd("gdal_translate -of GTiff     data/dem.asc dem.tif", 21),
                cmd("gdaldem hillshade dem.tif hs.tif", 24),
            ]
        }
    );
    assert_eq!(blocks[1].line, 20);
    assert_eq!(
        blocks[1].info,
        "shark-run:ghcr.io/osgeo/gdal:ubuntu-small-3.6.3"
    );
    assert_eq!(
        blocks[1].image.as_deref(),
        Some("ghcr.io/osgeo/gdal:ubuntu-small-3.6.3")
    );
    assert_eq!(
        blocks[1].body,
        "$ gdal_translate -of GTiff \\\n    data/dem.asc dem.tif\n# comment\n\
         gdaldem hillshade dem.tif hs.tif\n"
    );
    assert_eq!(
        blocks[2].kind,
        BlockKind::Publish {
            paths: vec!["hs.tif".into()],
            dir: None
        }
    );
    assert_eq!(blocks[3].kind, BlockKind::Build);
    assert_eq!(blocks[3].kind.name(), "shark-build");
    assert_eq!(
        (blocks[3].line, blocks[3].image.as_deref()),
        (31, Some("env"))
    );
}

#[test]
fn segments_alternate_text_and_blocks() {
    let doc = parse("a\n```shark-run\nx\n```\n```shark-run\ny\n```").unwrap();
    let shape: Vec<&str> = doc
        .segments
        .iter()
        .map(|s| match s {
            Segment::Text(t) => t.as_str(),
            Segment::Block(b) => b.source.as_str(),
        })
        .collect();
    assert_eq!(
        shape,
        vec!["a\n", "```shark-run\nx\n```\n", "```shark-run\ny\n```"]
    );
}

#[test]
fn render_without_results_round_trips() {
    let crlf = PIPELINE.replace('\n', "\r\n");
    let no_final_newline = PIPELINE.trim_end();
    let unclosed_plain = "text\n```python\nnever closed\n```shark-run\n";
    for text in [
        PIPELINE,
        &crlf,
        no_final_newline,
        unclosed_plain,
        "",
        "\n",
        "---\n---",
        "  ```shark-run\n  $ echo indented\n  ```\n",
    ] {
        let doc = parse(text).unwrap();
        assert_eq!(render(&doc, &[]), text);
    }
}

#[test]
fn crlf_documents_parse_like_lf_ones() {
    let lf = parse(PIPELINE).unwrap();
    let crlf = parse(&PIPELINE.replace('\n', "\r\n")).unwrap();
    assert_eq!(crlf.frontmatter, lf.frontmatter);
    let kinds = |d: &Document| d.blocks().map(|b| b.kind.clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&crlf), kinds(&lf));
}

#[test]
fn fences_inside_other_fences_are_text() {
    let text = "````markdown\n```shark-run\necho no\n```\n````\n";
    let doc = parse(text).unwrap();
    assert_eq!(doc.segments, vec![Segment::Text(text.into())]);
}

#[test]
fn indented_fences_are_dedented() {
    let doc = parse("  ```shark-run\n  $ echo a\n    echo b\n ```\n").unwrap();
    let block = doc.blocks().next().unwrap();
    assert_eq!(block.body, "$ echo a\n  echo b\n");
}

#[test]
fn unterminated_shark_fence_names_its_line() {
    let err = parse("# t\n\n```shark-run:env\necho hi\n").unwrap_err();
    assert_eq!(
        err,
        MarkdownError::UnterminatedFence {
            line: 3,
            info: "shark-run:env".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "line 3: the `shark-run:env` block is never closed (expected a closing fence)"
    );
}

#[test]
fn errors_carry_document_line_numbers() {
    let text = "---\na: b\n---\n\n```shark-import\nx y\nz\n```\n";
    assert_eq!(
        parse(text),
        Err(MarkdownError::ImportFields { line: 7, fields: 1 })
    );
    let text = "---\na: b\nbad\n---\n";
    assert_eq!(
        parse(text),
        Err(MarkdownError::Frontmatter(FrontmatterError::ExpectedKey {
            line: 3
        }))
    );
}

fn result(block_index: usize, commands: Vec<CommandResult>) -> BlockResult {
    BlockResult {
        block_index,
        commands,
    }
}

fn ran(run_id: i64, exit_code: i32, stdout: &str) -> CommandResult {
    CommandResult {
        run_id,
        reused_from: None,
        exit_code,
        stdout: stdout.into(),
    }
}

#[test]
fn render_appends_outputs_after_their_blocks() {
    let text = "Intro\n```shark-run\n$ gdalinfo --version\n$ false\n```\nMid\n```shark-run\nls\n```\nEnd\n";
    let doc = parse(text).unwrap();
    let reused = CommandResult {
        reused_from: Some(3),
        ..ran(9, 0, "a.tif\nb.tif")
    };
    let results = [
        result(1, vec![reused]),
        result(0, vec![ran(7, 0, "GDAL 3.6.2\n"), ran(8, 1, "")]),
    ];
    assert_eq!(
        render(&doc, &results),
        "Intro\n```shark-run\n$ gdalinfo --version\n$ false\n```\n\
         ```shark-output\n# run 7 ran exit 0\nGDAL 3.6.2\n# run 8 ran exit 1\n```\n\
         Mid\n```shark-run\nls\n```\n\
         ```shark-output\n# run 9 reused 3 exit 0\na.tif\nb.tif\n```\nEnd\n"
    );
}

#[test]
fn render_keeps_line_endings_and_fences_longer_than_the_output() {
    let doc = parse("```shark-run\r\necho '```'\r\n```").unwrap();
    let results = [result(0, vec![ran(1, 0, "```\n")])];
    assert_eq!(
        render(&doc, &results),
        "```shark-run\r\necho '```'\r\n```\r\n````shark-output\r\n# run 1 ran exit 0\r\n```\n````\r\n"
    );
}

#[test]
fn render_truncates_long_output() {
    let doc = parse("```shark-run\nyes\n```\n").unwrap();
    let long = "y\n".repeat(MAX_OUTPUT_BYTES);
    let out = render(&doc, &[result(0, vec![ran(1, 0, &long)])]);
    let expected_tail = format!("# [output truncated: {MAX_OUTPUT_BYTES} more bytes]\n```\n");
    assert!(out.ends_with(&expected_tail), "{}", &out[out.len() - 80..]);
    assert_eq!(
        out.len(),
        21 + 16 + 19 + MAX_OUTPUT_BYTES + expected_tail.len()
    );
}
