//! Rich (boolean) dependencies, rpm ≥ 4.13: `(a or b)`, `(a if b else c)`, `(a with b)`, ...
//!
//! Grammar (as rpm's `rpmrichParse`): a rich dependency is a parenthesised expression of
//! operands joined by one operator; an operand is a simple dependency `name [op evr]` or a
//! nested parenthesised expression. `and`, `or` and `with` may chain (`a and b and c`), but
//! different operators never mix without parentheses. `if` and `unless` take an optional
//! `else`. `with` and `without` are evaluated on a *single* package: `(a with b)` needs one
//! package providing both, `(a without b)` one providing `a` but not `b`.

use crate::dep::{Dep, Op};
use crate::evr::Evr;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Atom {
    Dep(Dep),
    /// One package satisfying every dep.
    With(Vec<Dep>),
    /// One package satisfying the first dep and none of the others.
    Without(Dep, Vec<Dep>),
}

/// A disjunction: satisfied when some `positive` atom is installed, or some `negative` atom
/// is *not* installed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clause {
    pub positive: Vec<Atom>,
    pub negative: Vec<Atom>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rich dependency `{text}`: {message} (at byte {pos})")]
pub struct RichParseError {
    pub text: String,
    pub pos: usize,
    pub message: String,
}

/// Whether `s` is written as a rich dependency (rpm's own test).
pub fn is_rich(s: &str) -> bool {
    s.starts_with('(')
}

pub fn parse_rich(text: &str) -> Result<RichDep, RichParseError> {
    let mut p = Parser { text, tokens: tokenize(text), at: 0 };
    let expr = match p.peek() {
        Some(Tok::Open) => p.group()?,
        _ => return Err(p.error("a rich dependency starts with `(`")),
    };
    if p.at < p.tokens.len() {
        return Err(p.error("unexpected text after the closing `)`"));
    }
    Ok(expr)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Word(&'a str),
}

/// Splits on white space and on parentheses that are not part of a name: `libc.so.6()(64bit)`
/// and `perl(Foo::Bar)` stay single words because their `(` follows name characters.
fn tokenize(text: &str) -> Vec<(usize, Tok<'_>)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            c if c.is_ascii_whitespace() => i += 1,
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
                while i < bytes.len() {
                    match bytes[i] {
                        b'(' => depth += 1,
                        b')' if depth == 0 => break,
                        b')' => depth -= 1,
                        c if c.is_ascii_whitespace() && depth == 0 => break,
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
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.tokens.get(self.at).map(|t| t.1)
    }

    fn error(&self, message: &str) -> RichParseError {
        RichParseError {
            text: self.text.to_string(),
            pos: self.tokens.get(self.at).map(|t| t.0).unwrap_or(self.text.len()),
            message: message.to_string(),
        }
    }

    /// `( operand [op operand ...] )`, the `(` not yet consumed.
    fn group(&mut self) -> Result<RichDep, RichParseError> {
        self.at += 1;
        let first = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Close) => {
                self.at += 1;
                return Ok(first);
            }
            Some(Tok::Word(w)) if OPERATORS.contains(&w) && w != "else" => {
                self.at += 1;
                w
            }
            _ => return Err(self.error("expected and, or, if, unless, with, without or `)`")),
        };
        let second = self.operand()?;
        let expr = match op {
            "and" | "or" | "with" => {
                let mut items = vec![first, second];
                while self.peek() == Some(Tok::Word(op)) {
                    self.at += 1;
                    items.push(self.operand()?);
                }
                match op {
                    "and" => RichDep::And(items),
                    "or" => RichDep::Or(items),
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
                let (a, b) = (Box::new(first), Box::new(second));
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
                        Dep { name: w.to_string(), op: Op::from_symbol(op_text), evr: Some(Evr::parse(evr)) }
                    }
                    _ => Dep { name: w.to_string(), op: None, evr: None },
                };
                Ok(RichDep::Atom(Atom::Dep(dep)))
            }
            Some(Tok::Close) | None => Err(self.error("expected a dependency")),
            Some(Tok::Word(w)) => Err(self.error(&format!("expected a dependency, found `{w}`"))),
        }
    }

    /// `with` operands must each be testable on one package: simple deps or nested `with`.
    fn with(&self, items: Vec<RichDep>) -> Result<RichDep, RichParseError> {
        let mut deps = Vec::new();
        for item in items {
            match item {
                RichDep::Atom(Atom::Dep(d)) => deps.push(d),
                RichDep::Atom(Atom::With(ds)) => deps.extend(ds),
                _ => return Err(self.error("`with` operands must be simple dependencies")),
            }
        }
        Ok(RichDep::Atom(Atom::With(deps)))
    }

    /// `(a without b)` and `(a without (b or c))` (the corpus has the latter).
    fn without(&self, first: RichDep, second: RichDep) -> Result<RichDep, RichParseError> {
        let RichDep::Atom(Atom::Dep(keep)) = first else {
            return Err(self.error("the left side of `without` must be a simple dependency"));
        };
        let simple = |r: RichDep| match r {
            RichDep::Atom(Atom::Dep(d)) => Ok(d),
            _ => Err(self.error("the right side of `without` must be simple dependencies joined by `or`")),
        };
        let excluded = match second {
            RichDep::Or(items) => items.into_iter().map(simple).collect::<Result<_, _>>()?,
            other => vec![simple(other)?],
        };
        Ok(RichDep::Atom(Atom::Without(keep, excluded)))
    }
}

