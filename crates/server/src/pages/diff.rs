//! What changed in a workflow's definition between two runs: a line diff (Myers, by the
//! `similar` crate, given a deadline so a huge file cannot hold a page up), three lines of
//! context around each change.

use std::fmt::Write as _;
use std::time::Duration;

use similar::{ChangeTag, TextDiff};
use waygate_view::xml;

/// The longest a diff may take; past it `similar` gives a coarser (still correct) diff.
const DEADLINE: Duration = Duration::from_millis(200);

/// `old` against `new` as an HTML `<pre class="diff">`, each line marked `-`, `+` or ` `
/// (the mark is the text; the colour only repeats it); `None` when the two are the same.
pub(super) fn line_diff(old: &str, new: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let diff = TextDiff::configure().timeout(DEADLINE).diff_lines(old, new);
    let mut out = String::from("<pre class=\"diff\">");
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            out.push_str("<span class=\"gap\">⋯</span>\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let (mark, class) = match change.tag() {
                    ChangeTag::Delete => ('-', " class=\"del\""),
                    ChangeTag::Insert => ('+', " class=\"add\""),
                    ChangeTag::Equal => (' ', ""),
                };
                let line = change.value();
                let _ = writeln!(
                    out,
                    "<span{class}>{mark} {}</span>",
                    xml::text(line.strip_suffix('\n').unwrap_or(line))
                );
            }
        }
    }
    out.push_str("</pre>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_marked_and_escaped() {
        assert_eq!(line_diff("a\nb\n", "a\nb\n"), None);
        let d = line_diff("a\n<b>\nc\n", "a\nB\nc\n").expect("a diff");
        assert!(d.contains("<span class=\"del\">- &lt;b&gt;</span>"), "{d}");
        assert!(d.contains("<span class=\"add\">+ B</span>"), "{d}");
        assert!(d.contains("<span>  a</span>"), "{d}");
    }
}
