//! `${name}` interpolation, parsed once at validation time.
//!
//! A [`Template`] is the parsed form of any workflow string. Validation checks every variable
//! it names against the declared vars (the seed's outage was an undefined variable); at run time
//! [`Template::render`] fills values in, and [`Template::render_redacted`] writes `***` for
//! secrets so that the text can be stored or printed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Built-in variables available in every workflow.
pub const BUILTINS: &[&str] = &["run.id", "run.env", "run.initiator"];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// A `${name}` reference; `offset` is its byte offset inside the original string, for
    /// diagnostics.
    Var {
        /// The variable's name.
        name: String,
        /// Byte offset of the `$` in the original string.
        offset: usize,
    },
}

/// A parsed string with `${var}` references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// A malformed reference: `${` without a closing `}`, or an empty or invalid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Byte offset of the `$` in the string.
    pub offset: usize,
    /// Length of the bad reference in bytes.
    pub len: usize,
    /// What is wrong.
    pub message: String,
}

/// A variable name the template needs that the lookup did not supply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable ${{{0}}} has no value")]
pub struct MissingVar(pub String);

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl Template {
    /// Parses `text`. `$$` is a literal `$`; a `$` not followed by `{` is literal too.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut pos = 0;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let offset = pos + i;
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                pos = offset + 2;
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let Some(close) = tail.find('}') else {
                    return Err(TemplateError {
                        offset,
                        len: text.len() - offset,
                        message: "`${` is never closed with `}`".to_owned(),
                    });
                };
                let name = &tail[..close];
                if !valid_name(name) {
                    return Err(TemplateError {
                        offset,
                        len: close + 3,
                        message: format!("invalid variable name {name:?}"),
                    });
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Var { name: name.to_owned(), offset });
                pos = offset + 2 + close + 1;
                rest = &tail[close + 1..];
            } else {
                literal.push('$');
                pos = offset + 1;
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { source: text.to_owned(), parts })
    }

    /// The string as written in the workflow file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed pieces.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The names referenced, with their byte offsets, in order.
    pub fn vars(&self) -> impl Iterator<Item = (&str, usize)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, offset } => Some((name.as_str(), *offset)),
            Part::Literal(_) => None,
        })
    }

    /// Fills in every reference from `lookup`.
    pub fn render<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, MissingVar> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Var { name, .. } => {
                    out.push_str(lookup(name).ok_or_else(|| MissingVar(name.clone()))?)
                }
            }
        }
        Ok(out)
    }

    /// Like [`Template::render`], but references for which `is_secret` holds become `***`.
    pub fn render_redacted<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a str>,
        is_secret: impl Fn(&str) -> bool,
    ) -> Result<String, MissingVar> {
        self.render(|name| if is_secret(name) { Some("***") } else { lookup(name) })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_with_offsets() {
        let t = Template::parse("curl ${url}/x?v=${version}").expect("valid");
        let vars: Vec<_> = t.vars().collect();
        assert_eq!(vars, vec![("url", 5), ("version", 16)]);
        let out = t
            .render(|n| match n {
                "url" => Some("http://h"),
                "version" => Some("1.2"),
                _ => None,
            })
            .expect("all set");
        assert_eq!(out, "curl http://h/x?v=1.2");
    }

    #[test]
    fn dollar_escapes_and_bare_dollars_are_literal() {
        let t = Template::parse("cost $5 and $${not_a_var}").expect("valid");
        assert_eq!(t.vars().count(), 0);
        assert_eq!(t.render(|_| None).expect("no vars"), "cost $5 and ${not_a_var}");
    }

    #[test]
    fn builtins_parse() {
        let t = Template::parse("${run.id}").expect("valid");
        assert_eq!(t.vars().next(), Some(("run.id", 0)));
    }

    #[test]
    fn malformed_references_are_errors_at_their_offset() {
        let e = Template::parse("ab ${open").expect_err("unclosed");
        assert_eq!(e.offset, 3);
        let e = Template::parse("x${}").expect_err("empty");
        assert_eq!((e.offset, e.len), (1, 3));
        assert!(Template::parse("${a b}").is_err());
    }

    #[test]
    fn redaction_replaces_secrets() {
        let t = Template::parse("Bearer ${token} for ${user}").expect("valid");
        let out = t
            .render_redacted(|n| Some(if n == "token" { "s3cr3t" } else { "bob" }), |n| n == "token")
            .expect("all set");
        assert_eq!(out, "Bearer *** for bob");
    }

    #[test]
    fn missing_value_is_named() {
        let t = Template::parse("${a}").expect("valid");
        assert_eq!(t.render(|_| None), Err(MissingVar("a".into())));
    }
}
