//! ron's syntax and type errors, worded in the file's own terms.
//!
//! ron names the Rust types it was reading (`StateSpec`, `TransitionSpec`), gives advice meant
//! for programmers (`ron::Options::recursion_limit`, `serde_stacker`) and, for a syntax error,
//! says what it expected but not what it found. A workflow author knows none of that: this
//! module names the construct as written in the file (a state, a transition, `Command`), says
//! what was found at the position, and keeps the library out of it.

use ron::Error as E;

use crate::diagnostic::Code;

/// How deep values may nest: ron's own limit, which it reports without saying the number.
const NESTING_LIMIT: usize = 128;

/// A ron error in `text` (the file `file`, its lines indexed in `lines`) as a diagnostic at
/// the place ron stopped: a workflow's, or a policy's or scenario's (they are read the same
/// way).
pub(crate) fn diagnostic(
    file: &str,
    text: &str,
    lines: &crate::line_index::LineIndex,
    err: &ron::error::SpannedError,
) -> crate::diagnostic::Diagnostic {
    let start = lines.offset(text, err.span.start.line, err.span.start.col);
    let end = lines
        .offset(text, err.span.end.line, err.span.end.col)
        .max(start);
    let worded = word(&err.code, text, start);
    let mut d = crate::diagnostic::Diagnostic::at(
        file,
        text,
        lines,
        worded.code,
        start..end,
        worded.message,
    );
    d.help = worded.help;
    d
}

/// A ron error as a diagnostic's code, message and help.
pub(crate) struct Worded {
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
}

/// The Rust type names serde may put in a message.
const INTERNAL_NAMES: [&str; 18] = [
    "StateSpec",
    "TransitionSpec",
    "GuardSpec",
    "RetrySpec",
    "VarSpec",
    "EnvironmentSpec",
    "CommandSpec",
    "HttpSpec",
    "JsonSpec",
    "ApprovalSpec",
    "WaitSpec",
    "WindowSpec",
    "WatchSpec",
    "CheckSpec",
    "ActionSpec",
    "Terminal",
    "Weekday",
    "Spec",
];

/// The construct a serde type name stands for, as a workflow author knows it.
fn construct(type_name: &str) -> String {
    match type_name {
        "Workflow" | "Spec" => "`Workflow`".into(),
        "StateSpec" => "a state".into(),
        "TransitionSpec" => "a transition".into(),
        "GuardSpec" => "a guard".into(),
        "RetrySpec" => "`retry`".into(),
        "VarSpec" => "a variable in `vars`".into(),
        "EnvironmentSpec" => "an environment".into(),
        "CommandSpec" => "`Command`".into(),
        "HttpSpec" => "`Http`".into(),
        "JsonSpec" => "`Json`".into(),
        "ApprovalSpec" => "`Approval`".into(),
        "WaitSpec" => "`Wait`".into(),
        "WindowSpec" => "`Window`".into(),
        "WatchSpec" => "`Watch`".into(),
        "Terminal" => "`terminal`".into(),
        "Weekday" => "a day of `days`".into(),
        "CheckSpec" => "a guard's `check`".into(),
        "ActionSpec" => "an `on_enter` action".into(),
        other => format!("`{}`", other.strip_suffix("Spec").unwrap_or(other)),
    }
}

fn listed(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn in_outer(outer: &Option<String>) -> String {
    outer
        .as_deref()
        .map(|o| format!(" in {}", construct(o)))
        .unwrap_or_default()
}

/// What the text at byte `at` is: a word, a string, a character, or the end of the file.
pub(crate) fn found_at(text: &str, at: usize) -> String {
    let at = match crate::spec::span_tree::trivia_end(text.as_bytes(), at.min(text.len())) {
        Ok(end) => end,
        Err(_) => return "a block comment left open".into(),
    };
    let Some(rest) = text.get(at..) else {
        return "the end of the file".into();
    };
    let Some(first) = rest.chars().next() else {
        return "the end of the file".into();
    };
    if first.is_alphanumeric() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return format!("`{word}`");
    }
    if first == '"' {
        let end = rest[1..].find(['"', '\n']).map_or(rest.len(), |i| i + 2);
        let shown: String = rest[..end.min(rest.len())].chars().take(40).collect();
        return format!("the string {shown}");
    }
    format!("`{}`", first.escape_debug())
}

