//! Rich (boolean) dependencies, rpm ≥ 4.13: `(a or b)`, `(a if b else c)`, `(a with b)`, ...
//!
//! Grammar (as rpm 4.18's `rpmrichParse`): a rich dependency is a parenthesised expression
//! of operands joined by one operator; an operand is a simple dependency `name [op evr]` or
//! a nested parenthesised expression. `and`, `or` and `with` may chain (`a and b and c`),
//! but different operators never mix without parentheses. `if` and `unless` take an
//! optional `else`. White space and commas separate tokens, as in rpm.
//!
//! Semantics, for a requirement:
//! - `(a and b)`: both; `(a or b)`: at least one;
//! - `(a if b)`: `a` when `b` is installed; `(a if b else c)`: otherwise `c`;
//! - `(a unless b)`: `a` when `b` is not installed; `(a unless b else c)`: otherwise `c`;
//! - `(a with b)`: one *single* package satisfies both; `(a without b)`: one package
//!   satisfies `a` and not `b`. These two act on sets of packages, where `or` is a union,
//!   so `(a with (b or c))` is accepted and means `((a with b) or (a with c))`.
//!
//! The solver does not walk this tree: it takes [`RichDep::to_cnf_requires`].

mod cnf;

pub use cnf::{Clause, CnfTooLarge, DEFAULT_CNF_LIMIT};

use crate::dep::{Dep, Op};
use crate::evr::Evr;
use std::fmt;

/// A parsed rich dependency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RichDep {
    Atom(Atom),
    And(Vec<RichDep>),
    Or(Vec<RichDep>),
    /// `(then if cond [else otherwise])`
    If(Box<RichDep>, Box<RichDep>, Option<Box<RichDep>>),
    /// `(then unless cond [else otherwise])`
    Unless(Box<RichDep>, Box<RichDep>, Option<Box<RichDep>>),
}

