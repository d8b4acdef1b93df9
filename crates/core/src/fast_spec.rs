//! A fast reader for the plain RON that workflow files are made of.
//!
//! `ron` is thorough but slow: reading a 10,000-state workflow with it took as long as all of
//! validation's own checks put together. This module reads a [`Spec`] in one pass over the
//! text, with no span tree; validation builds the span tree (`locate`) only when it has
//! something to report.
//!
//! It is deliberately conservative: it accepts strings with the common escapes (`\"`, `\\`,
//! `\n`, `\r`, `\t`) and raw strings, plain decimal integers, booleans, lists, maps, structs and
//! enum variants, and gives up (`None`) on anything else: other escapes, floats, `Some(..)`,
//! attributes, any error, unknown or missing field, and a map with a key written twice. The
//! caller then reads the file with `ron` and the span tree as before, so every diagnostic, its
//! wording and its position still come from there; whatever this module accepts, it reads
//! exactly as `ron` does (property-tested below on mutated workflows).

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;

use crate::spec::{ActionSpec, CheckSpec, CommandSpec, HttpSpec, Spec};

/// The [`Spec`] in `text`, or `None` when the fast path does not apply.
pub(crate) fn spec(text: &str) -> Option<Spec> {
    let mut reader = Reader {
        text,
        src: text.as_bytes(),
        pos: 0,
        depth: 0,
        map_entries: 0,
    };
    let spec = Spec::deserialize(&mut reader).ok()?;
    reader.skip_trivia();
    // Trailing text is ron's to report; a duplicate key (serde keeps the last one silently)
    // is validation's to report, from the span tree.
    (reader.pos == text.len() && reader.map_entries == map_entries(&spec)).then_some(spec)
}

/// Entries of every map in `spec`, after deserialization has merged duplicate keys.
fn map_entries(spec: &Spec) -> usize {
    fn json(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(items) => items.iter().map(json).sum(),
            serde_json::Value::Object(map) => map.len() + map.values().map(json).sum::<usize>(),
            _ => 0,
        }
    }
    fn command(c: &CommandSpec) -> usize {
        c.env.len()
    }
    fn http(h: &HttpSpec) -> usize {
        h.headers.len() + h.body.as_ref().map_or(0, json)
    }
    fn check(c: &CheckSpec) -> usize {
        match c {
            CheckSpec::Command(c) => command(c),
            CheckSpec::Http(h) => http(h),
            CheckSpec::Json(j) => json(&j.equals),
            CheckSpec::Watch(w) => check(&w.check),
            CheckSpec::Approval(_) | CheckSpec::Wait(_) | CheckSpec::Window(_) => 0,
        }
    }
    let states: usize = spec
        .states
        .values()
        .flat_map(|s| &s.on_enter)
        .map(|a| match a {
            ActionSpec::Command(c) => command(c),
            ActionSpec::Http(h) => http(h),
        })
        .sum();
    let guards: usize = spec
        .transitions
        .iter()
        .flat_map(|t| &t.guards)
        .map(|g| check(&g.check))
        .sum();
    spec.vars.len()
        + spec.environments.len()
        + spec
            .environments
            .values()
            .map(|e| e.vars.len())
            .sum::<usize>()
        + spec.states.len()
        + states
        + guards
}

/// The only error: "not on the fast path". Its cause never matters; ron will say.
#[derive(Debug)]
struct Bail;

impl fmt::Display for Bail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not on the fast path")
    }
}

impl std::error::Error for Bail {}

impl de::Error for Bail {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Bail
    }
}

