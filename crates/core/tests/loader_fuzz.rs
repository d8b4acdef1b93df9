//! Property test: mutated and truncated versions of the shipped workflows never panic the
//! loader, and it always answers with a model or with at least one error diagnostic.

use std::path::PathBuf;

use proptest::prelude::*;
use waygate_core::validate::validate;

fn shipped() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("examples")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "ron") {
                let text = std::fs::read_to_string(&path).expect("shipped workflow is readable");
                out.push((path.display().to_string(), text));
            }
        }
    }
    out.sort();
    assert!(
        !out.is_empty(),
        "no shipped workflows found under {}",
        root.display()
    );
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = prop::sample::select(vec![
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\"",
        "${",
        "${x}",
        "}",
        "terminal: Success",
        "\"\"",
        "/*",
        "//",
        "r#\"",
        "\n",
        "-1",
        "99999999999999999999",
        "Watch(",
        "é",
        "\\",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), tokens).prop_map(|(a, t)| Mutation::Insert(a, t.to_owned())),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Mutation::Replace(a, c)),
    ]
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let len = text.len().max(1);
    match m {
        Mutation::Truncate(at) => text[..floor_boundary(text, at % len)].to_owned(),
        Mutation::Delete(at, n) => {
            let a = floor_boundary(text, at % len);
            let b = floor_boundary(text, a + n);
            format!("{}{}", &text[..a], &text[b..])
        }
        Mutation::Insert(at, s) => {
            let a = floor_boundary(text, at % len);
            format!("{}{}{}", &text[..a], s, &text[a..])
        }
        Mutation::Replace(at, c) => {
            let a = floor_boundary(text, at % len);
            let b = floor_boundary(text, a + 1).max(a);
            let b = if b == a {
                (a + 1..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(a)
            } else {
                b
            };
            format!("{}{}{}", &text[..a], c, &text[b..])
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_workflows_give_a_model_or_diagnostics(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let files = shipped();
        let (name, text) = &files[which.index(files.len())];
        let mut mutated = text.clone();
        for m in &mutations {
            mutated = apply(&mutated, m);
        }
        let v = validate(name, &mutated);
        match &v.workflow {
            Some(_) => prop_assert!(!v.has_errors()),
            None => prop_assert!(v.has_errors(), "no model and no error for {:?}", mutations),
        }
        for d in &v.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1);
            prop_assert!(d.span.end <= mutated.len() + 1, "span {:?} past the end", d.span);
            // Messages speak the file's terms: no Rust type names, no library advice.
            for internal in ["Spec`", "ron::", "serde_stacker"] {
                prop_assert!(
                    !d.message.contains(internal) && !d.help.as_deref().unwrap_or_default().contains(internal),
                    "{:?} in {:?}", internal, d
                );
            }
        }
    }
}

#[test]
fn shipped_workflows_are_valid_without_warnings() {
    for (name, text) in shipped() {
        let v = validate(&name, &text);
        assert!(v.diagnostics.is_empty(), "{name}: {:#?}", v.diagnostics);
        assert!(v.workflow.is_some());
    }
}

/// The case the fuzz found in the blue/green example: `${` pasted into the publishing action's
/// program name (`"${sh"`) keeps that action out of the model while its outputs were still
/// looked up by its place in the file (an index out of bounds).
#[test]
fn a_publishing_action_left_out_of_the_model_is_an_error_not_a_panic() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows/examples/blue-green.ron");
    let text = std::fs::read_to_string(&path).expect("shipped workflow is readable");
    let at = text
        .find(r#""sh", "-c", "echo \"build_id"#)
        .expect("the build action's argv")
        + 1;
    let mutated = format!("{}${{{}", &text[..at], &text[at..]);
    let outcome = validate("blue-green.ron", &mutated);
    assert!(
        outcome.diagnostics.iter().any(|d| d.is_error()),
        "an error, not a model: {:?}",
        outcome.diagnostics
    );
}