/// What one package either is or is not: the unit a solver can test.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom {
    Dep(Dep),
    /// One package satisfying every dep (never fewer than two).
    With(Vec<Dep>),
    /// One package satisfying the first dep and none of the others.
    Without(Dep, Vec<Dep>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rich dependency `{text}`: {message} (at byte {pos})")]
pub struct RichParseError {
    pub text: String,
    /// Byte offset into `text` of the token where parsing failed.
    pub pos: usize,
    pub message: String,
}

/// Whether `s` is written as a rich dependency (rpm's own test: a leading `(`).
pub fn is_rich(s: &str) -> bool {
    s.starts_with('(')
}

/// Parses a rich dependency such as `(foo >= 1.0 or (bar if baz))`.
pub fn parse_rich(text: &str) -> Result<RichDep, RichParseError> {
    let mut p = Parser {
        text,
        tokens: tokenize(text),
        at: 0,
        depth: 0,
    };
    let expr = match p.peek() {
        Some(Tok::Open) => p.group()?,
        _ => return Err(p.error("a rich dependency starts with `(`")),
    };
    if p.at < p.tokens.len() {
        return Err(p.error("unexpected text after the closing `)`"));
    }
    Ok(expr)
}

/// Nesting deeper than this is rejected rather than risking the stack on hostile
/// metadata; real dependencies nest two or three levels.
const MAX_DEPTH: usize = 64;

/// `with`/`without` over `or` operands multiplies out; beyond this many single-package
/// tests the expression is rejected (real ones have a handful).
const MAX_SET_TERMS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Word(&'a str),
}

/// Splits like rpm's `SKIPWHITE`/`SKIPNONWHITEX`: white space and `,` separate; a `)` ends
/// a word unless it closes a `(` opened inside that word, so `libc.so.6()(64bit)` and
/// `perl(Foo::Bar)` stay single words.
fn tokenize(text: &str) -> Vec<(usize, Tok<'_>)> {
    let bytes = text.as_bytes();
    let is_space = |c: u8| c.is_ascii_whitespace() || c == b',';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            c if is_space(c) => i += 1,
            b'(' => {
                out.push((i, Tok::Open));
                i += 1;
            }
            b')' => {
                out.push((i, Tok::Close));
                i += 1;
            }
            _ => {
                let start = i;
                let mut depth = 0usize;
                while i < bytes.len() && !is_space(bytes[i]) {
                    match bytes[i] {
                        b'(' => depth += 1,
                        b')' if depth == 0 => break,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                out.push((start, Tok::Word(&text[start..i])));
            }
        }
    }
    out
}

const OPERATORS: [&str; 7] = ["and", "or", "if", "unless", "else", "with", "without"];

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Tok<'a>)>,
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.tokens.get(self.at).map(|t| t.1)
    }

    /// Byte offset of the next token (the end of the text when there is none).
    fn pos(&self) -> usize {
        self.tokens
            .get(self.at)
            .map(|t| t.0)
            .unwrap_or(self.text.len())
    }

    fn error(&self, message: &str) -> RichParseError {
        self.error_at(self.pos(), message)
    }

    fn error_at(&self, pos: usize, message: &str) -> RichParseError {
        RichParseError {
            text: self.text.to_string(),
            pos,
            message: message.to_string(),
        }
    }

    /// `( operand [op operand ...] )`, the `(` not yet consumed.
    fn group(&mut self) -> Result<RichDep, RichParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.depth += 1;
        let result = self.group_body();
        self.depth -= 1;
        result
    }

    fn group_body(&mut self) -> Result<RichDep, RichParseError> {
        self.at += 1;
        let first = (self.pos(), self.operand()?);
        let op = match self.peek() {
            Some(Tok::Close) => {
                self.at += 1;
                return Ok(first.1);
            }
            Some(Tok::Word(w)) if OPERATORS.contains(&w) && w != "else" => {
                self.at += 1;
                w
            }
            None => return Err(self.error("expected `)`")),
            _ => return Err(self.error("expected and, or, if, unless, with, without or `)`")),
        };
        let second = (self.pos(), self.operand()?);
        let expr = match op {
            "and" | "or" | "with" => {
                let mut items = vec![first, second];
                while self.peek() == Some(Tok::Word(op)) {
                    self.at += 1;
                    items.push((self.pos(), self.operand()?));
                }
                match op {
                    "and" => RichDep::And(items.into_iter().map(|i| i.1).collect()),
                    "or" => RichDep::Or(items.into_iter().map(|i| i.1).collect()),
                    _ => self.with(items)?,
                }
            }
            "without" => self.without(first, second)?,
            _ => {
                let otherwise = if self.peek() == Some(Tok::Word("else")) {
                    self.at += 1;
                    Some(Box::new(self.operand()?))
                } else {
                    None
                };
                let (a, b) = (Box::new(first.1), Box::new(second.1));
                if op == "if" {
                    RichDep::If(a, b, otherwise)
                } else {
                    RichDep::Unless(a, b, otherwise)
                }
            }
        };
        match self.peek() {
            Some(Tok::Close) => {
                self.at += 1;
                Ok(expr)
            }
            Some(Tok::Word(w)) if OPERATORS.contains(&w) => Err(self.error(&format!(
                "`{op}` and `{w}` cannot be mixed without parentheses"
            ))),
            _ => Err(self.error("expected `)`")),
        }
    }

    fn operand(&mut self) -> Result<RichDep, RichParseError> {
        match self.peek() {
            Some(Tok::Open) => self.group(),
            Some(Tok::Word(w)) if !OPERATORS.contains(&w) && Op::from_symbol(w).is_none() => {
                self.at += 1;
                let dep = match self.peek() {
                    Some(Tok::Word(op_text)) if Op::from_symbol(op_text).is_some() => {
                        self.at += 1;
                        let Some(Tok::Word(evr)) = self.peek() else {
                            return Err(self.error("expected a version after the operator"));
                        };
                        self.at += 1;
                        Dep {
                            name: w.to_string(),
                            op: Op::from_symbol(op_text),
                            evr: Some(Evr::parse(evr)),
                        }
                    }
                    _ => Dep {
                        name: w.to_string(),
                        op: None,
                        evr: None,
                    },
                };
                Ok(RichDep::Atom(Atom::Dep(dep)))
            }
            Some(Tok::Close) | None => Err(self.error("expected a dependency")),
            Some(Tok::Word(w)) => Err(self.error(&format!("expected a dependency, found `{w}`"))),
        }
    }

    /// `a with b with ...`: the intersection of the operands' package sets, multiplied out
    /// over any `or` inside them.
    fn with(&self, items: Vec<(usize, RichDep)>) -> Result<RichDep, RichParseError> {
        let mut terms: Vec<Vec<Dep>> = vec![Vec::new()];
        for (pos, item) in items {
            let alternatives = set_terms(item).map_err(|m| self.error_at(pos, m))?;
            if terms.len().saturating_mul(alternatives.len()) > MAX_SET_TERMS {
                return Err(self.error_at(pos, "`with` expression too large"));
            }
            terms = terms
                .iter()
                .flat_map(|t| {
                    alternatives
                        .iter()
                        .map(move |a| t.iter().chain(a).cloned().collect())
                })
                .collect();
        }
        Ok(union(terms.into_iter().map(Atom::With).collect()))
    }

    /// `a without b`: the packages of `a` less those of `b`. Both sides may be unions
    /// (`(a without (b or c))` is in the corpus); an intersection on either side has no
    /// [`Atom`] form and is rejected.
    fn without(
        &self,
        first: (usize, RichDep),
        second: (usize, RichDep),
    ) -> Result<RichDep, RichParseError> {
        let single =
            |(pos, operand): (usize, RichDep), side: &str| -> Result<Vec<Dep>, RichParseError> {
                set_terms(operand)
                    .map_err(|m| self.error_at(pos, m))?
                    .into_iter()
                    .map(|mut t| match t.len() {
                        1 => Ok(t.remove(0)),
                        _ => Err(self.error_at(
                            pos,
                            &format!("a `with` on the {side} of `without` is not supported"),
                        )),
                    })
                    .collect()
            };
        let kept = single(first, "left")?;
        let excluded = single(second, "right")?;
        Ok(union(
            kept.into_iter()
                .map(|k| Atom::Without(k, excluded.clone()))
                .collect(),
        ))
    }
}

