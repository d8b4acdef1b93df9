//! Byte offsets to lines and columns: how every finding gets the 1-based line and column
//! (in characters) that diagnostics print, and how a shown line is found.

use std::ops::Range;

/// Converts byte offsets to 1-based lines and columns (columns counted in characters).
///
/// Every lookup is a binary search, so a file with many findings on one very long line costs
/// no more per finding than one with short lines.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    /// Offsets of UTF-8 continuation bytes: a column is the bytes from the line start minus
    /// the continuation bytes among them.
    continuations: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        let mut continuations = Vec::new();
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            } else if b & 0xC0 == 0x80 {
                continuations.push(i);
            }
        }
        LineIndex {
            starts,
            continuations,
        }
    }

    /// 0-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }

    /// Byte range of 0-based line `line`, without its line break.
    pub fn line_range(&self, text: &str, line: usize) -> Range<usize> {
        let start = self.starts.get(line).copied().unwrap_or(text.len());
        let end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |&next| next - 1);
        let end = if end > start && text.as_bytes().get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        start..end.max(start)
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the text is empty of lines (never: an empty text has one empty line).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Characters between byte offsets `from` and `to` of the text indexed.
    pub fn chars_between(&self, from: usize, to: usize) -> usize {
        let to = to.max(from);
        let cont = self.continuations.partition_point(|&c| c < to)
            - self.continuations.partition_point(|&c| c < from);
        to - from - cont
    }

    /// 1-based (line, column) of byte `offset` in `text`.
    pub fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.line_of(offset);
        let start = self.starts[line];
        (line + 1, self.chars_between(start, offset) + 1)
    }

    /// Byte offset of 1-based (line, column), clamped to the text.
    pub fn offset(&self, text: &str, line: usize, col: usize) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1)) else {
            return text.len();
        };
        let rest = &text[start..];
        rest.char_indices()
            .nth(col.saturating_sub(1))
            .map_or(text.len(), |(i, _)| start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn positions_count_characters_from_one() {
        // (text, offset, (line, column))
        let cases = [
            ("abc", 0, (1, 1)),
            ("abc", 2, (1, 3)),
            ("ab\ncd", 3, (2, 1)),
            ("é\nxé!", 6, (2, 3)),
            ("a\r\nb", 3, (2, 1)),
            ("abc", 99, (1, 4)),
        ];
        for (text, offset, want) in cases {
            let index = LineIndex::new(text);
            assert_eq!(index.position(text, offset), want, "{text:?} at {offset}");
            let (line, col) = want;
            assert_eq!(
                index.offset(text, line, col),
                offset.min(text.len()),
                "{text:?} back from {want:?}"
            );
        }
        let text = "a\r\nb";
        assert_eq!(LineIndex::new(text).line_range(text, 0), 0..1);
    }
}