impl RichDep {
    /// The expression as a conjunction of [`Clause`]s (CNF) for a *requirement*:
    /// `A if B` ≡ A ∨ ¬B; `A if B else C` ≡ (A ∨ ¬B) ∧ (C ∨ B); `A unless B` ≡ A ∨ B;
    /// `A unless B else C` ≡ (A ∨ B) ∧ (C ∨ ¬B); negation is pushed inwards through
    /// `and`/`or`. Solvers prefer the positive atoms in the order given.
    pub fn to_cnf_requires(&self) -> Vec<Clause> {
        cnf(self, false)
    }

    /// Every dependency name the expression mentions (rpmdb index tables list operands).
    pub fn leaf_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk_names(&mut out);
        out
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

/// Clauses of `r` (or of `¬r` when `negated`).
fn cnf(r: &RichDep, negated: bool) -> Vec<Clause> {
    match r {
        RichDep::Atom(a) => vec![if negated {
            Clause { positive: vec![], negative: vec![a.clone()] }
        } else {
            Clause { positive: vec![a.clone()], negative: vec![] }
        }],
        // ¬(x ∧ y) = ¬x ∨ ¬y, a disjunction: distribute.
        RichDep::And(xs) if negated => distribute(xs.iter().map(|x| cnf(x, true)).collect()),
        RichDep::And(xs) => xs.iter().flat_map(|x| cnf(x, false)).collect(),
        RichDep::Or(xs) if negated => xs.iter().flat_map(|x| cnf(x, true)).collect(),
        RichDep::Or(xs) => distribute(xs.iter().map(|x| cnf(x, false)).collect()),
        RichDep::If(then, cond, otherwise) => {
            // (then ∨ ¬cond) ∧ (otherwise ∨ cond)
            let mut parts = vec![or2(cnf(then, false), cnf(cond, true))];
            if let Some(o) = otherwise {
                parts.push(or2(cnf(o, false), cnf(cond, false)));
            }
            conjunction(parts, negated)
        }
        RichDep::Unless(then, cond, otherwise) => {
            // (then ∨ cond) ∧ (otherwise ∨ ¬cond)
            let mut parts = vec![or2(cnf(then, false), cnf(cond, false))];
            if let Some(o) = otherwise {
                parts.push(or2(cnf(o, false), cnf(cond, true)));
            }
            conjunction(parts, negated)
        }
    }
}

/// The conjunction of CNF `parts`, or its negation.
fn conjunction(parts: Vec<Vec<Clause>>, negated: bool) -> Vec<Clause> {
    let all: Vec<Clause> = parts.into_iter().flatten().collect();
    if !negated {
        return all;
    }
    // ¬(c1 ∧ c2 ...) = ¬c1 ∨ ¬c2 ...; each ¬ci is a conjunction of single-atom clauses.
    let negated_clauses: Vec<Vec<Clause>> = all
        .iter()
        .map(|c| {
            c.positive
                .iter()
                .map(|a| Clause { positive: vec![], negative: vec![a.clone()] })
                .chain(c.negative.iter().map(|a| Clause { positive: vec![a.clone()], negative: vec![] }))
                .collect()
        })
        .collect();
    distribute(negated_clauses)
}

/// CNF of the disjunction of two CNFs.
fn or2(a: Vec<Clause>, b: Vec<Clause>) -> Vec<Clause> {
    distribute(vec![a, b])
}

/// CNF of the disjunction of several CNFs: one clause per choice of a clause from each.
fn distribute(sets: Vec<Vec<Clause>>) -> Vec<Clause> {
    let mut acc = vec![Clause::default()];
    for set in sets {
        let mut next = Vec::with_capacity(acc.len() * set.len());
        for a in &acc {
            for c in &set {
                let mut merged = a.clone();
                merged.positive.extend(c.positive.iter().cloned());
                merged.negative.extend(c.negative.iter().cloned());
                next.push(merged);
            }
        }
        acc = next;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Dep {
        Dep::parse(s).unwrap()
    }
    fn atom(s: &str) -> RichDep {
        RichDep::Atom(Atom::Dep(dep(s)))
    }
    /// Clauses rendered as `a|b|!c` strings, for compact assertions.
    fn show(text: &str) -> Vec<String> {
        let name = |a: &Atom| match a {
            Atom::Dep(d) => d.to_string(),
            Atom::With(ds) => ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("+"),
            Atom::Without(a, bs) => format!("{a}-{}", bs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("-")),
        };
        parse_rich(text)
            .unwrap()
            .to_cnf_requires()
            .iter()
            .map(|c| {
                c.positive
                    .iter()
                    .map(name)
                    .chain(c.negative.iter().map(|a| format!("!{}", name(a))))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    #[test]
    fn parses_each_operator() {
        assert_eq!(parse_rich("(a or b)").unwrap(), RichDep::Or(vec![atom("a"), atom("b")]));
        assert_eq!(parse_rich("(a and b and c)").unwrap(), RichDep::And(vec![atom("a"), atom("b"), atom("c")]));
        assert_eq!(
            parse_rich("(foo >= 1.0 or bar)").unwrap(),
            RichDep::Or(vec![atom("foo >= 1.0"), atom("bar")])
        );
        assert_eq!(
            parse_rich("(a if b else c)").unwrap(),
            RichDep::If(Box::new(atom("a")), Box::new(atom("b")), Some(Box::new(atom("c"))))
        );
        assert_eq!(parse_rich("(a unless b)").unwrap(), RichDep::Unless(Box::new(atom("a")), Box::new(atom("b")), None));
        assert_eq!(parse_rich("(a with b with c)").unwrap(), RichDep::Atom(Atom::With(vec![dep("a"), dep("b"), dep("c")])));
        assert_eq!(parse_rich("(a without b)").unwrap(), RichDep::Atom(Atom::Without(dep("a"), vec![dep("b")])));
    }

    #[test]
    fn names_with_parentheses_stay_whole() {
        assert_eq!(
            parse_rich("(libc.so.6()(64bit) or perl(Foo::Bar) >= 1.2)").unwrap(),
            RichDep::Or(vec![atom("libc.so.6()(64bit)"), atom("perl(Foo::Bar) >= 1.2")])
        );
    }

    #[test]
    fn corpus_expressions() {
        assert_eq!(show("(media-types or mime-support)"), ["media-types|mime-support"]);
        // debianutils' rich conflict.
        let r = parse_rich("(ifupdown < 0.8.36+nmu1-0 without (ifupdown-ng or ifupdown2 or netscript-2.4))").unwrap();
        assert_eq!(
            r,
            RichDep::Atom(Atom::Without(
                dep("ifupdown < 0.8.36+nmu1-0"),
                vec![dep("ifupdown-ng"), dep("ifupdown2"), dep("netscript-2.4")]
            ))
        );
        assert_eq!(show("(perl-modules < 5.36.0~-0 without perl-modules-5.36)"), ["perl-modules < 5.36.0~-0-perl-modules-5.36"]);
    }

    #[test]
    fn cnf_of_conditionals() {
        assert_eq!(show("(a if b)"), ["a|!b"]);
        assert_eq!(show("(a if b else c)"), ["a|!b", "c|b"]);
        assert_eq!(show("(a unless b)"), ["a|b"]);
        assert_eq!(show("(a unless b else c)"), ["a|b", "c|!b"]);
        assert_eq!(show("(a and (b or c))"), ["a", "b|c"]);
        assert_eq!(show("((a and b) or c)"), ["a|c", "b|c"]);
        // ¬(b and c) = ¬b ∨ ¬c; ¬(b or c) = ¬b ∧ ¬c.
        assert_eq!(show("(a if (b and c))"), ["a|!b|!c"]);
        assert_eq!(show("(a if (b or c))"), ["a|!b", "a|!c"]);
        assert_eq!(show("((a with b) or c)"), ["a+b|c"]);
        // Nested conditional in a condition: ¬(x if y) = ¬x ∧ y.
        assert_eq!(show("(a if (x if y))"), ["a|!x", "a|y"]);
    }

    #[test]
    fn leaf_names_cover_every_operand() {
        let r = parse_rich("((a with b) if c else (d without (e or f)))").unwrap();
        assert_eq!(r.leaf_names(), ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (text, needle) in [
            ("a or b", "starts with `(`"),
            ("(a or b", "expected `)`"),
            ("(a or b and c)", "cannot be mixed"),
            ("(a or)", "expected a dependency"),
            ("(a >= )", "version"),
            ("(a or b) c", "after the closing"),
            ("((a or b) with c)", "`with` operands"),
            ("(a frob b)", "expected and, or"),
        ] {
            let e = parse_rich(text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        assert!(is_rich("(a or b)") && !is_rich("a"));
    }
}