/// A `with`/`without` operand as a union of single-package tests, each the list of deps
/// one package must satisfy together.
fn set_terms(r: RichDep) -> Result<Vec<Vec<Dep>>, &'static str> {
    match r {
        RichDep::Atom(Atom::Dep(d)) => Ok(vec![vec![d]]),
        RichDep::Atom(Atom::With(ds)) => Ok(vec![ds]),
        RichDep::Or(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(set_terms(item)?);
            }
            Ok(out)
        }
        RichDep::Atom(Atom::Without(..)) => {
            Err("a `without` inside `with`/`without` is not supported")
        }
        // rpm: "Illegal ops in with/without".
        RichDep::And(_) | RichDep::If(..) | RichDep::Unless(..) => {
            Err("`with`/`without` operands may only use `or`, `with` and `without`")
        }
    }
}

fn union(mut atoms: Vec<Atom>) -> RichDep {
    if atoms.len() == 1 {
        RichDep::Atom(atoms.remove(0))
    } else {
        RichDep::Or(atoms.into_iter().map(RichDep::Atom).collect())
    }
}

impl RichDep {
    /// Every dependency name the expression mentions, in order (rpmdb index tables list
    /// operands).
    pub fn leaf_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk_names(&mut out);
        out
    }

    /// Whether the expression contains `if` or `unless`: then some atoms are conditions
    /// that must not be installed just to satisfy it.
    pub fn has_conditionals(&self) -> bool {
        match self {
            RichDep::Atom(_) => false,
            RichDep::And(xs) | RichDep::Or(xs) => xs.iter().any(RichDep::has_conditionals),
            RichDep::If(..) | RichDep::Unless(..) => true,
        }
    }

    fn walk_names<'s>(&'s self, out: &mut Vec<&'s str>) {
        match self {
            RichDep::Atom(Atom::Dep(d)) => out.push(&d.name),
            RichDep::Atom(Atom::With(ds)) => out.extend(ds.iter().map(|d| d.name.as_str())),
            RichDep::Atom(Atom::Without(a, bs)) => {
                out.push(&a.name);
                out.extend(bs.iter().map(|d| d.name.as_str()));
            }
            RichDep::And(xs) | RichDep::Or(xs) => xs.iter().for_each(|x| x.walk_names(out)),
            RichDep::If(a, b, c) | RichDep::Unless(a, b, c) => {
                a.walk_names(out);
                b.walk_names(out);
                if let Some(c) = c {
                    c.walk_names(out);
                }
            }
        }
    }
}

/// rpm syntax; parsing the output gives back an equal value.
impl fmt::Display for RichDep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, xs: &[RichDep], op: &str| {
            f.write_str("(")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(")")
        };
        match self {
            RichDep::Atom(a) => write!(f, "{a}"),
            RichDep::And(xs) => join(f, xs, "and"),
            RichDep::Or(xs) => join(f, xs, "or"),
            RichDep::If(a, b, c) | RichDep::Unless(a, b, c) => {
                let op = if matches!(self, RichDep::If(..)) {
                    "if"
                } else {
                    "unless"
                };
                write!(f, "({a} {op} {b}")?;
                if let Some(c) = c {
                    write!(f, " else {c}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A bare dep prints as itself; `with`/`without` print parenthesised.
impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Dep(d) => write!(f, "{d}"),
            Atom::With(ds) => {
                f.write_str("(")?;
                for (i, d) in ds.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" with ")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str(")")
            }
            Atom::Without(a, bs) => {
                write!(f, "({a} without ")?;
                if let [b] = bs.as_slice() {
                    write!(f, "{b})")
                } else {
                    f.write_str("(")?;
                    for (i, b) in bs.iter().enumerate() {
                        if i > 0 {
                            f.write_str(" or ")?;
                        }
                        write!(f, "{b}")?;
                    }
                    f.write_str("))")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