/// Deeper nesting than this is left to ron (and keeps the stack bounded).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    text: &'a str,
    src: &'a [u8],
    pos: usize,
    depth: usize,
    /// Map entries read, to detect keys written twice (see [`map_entries`]).
    map_entries: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_trivia(&mut self) {
        // A block comment left open is not trivia: stop at its `/*`, where whatever reads next
        // bails and ron reports it.
        self.pos = match crate::locate::trivia_end(self.src, self.pos) {
            Ok(end) | Err(end) => end,
        };
    }

    /// Skips trivia, then consumes `b` or bails.
    fn expect(&mut self, b: u8) -> Result<(), Bail> {
        self.skip_trivia();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Skips trivia, then consumes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        self.skip_trivia();
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    /// An identifier at the current position (after trivia), not consumed.
    fn peek_ident(&mut self) -> Option<&'a str> {
        self.skip_trivia();
        let src: &'a [u8] = self.src;
        let rest = &src[self.pos..];
        let first = *rest.first()?;
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        let len = rest
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .unwrap_or(rest.len());
        // `r#ident` and `r"..."` are not plain identifiers.
        if matches!(rest.get(len), Some(b'#' | b'"')) {
            return None;
        }
        // ASCII bytes only, so the slice is on character boundaries.
        self.text.get(self.pos..self.pos + len)
    }

    fn ident(&mut self) -> Result<&'a str, Bail> {
        let ident = self.peek_ident().ok_or(Bail)?;
        self.pos += ident.len();
        Ok(ident)
    }

    fn enter(&mut self) -> Result<(), Bail> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bail);
        }
        Ok(())
    }

    /// A string literal: `"..."` with the common escapes, or a raw string `r#"..."#`.
    fn string(&mut self) -> Result<String, Bail> {
        self.skip_trivia();
        match self.peek() {
            Some(b'"') => {}
            Some(b'r') => return self.raw_string(),
            _ => return Err(Bail),
        }
        self.pos += 1;
        let start = self.pos;
        let mut out: Option<Vec<u8>> = None;
        loop {
            let b = self.peek().ok_or(Bail)?;
            match b {
                b'"' => break,
                // A line break or other control character inside: left to ron.
                0..=0x1f | 0x7f => return Err(Bail),
                b'\\' => {
                    let buf = out.get_or_insert_with(|| self.src[start..self.pos].to_vec());
                    let escaped = match self.src.get(self.pos + 1) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        _ => return Err(Bail),
                    };
                    buf.push(escaped);
                    self.pos += 2;
                    continue;
                }
                _ => {
                    if let Some(buf) = out.as_mut() {
                        buf.push(b);
                    }
                }
            }
            self.pos += 1;
        }
        let end = self.pos;
        self.pos += 1;
        match out {
            // Split only at ASCII bytes, so still UTF-8; checked anyway rather than assumed.
            Some(buf) => String::from_utf8(buf).map_err(|_| Bail),
            None => self.text.get(start..end).map(str::to_owned).ok_or(Bail),
        }
    }

    fn raw_string(&mut self) -> Result<String, Bail> {
        self.pos += 1; // r
        let hashes = self.src[self.pos..]
            .iter()
            .take_while(|&&b| b == b'#')
            .count();
        self.pos += hashes;
        if self.peek() != Some(b'"') {
            return Err(Bail);
        }
        self.pos += 1;
        let start = self.pos;
        let mut closing = vec![b'"'];
        closing.extend(std::iter::repeat_n(b'#', hashes));
        let len = self.src[start..]
            .windows(closing.len())
            .position(|w| w == closing.as_slice())
            .ok_or(Bail)?;
        self.pos = start + len + closing.len();
        self.text
            .get(start..start + len)
            .map(str::to_owned)
            .ok_or(Bail)
    }

    /// A plain decimal integer: digits, no sign, separator, suffix, exponent or leading zero.
    fn unsigned(&mut self) -> Result<u64, Bail> {
        self.skip_trivia();
        let rest = &self.src[self.pos..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let next = rest.get(len).copied();
        let plain = len > 0
            && (len == 1 || rest[0] != b'0')
            && !next.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'));
        if !plain {
            return Err(Bail);
        }
        let n = self
            .text
            .get(self.pos..self.pos + len)
            .ok_or(Bail)?
            .parse()
            .map_err(|_| Bail)?;
        self.pos += len;
        Ok(n)
    }

    fn boolean(&mut self) -> Result<bool, Bail> {
        let value = match self.peek_ident() {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(Bail),
        };
        self.pos += if value { 4 } else { 5 };
        Ok(value)
    }
}

macro_rules! bail {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Bail> {
            Err(Bail)
        })*
    };
}

macro_rules! unsigned {
    ($($method:ident $visit:ident $ty:ty),*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
            let n = <$ty>::try_from(self.unsigned()?).map_err(|_| Bail)?;
            visitor.$visit(n)
        })*
    };
}

