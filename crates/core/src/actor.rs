//! Who may be named as acting: the character set of actor names.
//!
//! An actor name is recorded on every event and printed in every table, compared against
//! `approvers` lists and pasted into commands as `${run.initiator}`. Keeping it to a small,
//! visible, shell-inert alphabet means a name can neither draw fake rows, hide behind
//! look-alike letters, nor carry shell syntax. `docs/cli.md` (`--as`) documents the set.

/// The longest actor name accepted, in characters.
pub const MAX_ACTOR_LEN: usize = 64;

/// Why a name cannot be an actor name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorNameError {
    /// Nothing, or only white space.
    #[error("an actor name cannot be empty")]
    Empty,
    /// Longer than [`MAX_ACTOR_LEN`].
    #[error("an actor name has at most {MAX_ACTOR_LEN} characters")]
    TooLong,
    /// A character outside the set; `escaped` shows it printable.
    #[error(
        "an actor name has ASCII letters, digits and `. _ - @ +`, starting with a letter or digit; \
         {escaped} is not allowed"
    )]
    BadChar {
        /// The offending character, escaped for printing.
        escaped: String,
    },
}

/// Checks `name` against the actor-name set: 1 to 64 of ASCII letters, digits, `.`, `_`, `-`,
/// `@`, `+`, the first a letter or digit. Enough for user names, e-mail addresses and bot
/// names (`ci-bot`, `ana@example.com`, `deploy+prod`).
pub fn check_actor_name(name: &str) -> Result<(), ActorNameError> {
    let Some(first) = name.chars().next() else {
        return Err(ActorNameError::Empty);
    };
    if name.chars().count() > MAX_ACTOR_LEN {
        return Err(ActorNameError::TooLong);
    }
    let bad = |c: char| {
        Err(ActorNameError::BadChar {
            escaped: match c {
                ' ' => "a space".to_owned(),
                c => {
                    let shown = crate::text::escape_control(&c.to_string()).into_owned();
                    // Beyond ASCII and printable as it is: a look-alike (`а` for `a`, `ｂ`
                    // for `b`) or a combining mark, which only its code point tells apart.
                    if !c.is_ascii() && shown.chars().count() == 1 {
                        format!("`{shown}` (U+{:04X})", c as u32)
                    } else {
                        format!("`{shown}`")
                    }
                }
            },
        })
    };
    if !first.is_ascii_alphanumeric() {
        return bad(first);
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')))
    {
        Some(c) => bad(c),
        None => Ok(()),
    }
}

/// Whether two actor names name the same person: compared without regard to case, as e-mail
/// addresses and most user directories compare them. `Alice` and `alice` are one person, so
/// neither can approve a run the other started under `not_by_initiator`, nor count twice
/// toward an approval's `min`, nor be listed apart in `approvers` or `overridable_by`. Names
/// are ASCII ([`check_actor_name`]), so ASCII case folding is the whole of it.
pub fn same_actor(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The person an actor name names, as a key: equal for two names exactly when [`same_actor`]
/// says they are one person. For counting people (an approval's `min`, a tally).
pub fn person(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_only_by_case_are_one_actor() {
        // (a, b, same)
        let cases = [
            ("alice", "alice", true),
            ("Alice", "alice", true),
            ("ANA@Example.COM", "ana@example.com", true),
            ("alice", "alice2", false),
            ("alice", "alicE ", false),
            ("bob", "alice", false),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_actor(a, b), same, "{a} {b}");
            assert_eq!(same_actor(b, a), same, "{b} {a}");
            assert_eq!(person(a) == person(b), same, "person({a}), person({b})");
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "alice",
            "ana@example.com",
            "ci-bot",
            "deploy+prod",
            "J.Doe_2",
            "x",
        ] {
            assert_eq!(check_actor_name(name), Ok(()), "{name}");
        }
        assert_eq!(check_actor_name(&"a".repeat(MAX_ACTOR_LEN)), Ok(()));
    }

    #[test]
    fn names_that_could_mislead_are_refused() {
        let cases: &[(&str, ActorNameError)] = &[
            ("", ActorNameError::Empty),
            ("a\nb", bad(r"`\n`")),
            ("bob\x1b[2J", bad(r"`\u{1b}`")),
            ("ali\u{202e}ce", bad(r"`\u{202e}`")),
            ("jane doe", bad("a space")),
            // A look-alike letter and a combining accent are named by code point: in the
            // message, `а` alone would read as the ASCII `a` it imitates.
            ("\u{430}lice", bad("`\u{430}` (U+0430)")),
            ("bo\u{301}b", bad("`\u{301}` (U+0301)")),
            ("\u{ff42}ob", bad("`\u{ff42}` (U+FF42)")),
            ("-rf", bad("`-`")),
            ("$(id)", bad("`$`")),
            ("a'b", bad("`'`")),
        ];
        for (name, want) in cases {
            assert_eq!(check_actor_name(name).as_ref(), Err(want), "{name:?}");
        }
        assert_eq!(
            check_actor_name(&"a".repeat(MAX_ACTOR_LEN + 1)),
            Err(ActorNameError::TooLong)
        );
    }

    fn bad(escaped: &str) -> ActorNameError {
        ActorNameError::BadChar {
            escaped: escaped.to_owned(),
        }
    }
}
