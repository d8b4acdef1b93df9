//! Untrusted text made safe to print for people.
//!
//! Names, comments, reasons, guard details and command output come from people and programs
//! that may not be on our side. Printed raw, a newline in an `--as` name or an approval comment
//! draws a fake row in `history`, an escape sequence recolours or clears the terminal, and a
//! right-to-left override (U+202E) makes `prod` read as something else. [`escape_control`] is
//! the one function every human output passes such text through; JSON output stays exact (its
//! encoding escapes control characters by itself). `docs/cli.md` ("Untrusted text") describes
//! what people see.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is: C0 and C1 control characters and DEL
/// (`Cc`), the invisible formatting characters (`Cf`: bidi embeddings, overrides and isolates,
/// zero-width spaces and joiners, the byte-order mark, tag characters...) and the line and
/// paragraph separators (`Zl`, `Zp`), which some terminals and editors break lines on.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// Whether `text` says nothing a person could read: it is empty, or only whitespace and
/// [unsafe characters](is_unsafe_char) (a zero-width space, an escape, a bidi override). A
/// reason kept in the audit trail must say something.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_unsafe_char(c))
}

/// Who reads a word written by [`shell_word`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellReader {
    /// A shell, the line pasted into it: only ASCII letters and digits and `_-./:@%+=,` stay
    /// bare, so nothing in a word is expanded or split.
    Shell,
    /// A person reading a recorded command (`Command git push origin main`): letters of any
    /// script and `*` stay bare too, so an argv with spaces inside its arguments reads
    /// unambiguously without quoting every word.
    Person,
}

/// `word` as one word of a command line for `reader`: as it is when every character is plain
/// to that reader, else in single quotes (a `'` inside written as `'\''`).
pub fn shell_word(word: &str, reader: ShellReader) -> String {
    let plain = |c: char| match reader {
        ShellReader::Shell => c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c),
        ShellReader::Person => c.is_alphanumeric() || "-_./:=,+@%*".contains(c),
    };
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Unicode 15.1's `Cf`, `Zl` and `Zp` characters.
fn is_format_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// `text` with every [unsafe character](is_unsafe_char) written as an escape: `\n`, `\r`,
/// `\t`, and `\u{1b}` (hexadecimal code point) for the rest, so one stored value always prints
/// as one visible line. Everything else, backslashes included, prints as it is. Borrows when
/// there is nothing to escape.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The first characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell
/// as a formula: `=`, `+`, `-`, `@`, a tab, a carriage return (OWASP, "CSV Injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV field (RFC 4180), safe to open in a spreadsheet: the one rule every CSV writer uses
/// (`audit`, `history`, `runs --format csv`, the API's `/v1/audit?format=csv`).
///
/// - A field starting with a formula character (`FORMULA_STARTS`) gets a leading `'`, as OWASP
///   recommends, so `=HYPERLINK(..)` in a name or comment is shown, not run. No column is a
///   number that may start with `-` (sequence numbers and versions are unsigned, times RFC
///   3339), so the rule never alters a number.
/// - A field is quoted when it holds a `,`, `"` or line break (RFC 4180), and also a `;` or a
///   tab: a spreadsheet that splits on those (Excel in many locales splits on `;`) would
///   otherwise start a new cell in the middle of the text, past the leading-`'` rule.
///
/// Otherwise the text is exact; JSON is the exact record.
pub fn csv_field(s: &str) -> Cow<'_, str> {
    let formula = s.starts_with(FORMULA_STARTS);
    let quote = s.contains([',', '"', '\n', '\r', ';', '\t']);
    if !formula && !quote {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 3);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quote {
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
    Cow::Owned(out)
}

/// One CSV record: the fields quoted as needed, joined by commas, ended by CRLF.
pub fn csv_row<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let cells: Vec<Cow<'_, str>> = fields.into_iter().map(csv_field).collect();
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_row(["a", "b,c"]), "a,\"b,c\"\r\n");
        assert_eq!(csv_field("a;b"), "\"a;b\"");
        assert_eq!(csv_field("a\tb"), "\"a\tb\"");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        // (field, as written)
        let cases = [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\"",
            ),
            // Only the start counts: inside a cell the characters are text.
            ("a=b", "a=b"),
            ("2026-11-29T10:00:00Z", "2026-11-29T10:00:00Z"),
            ("approved `g`: =cmd", "approved `g`: =cmd"),
            // A `;` would start a cell for a spreadsheet splitting on it: quoted, never split.
            ("ok;=cmd", "\"ok;=cmd\""),
            ("", ""),
            ("'=x", "'=x"),
        ];
        for (field, written) in cases {
            assert_eq!(csv_field(field), written, "{field:?}");
        }
    }

    #[test]
    fn a_shell_gets_fewer_bare_words_than_a_person() {
        // (word, for a shell, for a person)
        let cases = [
            ("deploy.sh", "deploy.sh", "deploy.sh"),
            ("*.log", "'*.log'", "*.log"),
            ("café", "'café'", "café"),
            ("a b", "'a b'", "'a b'"),
            ("it's", r"'it'\''s'", r"'it'\''s'"),
            ("", "''", "''"),
        ];
        for (word, shell, person) in cases {
            assert_eq!(shell_word(word, ShellReader::Shell), shell, "{word}");
            assert_eq!(shell_word(word, ShellReader::Person), person, "{word}");
        }
    }

    #[test]
    fn blank_text_is_whitespace_and_invisible_characters_only() {
        for blank in [
            "",
            "  ",
            "\t\n",
            "\u{200b}",
            " \u{feff} ",
            "\u{1b}",
            "\u{202e}\u{2028}",
        ] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for said in ["x", " rollback ", "\u{200b}x", "errors up\u{1b}"] {
            assert!(!is_blank(said), "{said:?}");
        }
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "alice",
            "ana@example.com",
            "déploiement ✓ 漢字",
            r"C:\path\n",
        ] {
            assert!(
                matches!(escape_control(s), Cow::Borrowed(t) if t == s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        let cases = [
            ("a\nb", r"a\nb"),
            ("a\r\nb", r"a\r\nb"),
            ("a\tb", r"a\tb"),
            ("\x1b[2J\x1b[31mred", r"\u{1b}[2J\u{1b}[31mred"),
            ("\0", r"\u{0}"),
            ("\x7f", r"\u{7f}"),
            ("\u{9b}31m", r"\u{9b}31m"),
            ("\u{202e}dorp", r"\u{202e}dorp"),
            ("a\u{2066}b\u{2069}", r"a\u{2066}b\u{2069}"),
            ("zero\u{200b}width", r"zero\u{200b}width"),
            ("\u{feff}bom", r"\u{feff}bom"),
            ("line\u{2028}sep", r"line\u{2028}sep"),
            ("tag\u{e0041}", r"tag\u{e0041}"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape_control(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn escaped_text_is_one_line_without_unsafe_characters() {
        let all: String = (0u32..0x11_0000).filter_map(char::from_u32).collect();
        let out = escape_control(&all);
        assert!(!out.chars().any(is_unsafe_char));
        assert!(!out.contains('\n'));
    }
}
