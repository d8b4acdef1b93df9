//! What a name in a workflow may be: the rule for the names people read in `status` and type on
//! the command line (states, guards, environments), in one place.
//!
//! A name is not empty, has no leading or trailing white space, and contains no control
//! characters (a line break would let a name forge lines of output), no invisible formatting
//! characters (zero-width spaces, joiners, bidirectional overrides: text that reads differently
//! from what it is) and no line or paragraph separators. Any other Unicode is allowed.
//!
//! Two names of one kind that look the same are an error: names are compared after Unicode
//! compatibility normalization (NFKC), so `café` written with `é` and written with `e` and a
//! combining accent, or `ｄｅｐｌｏｙ` (full-width) and `deploy`, are the same name written two
//! ways. Look-alikes across scripts (a Cyrillic `а` for a Latin `a`) are not detected: that
//! needs the confusables tables, and a name mixing scripts is rare enough to be left to review.
//! See docs/workflow-format.md, "Names".

use unicode_normalization::UnicodeNormalization;

/// The most characters a name may have. Names are typed and read, and a store keys some of
/// them: PostgreSQL's indexes over the active runs' (workflow, environment) pairs and lock keys
/// take at most ~2.7 KB a row, so a name of thousands of characters that the embedded store
/// took would be refused there, at `start` (docs/storage.md).
pub(crate) const MAX_CHARS: usize = 128;

/// The help for a name that is too long.
pub(crate) const SHORTEN: &str =
    "shorten it: names are typed and read, and a store keys runs by some of them";

/// Why `name` is too long, if it is.
pub(crate) fn too_long(name: &str) -> Option<String> {
    let count = name.chars().count();
    (count > MAX_CHARS).then(|| format!("is {count} characters long (at most {MAX_CHARS})"))
}

/// `name` quoted for a message, its first 40 characters and `…` when it is longer.
pub(crate) fn shown(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((end, _)) => format!("{:?}…", &name[..end]),
        None => format!("{name:?}"),
    }
}

/// Why `name` is not a valid name, if it is not.
pub(crate) fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if let Some(long) = too_long(name) {
        return Some(long);
    }
    if name.trim() != name {
        return Some("starts or ends with white space".into());
    }
    // What may not reach a terminal (`text` owns that list) may not be in a name either.
    if let Some(c) = name.chars().find(|&c| crate::text::is_unsafe_char(c)) {
        let kind = if c.is_control() {
            "control"
        } else {
            "invisible"
        };
        return Some(format!(
            "contains the {kind} character {}",
            c.escape_unicode()
        ));
    }
    None
}

/// The form two names are compared in: equal forms look the same.
pub(crate) fn lookalike_key(name: &str) -> String {
    name.nfkc().collect()
}

/// Among `names` (in file order), each one that looks like an earlier one but is written
/// differently: `(index of the earlier, index of the later)`.
pub(crate) fn lookalikes<'n>(names: impl IntoIterator<Item = &'n str>) -> Vec<(usize, usize)> {
    let mut seen: std::collections::HashMap<String, (usize, &str)> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        // ASCII is already in normal form: no table lookups for the usual names.
        let key = if name.is_ascii() {
            name.to_owned()
        } else {
            lookalike_key(name)
        };
        match seen.get(&key) {
            Some(&(first, written)) if written != name => out.push((first, i)),
            Some(_) => {}
            None => {
                seen.insert(key, (i, name));
            }
        }
    }
    out
}

/// How a name is written, for a message about two that look alike: its code points.
pub(crate) fn spelled(name: &str) -> String {
    name.chars()
        .map(|c| format!("U+{:04X}", c as u32))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_rule() {
        for ok in ["build", "canary 5%", "déploiement", "東京", "a-b_c.d"] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            " build",
            "build ",
            "a\nb",
            "a\tb",
            "a\u{1b}[31mred",
            "ab\u{200B}",
            "a\u{202E}b",
            "a\u{2028}b",
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
        // Up to 128 characters, however many bytes they take.
        assert_eq!(problem(&"東".repeat(MAX_CHARS)), None);
        let long = "東".repeat(MAX_CHARS + 1);
        assert_eq!(
            problem(&long).as_deref(),
            Some("is 129 characters long (at most 128)")
        );
        // Shown in a message by its first 40 characters.
        assert_eq!(shown(&long), format!("{:?}…", "東".repeat(40)));
        assert_eq!(shown("build"), "\"build\"");
    }

    #[test]
    fn names_differing_only_by_normalization_look_alike() {
        let composed = "caf\u{e9}";
        let decomposed = "cafe\u{301}";
        assert_eq!(
            lookalikes([composed, "x", decomposed, composed]),
            vec![(0, 2)]
        );
        assert_eq!(lookalikes(["deploy", "\u{ff44}eploy"]), vec![(0, 1)]);
        assert!(lookalikes(["deploy", "Deploy"]).is_empty());
    }
}
