//! The span tree: where each value of a workflow file sits in its text.
//!
//! ron reports positions for syntax and type errors only; the semantic errors of validation
//! (an unknown state, an undeclared `${var}`) need the position of a name or value that serde
//! has long forgotten. This module parses the same text a second time into a light tree of
//! spans (no values beyond strings), which validation walks alongside the [`crate::spec::Spec`]
//! to point at the offending text. It only runs on text ron has already accepted, but it never
//! panics on any input: it gives up and returns `None` instead.

use std::ops::Range;

/// A node of the span tree: where a value sits in the source and what shape it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Byte range of the whole value.
    pub span: Range<usize>,
    /// Its shape.
    pub kind: NodeKind<'a>,
}

/// The shapes of RON values, as far as positions need them.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind<'a> {
    /// A string literal; `raw` is the text between the quotes, escapes untouched.
    Str {
        /// Byte range of the literal's content as written, between the quotes.
        raw: Range<usize>,
        /// That content, escapes untouched (borrowed from the source: no copy per string).
        text: &'a str,
    },
    /// A number, char, boolean or bare identifier (`Success`, `Mon`, `None`).
    Atom,
    /// `[a, b]`.
    List(Vec<Node<'a>>),
    /// `{ k: v }`, with an index of its string keys built on first lookup.
    Map(Vec<(Node<'a>, Node<'a>)>, KeyIndex<'a>),
    /// `Name(field: v, ..)` or `(field: v, ..)`.
    Struct(Vec<Field<'a>>),
    /// `Name(a, b)`, `(a, b)` or `()`.
    Tuple(Vec<Node<'a>>),
}

/// A named field of a struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<'a> {
    /// The field's name.
    pub name: &'a str,
    /// Where the name is written.
    pub name_span: Range<usize>,
    /// Its value.
    pub value: Node<'a>,
}

/// Where each string key of a map first occurs, built on the first lookup: validation looks up
/// one entry per diagnostic, and a linear search per lookup made a file with thousands of
/// states and as many findings quadratic (docs/performance.md).
#[derive(Debug, Clone, Default)]
pub struct KeyIndex<'a>(
    std::cell::OnceCell<std::collections::HashMap<std::borrow::Cow<'a, str>, usize>>,
);

impl PartialEq for KeyIndex<'_> {
    /// A cache, not part of the value.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<'a> KeyIndex<'a> {
    fn find(&self, entries: &[(Node<'a>, Node<'a>)], key: &str) -> Option<usize> {
        // A handful of entries are searched faster than hashed.
        if entries.len() <= 8 {
            return entries.iter().position(|(k, _)| k.is_str(key));
        }
        let index = self.0.get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(entries.len());
            for (i, (k, _)) in entries.iter().enumerate() {
                if let NodeKind::Str { text, .. } = k.kind {
                    index.entry(unescape(text)).or_insert(i);
                }
            }
            index
        });
        index.get(key).copied()
    }
}

/// A step of a path into the span tree: a field or map key by name, or a list item.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A field of a construct, or a key of a map.
    Field(&'a str),
    /// An item of a list, from 0.
    Index(usize),
}

