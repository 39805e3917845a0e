//! The names a rich dependency contributes to an rpmdb index table.
//!
//! rpm indexes a rich dependency under its full text and under each operand name
//! (`updateRichDep` in `lib/rpmdb.c`): operands of `if`/`unless` conditions are
//! indexed as `!name`, an `else` branch re-adds the condition's names un-negated, the
//! list is sorted and de-duplicated, and `rpmlib(...)` names are skipped. When rpm's
//! parser rejects the expression only the full text is indexed, so this walker follows
//! rpm's grammar and its rejections (`rpmrichParse`), not a looser one.

/// Operators of rich dependencies (`rpmrichOp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Single,
    And,
    Or,
    If,
    Unless,
    Else,
    With,
    Without,
}

struct Walker<'a> {
    text: &'a [u8],
    at: usize,
    /// Collected names, each prefixed with `' '` (positive) or `'!'` (negated). Bytes,
    /// not `String`: header strings are C strings of unspecified encoding.
    names: Vec<Vec<u8>>,
    neg: bool,
    /// Nesting depth: bounded so hostile input cannot exhaust the stack.
    depth: usize,
}

/// Deeper nesting than any real package uses; beyond it the operands are not indexed.
const MAX_DEPTH: usize = 64;

fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// Index keys derived from a rich dependency's operands, in the order rpm inserts them;
/// empty when `text` is not a rich dependency rpm can parse.
pub fn operand_keys(text: &[u8]) -> Vec<Vec<u8>> {
    let mut w = Walker {
        text,
        at: 0,
        names: Vec::new(),
        neg: false,
        depth: 0,
    };
    if w.expr().is_none() {
        return Vec::new();
    }
    // argvSort compares the prefixed strings bytewise (strcmp), so `' '` names sort
    // before `'!'` names.
    let mut names = w.names;
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| match n.strip_prefix(b" ") {
            Some(plain) => plain.to_vec(),
            None => n,
        })
        .collect()
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_white(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.at += 1;
        }
    }

    /// rpm's `SKIPNONWHITEX`: a token ends at whitespace, `,`, or a `)` that closes no
    /// `(` opened inside the token (so `perl(Foo::Bar)` stays one name).
    fn token(&mut self) -> &[u8] {
        let start = self.at;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            if is_space(b) || b == b',' {
                break;
            }
            if b == b')' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            if b == b'(' {
                depth += 1;
            }
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    /// One parenthesised expression. Returns whether it used only with/without (or no
    /// operator), which decides whether it may appear inside a with/without group.
    fn expr(&mut self) -> Option<bool> {
        let level_start = self.names.len();
        let mut cond_start = level_start;
        if self.peek() != Some(b'(') || self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        self.at += 1;
        let mut first = Op::Single;
        let mut chain: Option<Op> = None;
        let mut last = Op::Single;
        let mut nested_not_with = false;
        loop {
            self.skip_white();
            match self.peek() {
                None | Some(b')') => return None, // empty expression / missing operand
                Some(b'(') => {
                    if !self.expr()? {
                        nested_not_with = true;
                    }
                }
                Some(_) => self.simple()?,
            }
            self.skip_white();
            match self.peek() {
                None => return None, // unterminated
                Some(b')') => break,
                Some(_) => {}
            }
            let op = self.op()?;
            if first == Op::Single {
                first = op;
            }
            if op == Op::Else && matches!(chain, Some(Op::If | Op::Unless)) {
                chain = None;
            }
            if let Some(c) = chain {
                if c != op || !matches!(op, Op::And | Op::Or | Op::With) {
                    return None; // rpm: cannot chain different ops / only and/or/with
                }
            }
            match op {
                Op::If | Op::Unless => {
                    cond_start = self.names.len();
                    self.neg = !self.neg;
                }
                Op::Else => {
                    let flipped: Vec<Vec<u8>> = self.names[cond_start..]
                        .iter()
                        .map(|n| {
                            let mut f = n.clone();
                            f[0] = if n[0] == b'!' { b' ' } else { b'!' };
                            f
                        })
                        .collect();
                    self.names.extend(flipped);
                    self.neg = !self.neg;
                }
                _ => {}
            }
            chain = Some(op);
            last = op;
        }
        self.at += 1; // the closing ')'
        self.depth -= 1;
        if matches!(last, Op::If | Op::Unless) {
            self.neg = !self.neg;
        }
        let only_with = matches!(first, Op::Single | Op::With | Op::Without);
        if nested_not_with && matches!(first, Op::With | Op::Without) {
            return None; // rpm: illegal ops in with/without
        }
        Some(only_with)
    }

    /// `name [op version]`.
    fn simple(&mut self) -> Option<()> {
        let name = self.token().to_vec();
        if name.is_empty() {
            return None;
        }
        let save = self.at;
        self.skip_white();
        let op_start = self.at;
        let op = self.token();
        if matches!(
            op,
            b"<" | b">" | b"=" | b"<=" | b"=<" | b">=" | b"=>" | b"=="
        ) {
            self.skip_white();
            if self.token().is_empty() {
                return None; // version required
            }
        } else {
            // Not a comparison: the token belongs to the enclosing expression.
            self.at = if op.is_empty() { save } else { op_start };
        }
        if !name.starts_with(b"rpmlib(") || name.len() <= 7 {
            let mut key = vec![if self.neg { b'!' } else { b' ' }];
            key.extend_from_slice(&name);
            self.names.push(key);
        }
        Some(())
    }

    fn op(&mut self) -> Option<Op> {
        let start = self.at;
        // Like rpm, an operator word ends only at whitespace or `)`: `or(b)` is no `or`.
        while self.peek().is_some_and(|b| !is_space(b) && b != b')') {
            self.at += 1;
        }
        Some(match &self.text[start..self.at] {
            b"and" => Op::And,
            b"or" => Op::Or,
            b"if" => Op::If,
            b"unless" => Op::Unless,
            b"else" => Op::Else,
            b"with" => Op::With,
            b"without" => Op::Without,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    fn operand_keys(text: &str) -> Vec<String> {
        super::operand_keys(text.as_bytes())
            .into_iter()
            .map(|k| String::from_utf8(k).unwrap())
            .collect()
    }

    #[test]
    fn matches_rpm_4_18_index_rows() {
        // Rows observed in rpmdb.sqlite after `rpm -i --justdb` (Debian rpm 4.18).
        assert_eq!(operand_keys("(foo or bar)"), vec!["bar", "foo"]);
        assert_eq!(
            operand_keys("((x1 and x2) if cond1 else x3)"),
            vec!["cond1", "x1", "x2", "x3", "!cond1"]
        );
        assert_eq!(
            operand_keys("(u1 unless u2 else u3)"),
            vec!["u1", "u2", "u3", "!u2"]
        );
        assert_eq!(operand_keys("(c1 with c2)"), vec!["c1", "c2"]);
        assert_eq!(operand_keys("(alpha and gamma)"), vec!["alpha", "gamma"]);
    }

    #[test]
    fn versions_parens_in_names_and_duplicates() {
        assert_eq!(
            operand_keys("(perl(Foo::Bar) >= 1.0 or foo < 2 or foo)"),
            vec!["foo", "perl(Foo::Bar)"]
        );
        assert_eq!(operand_keys("(a if b)"), vec!["a", "!b"]);
        // rpmlib() operands are never indexed.
        assert_eq!(operand_keys("(rpmlib(X) or y)"), vec!["y"]);
        // A name used both plainly and as a condition appears in both forms.
        assert_eq!(operand_keys("(a if a)"), vec!["a", "!a"]);
        // Negation ends with the `if` group: `c` is positive again.
        assert_eq!(operand_keys("((a if b) and c)"), vec!["a", "c", "!b"]);
    }

    #[test]
    fn rejects_what_rpm_rejects() {
        for bad in [
            "",
            "foo",
            "()",
            "(a or)",
            "(a and b or c)",
            "(a if b if c)",
            "(a frob b)",
            "(a >=)",
            "(a or b",
            "((a or b) with c)",
            "(a or(b))",
        ] {
            assert_eq!(operand_keys(bad), Vec::<String>::new(), "{bad:?}");
        }
        // Absurd nesting is refused rather than recursed into.
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(operand_keys(&deep).is_empty());
        // Chained and/or/with are fine; with inside with is fine.
        assert_eq!(operand_keys("(a and b and c)"), vec!["a", "b", "c"]);
        assert_eq!(operand_keys("((a with b) with c)"), vec!["a", "b", "c"]);
    }
}