/// Words `err`, whose position is byte `at` of `text`.
pub(crate) fn word(err: &E, text: &str, at: usize) -> Worded {
    let found = || found_at(text, at);
    let (code, message, help) = match err {
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => (
            Code::UnknownField,
            format!(
                "unknown field `{found}`{}; expected {}",
                in_outer(outer),
                listed(expected)
            ),
            crate::validate::suggest::closest_of(found, expected)
                .map(|c| format!("did you mean `{c}`?")),
        ),
        E::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => (
            Code::UnknownVariant,
            format!(
                "unknown value `{found}`{}; expected {}",
                outer
                    .as_deref()
                    .map(|o| format!(" for {}", construct(o)))
                    .unwrap_or_default(),
                listed(expected)
            ),
            crate::validate::suggest::closest_of(found, expected)
                .map(|c| format!("did you mean `{c}`?")),
        ),
        E::MissingStructField { field, outer } => (
            Code::MissingField,
            format!("missing field `{field}`{}", in_outer(outer)),
            Some(format!("add `{field}: ..`")),
        ),
        E::DuplicateStructField { field, outer } => (
            Code::DuplicateField,
            format!("field `{field}` is written twice{}", in_outer(outer)),
            Some("keep one of them".into()),
        ),
        E::InvalidValueForType { expected, found } => (
            Code::Type,
            format!("expected {expected} but found {found}"),
            None,
        ),
        E::ExpectedDifferentLength { expected, found } => (
            Code::Type,
            format!("expected {expected} but found {found} element(s)"),
            None,
        ),
        E::ExceededRecursionLimit => (
            Code::Syntax,
            format!("values are nested more than {NESTING_LIMIT} levels deep"),
            Some("a workflow never needs nesting this deep; look for brackets left open".into()),
        ),
        E::ExpectedDifferentStructName { expected, found } => (
            Code::Syntax,
            format!("expected {} but found `{found}`", construct(expected)),
            None,
        ),
        E::SuggestRawIdentifier(_) | E::InvalidIdentifier(_) | E::ExpectedIdentifier => (
            Code::Syntax,
            format!(
                "expected a name (a field or a value such as `Success`), found {}",
                found()
            ),
            None,
        ),
        E::ExpectedNamedStructLike("") => (
            Code::Syntax,
            format!("expected `(`, found {}", found()),
            None,
        ),
        E::ExpectedNamedStructLike(name) => (
            Code::Syntax,
            format!(
                "expected `(` to open {}, found {}",
                construct(name),
                found()
            ),
            None,
        ),
        E::ExpectedStructName(name) => (
            Code::Syntax,
            format!("expected {} here, found {}", construct(name), found()),
            None,
        ),
        E::ExpectedComma => (
            Code::Syntax,
            format!("expected `,` before {}", found()),
            Some("separate fields, list items and map entries with commas".into()),
        ),
        E::ExpectedMapColon => (
            Code::Syntax,
            format!("expected `:` after the key, found {}", found()),
            None,
        ),
        E::TrailingCharacters => (
            Code::Syntax,
            format!("unexpected {} after the end of the workflow", found()),
            None,
        ),
        E::Eof => (
            Code::Syntax,
            "the file ends before the workflow does: a bracket or string is left open".into(),
            None,
        ),
        E::UnexpectedChar(_) => (Code::Syntax, format!("unexpected {}", found()), None),
        other => {
            // ron's own words ("Expected closing `)`", "Expected string"), and what was found.
            let said = other.to_string();
            let mut said = match said.get(..1) {
                Some(first) => first.to_lowercase() + &said[1..],
                None => said,
            };
            // serde's own messages may still name a type ("expected struct StateSpec").
            for internal in INTERNAL_NAMES {
                if said.contains(internal) {
                    said = said
                        .replace(&format!("struct {internal}"), internal)
                        .replace(&format!("`{internal}`"), internal)
                        .replace(internal, &construct(internal));
                }
            }
            (Code::Syntax, format!("{said}, found {}", found()), None)
        }
    };
    Worded {
        code,
        message,
        help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worded(text: &str) -> Worded {
        let err = crate::spec::ron_options()
            .from_str::<crate::spec::Spec>(text)
            .expect_err("invalid");
        let index = crate::line_index::LineIndex::new(text);
        let at = index.offset(text, err.span.start.line, err.span.start.col);
        word(&err.code, text, at)
    }

    #[test]
    fn no_type_names_or_library_advice_reach_the_user() {
        let cases = [
            r#"Workflow(name: "w", initial: "a", states: { "a": (terminl: Success) })"#,
            r#"Workflow(name: "w", initial: "a", states: { "a": () }, transitions: [(from: "a")])"#,
            r#"Workflow(name: "w", initial: "a", states: { "a": (terminal: Sucess) })"#,
            r#"Workflow(name: "w", initial: "a", states: { "a": () }, transitions: [(from: "a", to: "a", guards: [(name: "x", check: Shell(run: []))])])"#,
        ];
        for text in cases {
            let w = worded(text);
            for internal in ["Spec`", "ron::", "serde"] {
                assert!(!w.message.contains(internal), "{}", w.message);
            }
        }
        let deep = format!(
            r#"Workflow(name: "w", initial: "a", states: {{ "a": () }}, transitions: [(from: "a", to: "a", guards: [(name: "x", check: Json(file: "f", pointer: "", equals: {}))])])"#,
            "[".repeat(300)
        );
        let w = worded(&deep);
        assert!(!w.message.contains("ron::") && !w.message.contains("serde_stacker"));
        assert!(w.message.contains("128 levels"), "{}", w.message);
    }

    #[test]
    fn no_raw_identifier_advice() {
        let w = worded(
            r#"Workflow(name: "w", initial: "a", states: { "a": () }, transitions: [(from: "a", to: "a", guards: [(name: "x", check: Wait(5))])])"#,
        );
        assert_eq!(
            w.message,
            "expected a name (a field or a value such as `Success`), found `5`"
        );
    }

    #[test]
    fn a_syntax_error_says_what_it_found() {
        let w = worded("Workflow(name: \"w\"\n  initial: \"a\", states: {})");
        assert_eq!(w.message, "expected `,` before `initial`");
        let w = worded("Workflow(name: \"w\", initial: \"a\" \"b\", states: {})");
        assert_eq!(w.message, "expected `,` before the string \"b\"");
    }
}