impl<'de> de::Deserializer<'de> for &mut Reader<'_> {
    type Error = Bail;

    /// Only `serde_json::Value` (`Json(equals: ..)`, webhook bodies) asks for "anything".
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        self.skip_trivia();
        match self.peek().ok_or(Bail)? {
            b'"' => visitor.visit_string(self.string()?),
            b'r' if matches!(self.src.get(self.pos + 1), Some(b'"' | b'#')) => {
                visitor.visit_string(self.string()?)
            }
            b'[' => self.deserialize_seq(visitor),
            b'{' => self.deserialize_map(visitor),
            b'-' => {
                self.pos += 1;
                if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(Bail);
                }
                let magnitude = self.unsigned()?;
                let n = i64::try_from(magnitude).map_err(|_| Bail)?;
                visitor.visit_i64(-n)
            }
            b'0'..=b'9' => visitor.visit_u64(self.unsigned()?),
            _ => visitor.visit_bool(self.boolean()?),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_bool(self.boolean()?)
    }

    unsigned!(deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
              deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64);

    bail!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_f32
          deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf
          deserialize_unit deserialize_ignored_any deserialize_identifier);

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_string(self.string()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_string(self.string()?)
    }

    /// `implicit_some`: a value is `Some(value)`; `None` is none; `Some(..)` is left to ron.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        match self.peek_ident() {
            Some("None") => {
                self.pos += 4;
                visitor.visit_none()
            }
            Some("Some") => Err(Bail),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        self.enter()?;
        self.expect(b'[')?;
        let value = visitor.visit_seq(Items {
            reader: &mut *self,
            close: b']',
            first: true,
        })?;
        self.depth -= 1;
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        self.enter()?;
        self.expect(b'{')?;
        let value = visitor.visit_map(Items {
            reader: &mut *self,
            close: b'}',
            first: true,
        })?;
        self.depth -= 1;
        Ok(value)
    }

    /// `(field: v, ..)`, `Name(field: v, ..)` with the struct's own name, or `()` for a
    /// struct whose fields all have defaults.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Bail> {
        self.enter()?;
        if let Some(written) = self.peek_ident() {
            if written != name {
                return Err(Bail);
            }
            self.pos += written.len();
        }
        self.expect(b'(')?;
        let value = visitor.visit_map(Fields {
            reader: &mut *self,
            first: true,
        })?;
        self.depth -= 1;
        Ok(value)
    }

    /// A unit variant (`Success`, `Mon`) or a newtype variant around a struct, written
    /// without double parentheses (`Command(run: [..])`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Bail> {
        let variant = self.ident()?;
        visitor.visit_enum(Enum {
            reader: self,
            variant,
        })
    }
}

/// The elements of a list, or the entries of a map, up to `close`.
struct Items<'r, 'a> {
    reader: &'r mut Reader<'a>,
    close: u8,
    first: bool,
}

