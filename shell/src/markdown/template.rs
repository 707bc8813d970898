//! Frontmatter template variables, as the reference Shark has them: `%{NAME}` in a document
//! stands for the frontmatter variable NAME.
//!
//! `shark md` fills in every variable the frontmatter defines (a list as its items joined by
//! spaces, as it is exported); `%{...}` naming no variable is left as written. `shark
//! template` writes one document per combination of the variables' values, named as the
//! reference names them: `STEM_` then the chosen values in reverse order joined by `_`, with
//! `/` turned into `_` and `.` removed, then `.md`.

use super::Frontmatter;

/// `text` with `%{NAME}` replaced by NAME's value, for every `(NAME, value)` of `vars`.
pub fn substitute(text: &str, vars: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("%{{{name}}}"), value);
    }
    out
}

/// Every combination of one value per variable, the first variable varying slowest.
pub fn combinations(lists: &[(String, Vec<String>)]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (name, values) in lists {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push((name.clone(), v.clone()));
                    next
                })
            })
            .collect();
    }
    out
}

/// The file name of the document for `combination`, from the source's `stem`.
pub fn file_name(stem: &str, combination: &[(String, String)]) -> String {
    let values: Vec<&str> = combination.iter().rev().map(|(_, v)| v.as_str()).collect();
    let joined = values.join("_").replace('/', "_").replace('.', "");
    format!("{stem}_{joined}.md")
}

/// The frontmatter of one instance: each variable with its one value, and the inputs as
/// they were.
pub fn frontmatter(fm: &Frontmatter, combination: &[(String, String)]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut out = String::from("---\n");
    if !fm.named_inputs.is_empty() {
        out.push_str("inputs:\n");
        for (name, path) in &fm.named_inputs {
            out.push_str(&format!("  {name}: {}\n", quote(path)));
        }
    } else if !fm.inputs.is_empty() {
        out.push_str("inputs:\n");
        for path in &fm.inputs {
            out.push_str(&format!("  - {}\n", quote(path)));
        }
    }
    for (name, value) in combination {
        out.push_str(&format!("{name}: {}\n", quote(value)));
    }
    out.push_str("---\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, values: &[&str]) -> (String, Vec<String>) {
        (name.into(), values.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn variables_are_filled_in_and_unknown_ones_left() {
        let vars = vec![("id".to_owned(), "42".to_owned())];
        assert_eq!(
            substitute("echo %{id} > %{id}.txt %{other}", &vars),
            "echo 42 > 42.txt %{other}"
        );
    }

    #[test]
    fn combinations_and_names_follow_the_reference() {
        let lists = [
            list("path_prefix", &["/var/"]),
            list("ids", &["1234", "4321"]),
        ];
        let combos = combinations(&lists);
        assert_eq!(combos.len(), 2);
        assert_eq!(combos[1][1], ("ids".to_owned(), "4321".to_owned()));
        // The reference's name: values in reverse order, `/` as `_`, `.` removed.
        assert_eq!(file_name("template", &combos[0]), "template_1234__var_.md");
        assert_eq!(file_name("t", &[("v".into(), "a.b".into())]), "t_ab.md");
        assert_eq!(combinations(&[]), vec![Vec::new()]);
    }

    #[test]
    fn instance_frontmatter_round_trips() {
        let fm = Frontmatter {
            named_inputs: vec![("dem".into(), "/data/dem.tif".into())],
            inputs: vec!["/data/dem.tif".into()],
            ..Frontmatter::default()
        };
        let text = frontmatter(&fm, &[("id".into(), "it's".into())]) + "body\n";
        let parsed = super::super::parse(&text).unwrap().frontmatter;
        assert_eq!(parsed.named_inputs, fm.named_inputs);
        assert_eq!(parsed.variables, vec![("id".to_owned(), "it's".to_owned())]);
    }
}
