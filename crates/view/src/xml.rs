//! Escaping text for XML and HTML (element content and quoted attributes alike). Every stored
//! or typed value on a picture or a page goes through here: names, comments and details are
//! user input, and `<script>` in a state name must show as those eight characters.

use waygate_core::text::escape_control;

/// `text` as one visible line, safe anywhere in XML or HTML: control and invisible characters
/// written as their code point first ([`escape_control`], as in a terminal), then the five
/// characters XML gives meaning to as entities.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    entities(&mut out, &escape_control(text));
    out
}

/// `text` with its own line breaks kept (descriptions, evidence, comments over several lines),
/// every other control or invisible character escaped as in [`text`].
pub fn lines(text: &str) -> String {
    // One buffer for the whole text: a page of 10,000 events' evidence is many short lines.
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        entities(&mut out, &escape_control(line));
    }
    out
}

/// `text` with its own line breaks kept, for element content only (a `<pre>`, never an
/// attribute): as [`lines`], but quotes stay quotes. Evidence (an event as JSON, full of
/// quotes) is a fifth shorter so, and cheaper to render.
pub fn content_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = escape_control(line);
        if !line.contains(['&', '<', '>', '\u{fffe}', '\u{ffff}']) {
            out.push_str(&line);
            continue;
        }
        for c in line.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out
}

/// The five XML characters as entities; the two code points XML forbids even as entities
/// (U+FFFE, U+FFFF) written as their code point, like control characters.
fn entities(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_control_characters_are_escaped() {
        // (input, escaped)
        let cases = [
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a \"b\" 'c' & d", "a &quot;b&quot; &#39;c&#39; &amp; d"),
            ("bell\u{7}\u{1b}[31m", "bell\\u{7}\\u{1b}[31m"),
            ("two\nlines", "two\\nlines"),
            ("rtl\u{202e}x", "rtl\\u{202e}x"),
            ("non\u{ffff}char", "non\\u{ffff}char"),
            ("plain-name_1", "plain-name_1"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input:?}");
        }
        assert_eq!(lines("a<b\nc\u{7}"), "a&lt;b\nc\\u{7}");
        assert_eq!(
            content_lines("{\"a\": \"</pre><script>\"}\n\u{202e}&"),
            "{\"a\": \"&lt;/pre&gt;&lt;script&gt;\"}\n\\u{202e}&amp;"
        );
    }
}