impl<'a> Node<'a> {
    /// The node at `path` below this one, if every step exists.
    pub fn find(&self, path: &[Step]) -> Option<&Node<'a>> {
        let mut node = self;
        for step in path {
            node = match *step {
                Step::Field(name) => node.get(name)?,
                Step::Index(i) => node.at(i)?,
            };
        }
        Some(node)
    }

    /// The span at `path`, or of its longest prefix that exists: a finding about a value
    /// that is not written (a missing field) points at what holds it.
    pub fn span_at(&self, path: &[Step]) -> Range<usize> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.find(&path[..n]).map(|node| node.span.clone()))
            .unwrap_or(0..0)
    }

    /// A struct's field, or a map's entry whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.kind {
            NodeKind::Struct(fields) => fields.iter().find(|f| f.name == key).map(|f| &f.value),
            NodeKind::Map(entries, index) => index.find(entries, key).map(|i| &entries[i].1),
            _ => None,
        }
    }

    /// Where a struct field's name, or a map entry's key, is written.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        match &self.kind {
            NodeKind::Struct(fields) => fields
                .iter()
                .find(|f| f.name == key)
                .map(|f| f.name_span.clone()),
            NodeKind::Map(entries, index) => {
                index.find(entries, key).map(|i| entries[i].0.span.clone())
            }
            _ => None,
        }
    }

    /// The `i`th element of a list or tuple.
    pub fn at(&self, i: usize) -> Option<&Node<'a>> {
        match &self.kind {
            NodeKind::List(items) | NodeKind::Tuple(items) => items.get(i),
            _ => None,
        }
    }

    /// The entries of a map, in source order.
    pub fn entries(&self) -> &[(Node<'a>, Node<'a>)] {
        match &self.kind {
            NodeKind::Map(entries, _) => entries,
            _ => &[],
        }
    }

    /// The content range of a string literal.
    pub fn raw(&self) -> Option<Range<usize>> {
        match &self.kind {
            NodeKind::Str { raw, .. } => Some(raw.clone()),
            _ => None,
        }
    }

    fn is_str(&self, want: &str) -> bool {
        matches!(&self.kind, NodeKind::Str { text, .. } if unescape(text) == want)
    }
}

