//! `Json(file, pointer, equals)`: passes when the value at an RFC 6901 pointer in a JSON file
//! equals the expected value (feature flags, config switches).
//!
//! Each way of not getting a value (no file, not JSON, no such pointer) fails with a detail
//! that says which, since "flags-conservative failed" alone sends people hunting.

use std::io::ErrorKind;

use serde_json::Value;
use waygate_core::model::JsonCheck;

use crate::context::GuardContext;
use crate::guard::Verdict;

/// The largest file read; config files are small, and a huge one is a mistake to report.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Reads the file and compares the value.
pub async fn check(check: &JsonCheck, ctx: &GuardContext) -> Verdict {
    let name = match ctx.render(&check.file) {
        Ok(n) => n,
        Err(e) => return Verdict::fail(e.to_string()),
    };
    let path = ctx.resolve_path(&name);
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.len() > MAX_FILE => {
            return Verdict::fail(format!("{name} is too large ({} bytes)", m.len()))
        }
        _ => {}
    }
    let text = match tokio::fs::read(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Say where it looked: the run's directory, not the one waygate was typed in.
            let looked = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
            return Verdict::fail(format!(
                "file {name} not found (looked for {})",
                looked.display()
            ));
        }
        Err(e) => return Verdict::fail(format!("cannot read {name}: {e}")),
    };
    let doc: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => return Verdict::fail(format!("{name} is not JSON: {e}")),
    };
    compare(&doc, &check.pointer, &check.equals, &name)
}

/// The pure part: the value at `pointer` in `doc` against `expected`.
pub fn compare(doc: &Value, pointer: &str, expected: &Value, name: &str) -> Verdict {
    let Some(found) = doc.pointer(pointer) else {
        return Verdict::fail(format!("no value at {pointer} in {name}"));
    };
    let shown = if pointer.is_empty() {
        "the document"
    } else {
        pointer
    };
    if found == expected {
        Verdict::pass(format!("{shown} is {found}"))
    } else {
        Verdict::fail(format!("{shown} is {found}, expected {expected}"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use waygate_core::outcome::Outcome;
    use waygate_core::template::Template;

    use super::*;
    use crate::context::tests::ctx;

    fn check_of(file: &str, pointer: &str, equals: Value) -> JsonCheck {
        JsonCheck {
            file: Template::parse(file).expect("valid"),
            pointer: pointer.into(),
            equals,
        }
    }

    #[test]
    fn compare_cases() {
        let doc = json!({"flags": {"fsm": false, "list": [1, 2]}});
        let cases = [
            (
                "/flags/fsm",
                json!(false),
                Outcome::Pass,
                "/flags/fsm is false",
            ),
            (
                "/flags/fsm",
                json!(true),
                Outcome::Fail,
                "/flags/fsm is false, expected true",
            ),
            (
                "/flags/list/1",
                json!(2),
                Outcome::Pass,
                "/flags/list/1 is 2",
            ),
            (
                "/flags/nope",
                json!(1),
                Outcome::Fail,
                "no value at /flags/nope in f.json",
            ),
        ];
        for (pointer, expected, outcome, detail) in cases {
            let v = compare(&doc, pointer, &expected, "f.json");
            assert_eq!(
                (v.outcome, v.detail.as_str()),
                (outcome, detail),
                "{pointer}"
            );
        }
    }

    #[tokio::test]
    async fn file_problems_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.json"), "{not json").expect("write");
        std::fs::write(dir.path().join("good.json"), r#"{"on": true}"#).expect("write");
        let mut c = ctx();
        c.workdir = dir.path().to_owned();

        let v = check(&check_of("missing.json", "/on", json!(true)), &c).await;
        assert_eq!(
            v.detail,
            format!(
                "file missing.json not found (looked for {})",
                dir.path().join("missing.json").display()
            )
        );
        let v = check(&check_of("bad.json", "/on", json!(true)), &c).await;
        assert!(
            v.detail.starts_with("bad.json is not JSON: "),
            "{}",
            v.detail
        );
        let v = check(&check_of("good.json", "/off", json!(true)), &c).await;
        assert_eq!(v.detail, "no value at /off in good.json");
        let v = check(&check_of("${run.env}/../good.json", "/on", json!(true)), &c).await;
        assert_eq!(v.outcome, Outcome::Fail, "staging/ does not exist");
        let v = check(&check_of("good.json", "/on", json!(true)), &c).await;
        assert_eq!(v.outcome, Outcome::Pass);
    }
}
