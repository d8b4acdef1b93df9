//! Values inside fields: durations, times of day and `${..}` templates, each parsed where it
//! is written and reported at its position (a `${var}` at its `$`, even when escapes make the
//! written string differ from the parsed one).

use std::time::Duration;

use super::suggest::Names;
use super::{Checker, Rules, Step, Step::Field};
use crate::diagnostic::Code;
use crate::duration::parse_duration;
use crate::spec::span_tree::Node;
use crate::template::{Template, BUILTINS};

impl Checker<'_> {
    pub(super) fn time_of_day(&mut self, text: &str, path: &[Step]) -> Option<jiff::civil::Time> {
        let parsed = text.split_once(':').and_then(|(h, m)| {
            let ok = h.len() == 2 && m.len() == 2;
            let (h, m) = (h.parse::<i8>().ok()?, m.parse::<i8>().ok()?);
            jiff::civil::Time::new(h, m, 0, 0).ok().filter(|_| ok)
        });
        if parsed.is_none() {
            let span = self.span(path);
            self.report(
                Code::BadTime,
                span,
                format!("{text:?} is not a time of day (HH:MM, 00:00-23:59)"),
            );
        }
        parsed
    }

    /// Parses a duration; `zero` says why zero makes no sense for this field, if it does not.
    pub(super) fn duration(
        &mut self,
        text: &str,
        path: &[Step],
        zero: Option<&str>,
    ) -> Option<Duration> {
        match parse_duration(text) {
            Ok(d) if d.is_zero() && zero.is_some() => {
                let field = match path.last() {
                    Some(Field(name)) => *name,
                    _ => "duration",
                };
                let why = zero.unwrap_or_default();
                let span = self.span(path);
                let d = self.report_newer(
                    Code::BadDuration,
                    span,
                    format!("`{field}` must be above zero: {text:?} {why}"),
                );
                d.label = "zero".into();
                d.help = Some(format!("write a length of time, e.g. {field}: \"30s\""));
                // A pinned definition keeps the zero it was started with.
                (self.rules == Rules::Pinned).then_some(Duration::ZERO)
            }
            Ok(d) => Some(d),
            Err(e) => {
                let span = self.span(path);
                self.report(Code::BadDuration, span, e.to_string());
                None
            }
        }
    }

    /// Parses a string as a template, checking every variable it names.
    pub(super) fn template(&mut self, text: &str, path: &[Step]) -> Option<Template> {
        match Template::parse(text) {
            Err(e) => {
                let nth = text[..e.offset].matches("${").count();
                let start = self.reference_offset(text, path, e.offset, nth);
                self.report(Code::BadTemplate, start..start + e.len, e.message);
                None
            }
            Ok(t) => {
                for (nth, (name, offset)) in t.vars().enumerate() {
                    if BUILTINS.contains(&name)
                        || (self.in_notify && crate::notify::VARIABLES.contains(&name))
                    {
                        continue;
                    }
                    if let Some(reference) = crate::outputs::reference(name) {
                        let start = self.reference_offset(text, path, offset, nth);
                        let span = start..start + name.len() + 3;
                        match reference {
                            Err(message) => {
                                self.report(Code::BadTemplate, span, message.to_owned());
                            }
                            Ok((step, key)) => self.step_uses.push(super::outputs::StepUse {
                                step: step.to_owned(),
                                key: key.to_owned(),
                                site: self.site.clone(),
                                span,
                            }),
                        }
                        continue;
                    }
                    if self.declared.contains(name) {
                        if !self.used.contains(name) {
                            self.used.insert(name.to_owned());
                        }
                        continue;
                    }
                    let start = self.reference_offset(text, path, offset, nth);
                    let declared = &self.declared;
                    let suggestion = self
                        .var_names
                        .get_or_insert_with(|| Names::new(declared.iter()))
                        .closest(name)
                        .map(str::to_owned);
                    let d = self.report(
                        Code::UndeclaredVar,
                        start..start + name.len() + 3,
                        format!("variable `{name}` is used but not declared"),
                    );
                    d.help = Some(match suggestion {
                        Some(c) => {
                            format!("did you mean `${{{c}}}`? Otherwise declare it in `vars`")
                        }
                        None => format!("declare it in `vars`: \"{name}\": ()"),
                    });
                }
                Some(t)
            }
        }
    }

    /// Source offset of the `nth` reference, at `offset` in the parsed string at `path`.
    /// Looked up only when there is something to report: finding a node costs a walk.
    pub(super) fn reference_offset(
        &self,
        text: &str,
        path: &[Step],
        offset: usize,
        nth: usize,
    ) -> usize {
        let span = self.span(path);
        let Some(raw) = self.node(path).and_then(Node::raw) else {
            return span.start;
        };
        // Worked out once per string, not per reference: a long string with many references
        // would otherwise cost its length for each (docs/performance.md).
        let mut cache = self.braces.borrow_mut();
        if cache.as_ref().is_none_or(|(start, _)| *start != raw.start) {
            let raw_text = &self.text[raw.clone()];
            // Escapes shift offsets: then the n-th `${` in the text as written is used instead.
            let offsets = (raw_text != text).then(|| dollar_braces(raw_text));
            *cache = Some((raw.start, offsets));
        }
        match cache.as_ref().map(|(_, offsets)| offsets) {
            Some(Some(offsets)) => offsets.get(nth).map_or(span.start, |p| raw.start + p),
            _ => raw.start + offset,
        }
    }
}

/// Byte offsets of each `${` in raw string text, skipping `$$`.
fn dollar_braces(raw: &str) -> Vec<usize> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            i += 2;
        } else if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            out.push(i);
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}