/// The value of string content written `raw`: the common escapes (`\n`, `\t`, `\r`, `\\`,
/// `\"`, `\u{..}`) resolved, so that a key written with an escape is found by its value.
/// Anything else is left as written. Borrowed when there is no backslash, as usual.
pub fn unescape(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains('\\') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let rest = chars.as_str();
                let code = rest
                    .strip_prefix('{')
                    .and_then(|r| r.split_once('}'))
                    .and_then(|(hex, _)| u32::from_str_radix(hex, 16).ok().map(|n| (hex.len(), n)))
                    .and_then(|(len, n)| char::from_u32(n).map(|c| (len, c)));
                match code {
                    Some((len, c)) => {
                        out.push(c);
                        chars = rest[len + 2..].chars();
                    }
                    None => out.push_str("\\u"),
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Parses `source` into a span tree; `None` if it is not RON this module understands.
pub fn parse(source: &str) -> Option<Node<'_>> {
    let mut p = Parser {
        src: source.as_bytes(),
        text: source,
        pos: 0,
        depth: 0,
    };
    p.skip_trivia();
    // Inner attributes: `#![enable(implicit_some)]`.
    while p.src[p.pos..].starts_with(b"#![") {
        let close = source[p.pos..].find(']')?;
        p.pos += close + 1;
        p.skip_trivia();
    }
    let node = p.value()?;
    Some(node)
}

const MAX_DEPTH: usize = 128;

/// Where the whitespace and comments starting at `pos` end. RON's block comments nest; one
/// left open is `Err` with where it starts.
pub(crate) fn trivia_end(src: &[u8], mut pos: usize) -> Result<usize, usize> {
    loop {
        match src.get(pos) {
            Some(b) if b.is_ascii_whitespace() => pos += 1,
            Some(b'/') if src.get(pos + 1) == Some(&b'/') => {
                while src.get(pos).is_some_and(|&b| b != b'\n') {
                    pos += 1;
                }
            }
            Some(b'/') if src.get(pos + 1) == Some(&b'*') => {
                let start = pos;
                let mut level = 0usize;
                loop {
                    if pos >= src.len() {
                        return Err(start);
                    }
                    if src[pos..].starts_with(b"/*") {
                        level += 1;
                        pos += 2;
                    } else if src[pos..].starts_with(b"*/") {
                        level -= 1;
                        pos += 2;
                        if level == 0 {
                            break;
                        }
                    } else {
                        pos += 1;
                    }
                }
            }
            _ => return Ok(pos),
        }
    }
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_trivia(&mut self) {
        // An unterminated block comment runs to the end: ron has reported it already.
        self.pos = trivia_end(self.src, self.pos).unwrap_or(self.src.len());
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_trivia();
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Node<'a>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.skip_trivia();
        let start = self.pos;
        let node = match self.peek()? {
            b'"' => self.string(),
            b'r' if matches!(self.src.get(self.pos + 1), Some(b'"' | b'#')) => self.raw_string(),
            b'[' => {
                self.pos += 1;
                let items = self.items(b']')?;
                Some(Node {
                    span: start..self.pos,
                    kind: NodeKind::List(items),
                })
            }
            b'{' => {
                self.pos += 1;
                let entries = self.map()?;
                Some(Node {
                    span: start..self.pos,
                    kind: NodeKind::Map(entries, KeyIndex::default()),
                })
            }
            b'(' => self.parens(start),
            b'\'' => {
                self.pos += 1;
                while let Some(b) = self.peek() {
                    self.pos += 1;
                    match b {
                        b'\\' => self.pos += 1,
                        b'\'' => break,
                        _ => {}
                    }
                }
                Some(Node {
                    span: start..self.pos,
                    kind: NodeKind::Atom,
                })
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                self.ident()?;
                self.skip_trivia();
                if self.peek() == Some(b'(') {
                    let mut node = self.parens(start)?;
                    node.span.start = start;
                    Some(node)
                } else {
                    Some(Node {
                        span: start..self.pos,
                        kind: NodeKind::Atom,
                    })
                }
            }
            b if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.') => {
                self.pos += 1;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
                {
                    self.pos += 1;
                }
                Some(Node {
                    span: start..self.pos,
                    kind: NodeKind::Atom,
                })
            }
            _ => None,
        };
        self.depth -= 1;
        node
    }

    fn ident(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        (self.pos > start).then_some(start..self.pos)
    }

    fn string(&mut self) -> Option<Node<'a>> {
        let start = self.pos;
        self.pos += 1;
        let raw_start = self.pos;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        let raw = raw_start..self.pos;
        self.pos += 1;
        Some(self.str_node(start, raw))
    }

    fn raw_string(&mut self) -> Option<Node<'a>> {
        let start = self.pos;
        self.pos += 1;
        let hashes = self.src[self.pos..]
            .iter()
            .take_while(|&&b| b == b'#')
            .count();
        self.pos += hashes;
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let raw_start = self.pos;
        let closing: Vec<u8> = std::iter::once(b'"')
            .chain(std::iter::repeat_n(b'#', hashes))
            .collect();
        let len = self.src[self.pos..]
            .windows(closing.len())
            .position(|w| w == closing.as_slice())?;
        let raw = raw_start..raw_start + len;
        self.pos = raw.end + closing.len();
        Some(self.str_node(start, raw))
    }

    fn str_node(&self, start: usize, raw: Range<usize>) -> Node<'a> {
        let text = self.text.get(raw.clone()).unwrap_or_default();
        Node {
            span: start..self.pos,
            kind: NodeKind::Str { raw, text },
        }
    }

    fn items(&mut self, close: u8) -> Option<Vec<Node<'a>>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn map(&mut self) -> Option<Vec<(Node<'a>, Node<'a>)>> {
        let mut entries = Vec::new();
        loop {
            if self.eat(b'}') {
                return Some(entries);
            }
            let key = self.value()?;
            if !self.eat(b':') {
                return None;
            }
            let value = self.value()?;
            entries.push((key, value));
            if !self.eat(b',') {
                return self.eat(b'}').then_some(entries);
            }
        }
    }

    /// `(` at `self.pos`: a struct body if it starts with `ident:`, else a tuple.
    fn parens(&mut self, start: usize) -> Option<Node<'a>> {
        self.pos += 1;
        self.skip_trivia();
        let save = self.pos;
        let is_struct = self.ident().is_some() && {
            self.skip_trivia();
            self.peek() == Some(b':')
        };
        self.pos = save;
        if !is_struct {
            let items = self.items(b')')?;
            return Some(Node {
                span: start..self.pos,
                kind: NodeKind::Tuple(items),
            });
        }
        let mut fields = Vec::new();
        loop {
            if self.eat(b')') {
                break;
            }
            self.skip_trivia();
            let name_span = self.ident()?;
            if !self.eat(b':') {
                return None;
            }
            let value = self.value()?;
            fields.push(Field {
                name: &self.text[name_span.clone()],
                name_span,
                value,
            });
            if !self.eat(b',') {
                if !self.eat(b')') {
                    return None;
                }
                break;
            }
        }
        Some(Node {
            span: start..self.pos,
            kind: NodeKind::Struct(fields),
        })
    }
}