impl Items<'_, '_> {
    /// Moves to the next element: false (and the closing bracket consumed) at the end.
    fn next(&mut self) -> Result<bool, Bail> {
        if self.reader.eat(self.close) {
            return Ok(false);
        }
        if !std::mem::replace(&mut self.first, false) {
            self.reader.expect(b',')?;
            if self.reader.eat(self.close) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, '_> {
    type Error = Bail;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Bail> {
        if !self.next()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, '_> {
    type Error = Bail;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Bail> {
        if !self.next()? {
            return Ok(None);
        }
        self.reader.map_entries += 1;
        let key = seed.deserialize(&mut *self.reader)?;
        self.reader.expect(b':')?;
        Ok(Some(key))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Bail> {
        seed.deserialize(&mut *self.reader)
    }
}

/// The `field: value` pairs of a struct, up to `)`.
struct Fields<'r, 'a> {
    reader: &'r mut Reader<'a>,
    first: bool,
}

impl<'de> de::MapAccess<'de> for Fields<'_, '_> {
    type Error = Bail;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Bail> {
        if self.reader.eat(b')') {
            return Ok(None);
        }
        if !std::mem::replace(&mut self.first, false) {
            self.reader.expect(b',')?;
            if self.reader.eat(b')') {
                return Ok(None);
            }
        }
        let name = self.reader.ident()?;
        self.reader.expect(b':')?;
        let name: de::value::StrDeserializer<'_, Bail> = name.into_deserializer();
        seed.deserialize(name).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Bail> {
        seed.deserialize(&mut *self.reader)
    }
}

struct Enum<'r, 'a> {
    reader: &'r mut Reader<'a>,
    variant: &'a str,
}

impl<'de, 'r, 'a> de::EnumAccess<'de> for Enum<'r, 'a> {
    type Error = Bail;
    type Variant = &'r mut Reader<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'r mut Reader<'a>), Bail> {
        let name: de::value::StrDeserializer<'_, Bail> = self.variant.into_deserializer();
        Ok((seed.deserialize(name)?, self.reader))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'_> {
    type Error = Bail;

    fn unit_variant(self) -> Result<(), Bail> {
        self.skip_trivia();
        match self.peek() {
            Some(b'(') => Err(Bail),
            _ => Ok(()),
        }
    }

    /// `Command(run: ..)`: the variant's parentheses are the struct's (an unnamed struct).
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Bail> {
        self.skip_trivia();
        if self.peek() != Some(b'(') {
            return Err(Bail);
        }
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Bail> {
        Err(Bail)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Bail> {
        Err(Bail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    /// The shipped workflows, the invalid examples and the bench's cycle.
    fn corpus() -> Vec<String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut out = Vec::new();
        for dir in ["workflows", "workflows/examples", "tests/invalid", "bench"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "ron") {
                    out.extend(std::fs::read_to_string(&path).ok());
                }
            }
        }
        out.sort();
        assert!(out.len() > 5, "corpus not found under {}", root.display());
        out
    }

    fn fast(text: &str) -> Option<Spec> {
        spec(text)
    }

    /// Whatever the fast path accepts, ron reads the same.
    fn agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(ours) = fast(text) {
            let theirs = crate::spec::ron_options().from_str::<Spec>(text);
            prop_assert_eq!(Some(&ours), theirs.as_ref().ok(), "text:\n{}", text);
        }
        Ok(())
    }

    #[test]
    fn shipped_workflows_take_the_fast_path_and_agree_with_ron() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        for dir in [root.clone(), root.join("examples")] {
            for entry in std::fs::read_dir(&dir).expect("workflows dir").flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "ron") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("readable");
                let ron = crate::spec::ron_options()
                    .from_str::<Spec>(&text)
                    .expect("shipped workflows parse");
                assert_eq!(fast(&text), Some(ron), "{}", path.display());
            }
        }
    }

    #[test]
    fn whatever_ron_rejects_is_left_to_ron() {
        for text in corpus() {
            if crate::spec::ron_options().from_str::<Spec>(&text).is_err() {
                assert_eq!(fast(&text), None, "{text}");
            }
        }
    }

    #[test]
    fn escapes_values_and_edge_cases_agree_with_ron() {
        let cases = [
            r##"Workflow(name: "a\"b\\c\n\t", initial: "s", states: { "s": () })"##,
            r##"Workflow(name: "a\u{41}", initial: "s", states: {"s": ()})"##,
            r##"Workflow(name: r#"raw "x""#, initial: "s", states: {"s": ()})"##,
            r##"Workflow(name: "w", initial: "s", states: {"s": ()}) trailing"##,
            r##"#![enable(implicit_some)] Workflow(name: "w", initial: "s", states: {"s": ()})"##,
            r##"Spec(name: "w", initial: "s", states: {"s": ()})"##,
            r##"(name: "w", initial: "s", description: None, rollback: Some("s"), states: {"s": ()})"##,
            r##"(name: "w", initial: "s", states: {"s": ()}, transitions: [(from: "s", to: "s",
                guards: [(name: "j", check: Json(file: "f", pointer: "", equals: {"a": [1, -2, true, "x"]})),
                         (name: "k", check: Json(file: "f", pointer: "", equals: 1.5)),
                         (name: "h", check: Http(url: "u", expect_status: 0200)),
                         (name: "i", check: Http(url: "u", expect_status: 70000)),
                         (name: "r", check: Wait(duration: "1s"), retry: (attempts: 1_0))])])"##,
            r##"(name: "w", initial: "s", states: {"s": (terminal: Success, terminal: Failure)})"##,
            r##"(name: "w", initial: "s", states: {"s": (on_enter: [Command((run: ["x"]))])})"##,
            r##"(name: "w", initial: "s", states: {"s": (on_enter: [Http(url: "u", body: {"t": "${x}"})])})"##,
            "(name: \"multi\nline\", initial: \"s\", states: {\"s\": ()})",
        ];
        for text in cases {
            agrees(text).map_err(|e| format!("{e}")).expect("agrees");
        }
    }

    fn mutation() -> impl Strategy<Value = (usize, usize, &'static str)> {
        let tokens = prop::sample::select(vec![
            "",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "\"",
            "\\",
            "\\\"",
            "\\u{41}",
            "\\n",
            "r#\"",
            "\"#",
            "#",
            "None",
            "Some(",
            "()",
            "0",
            "-1",
            "1.5",
            "1_0",
            "0x10",
            "true",
            "terminal: Success",
            "Watch(",
            "/*",
            "*/",
            "//",
            "\n",
            "é",
            "'a'",
            "b\"x\"",
        ]);
        (any::<usize>(), 0usize..8, tokens)
    }

    fn apply(text: &str, (at, delete, insert): &(usize, usize, &str)) -> String {
        let floor = |mut i: usize| {
            i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let a = floor(at % text.len().max(1));
        let b = floor(a + delete);
        format!("{}{}{}", &text[..a], insert, &text[b..])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

        #[test]
        fn mutated_workflows_read_the_same_as_with_ron(
            which in any::<prop::sample::Index>(),
            mutations in prop::collection::vec(mutation(), 1..4),
        ) {
            let files = corpus();
            let mut text = files[which.index(files.len())].clone();
            for m in &mutations {
                text = apply(&text, m);
            }
            agrees(&text)?;
        }
    }
}
