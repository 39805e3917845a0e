//! The shell patterns of `${V#p}`, `${V%p}` and `${V/p/r}`.
//!
//! BuildKit turns these into Go regular expressions (`*` → `.*` or `.*?`, `?` → `.`, every
//! other character literal) and lets the regexp engine pick a match. Go's engine is
//! leftmost-first, so a backtracking matcher that tries alternatives in the same priority
//! order finds exactly the same match; a memo table keeps it polynomial.

use std::collections::HashMap;

use crate::limits::{MAX_PATTERN_CELLS, MAX_PATTERN_TOKENS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`; like Go's `.`, never matches a newline.
    One,
    /// `*`; `.*` or `.*?` depending on the operator.
    Star,
}

pub(crate) struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::One),
                // `\}` and `\/` only protect the character from ending the `${...}` part; the
                // backslash itself is not part of the pattern.
                '\\' if matches!(chars.peek(), Some('}' | '/')) => {}
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(e)),
                    Some(e) => return Err(format!("invalid escape '\\{e}'")),
                    None => return Err("invalid escape '\\' at end of pattern".into()),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        if toks.len() > MAX_PATTERN_TOKENS {
            return Err(format!(
                "the pattern has {} characters, over strata's limit of {MAX_PATTERN_TOKENS} (MAX_PATTERN_TOKENS)",
                toks.len()
            ));
        }
        Ok(Self { toks })
    }

    fn reversed(&self) -> Self {
        Self {
            toks: self.toks.iter().rev().copied().collect(),
        }
    }
}

struct Matcher<'a> {
    toks: &'a [Tok],
    text: &'a [char],
    greedy: bool,
    memo: HashMap<(usize, usize), Option<usize>>,
}

impl Matcher<'_> {
    /// End of the preferred match of `toks[ti..]` starting at `pos`, if any.
    fn at(&mut self, ti: usize, pos: usize) -> Option<usize> {
        if ti == self.toks.len() {
            return Some(pos);
        }
        if let Some(&r) = self.memo.get(&(ti, pos)) {
            return r;
        }
        let r = match self.toks[ti] {
            Tok::Lit(c) => (self.text.get(pos) == Some(&c))
                .then(|| self.at(ti + 1, pos + 1))
                .flatten(),
            Tok::One => matches!(self.text.get(pos), Some(&c) if c != '\n')
                .then(|| self.at(ti + 1, pos + 1))
                .flatten(),
            Tok::Star => {
                let run = self.text[pos..].iter().take_while(|&&c| c != '\n').count();
                let mut found = None;
                for k in 0..=run {
                    let k = if self.greedy { run - k } else { k };
                    if let Some(end) = self.at(ti + 1, pos + k) {
                        found = Some(end);
                        break;
                    }
                }
                found
            }
        };
        self.memo.insert((ti, pos), r);
        r
    }

    fn find_from(&mut self, from: usize) -> Option<(usize, usize)> {
        (from..=self.text.len()).find_map(|s| self.at(0, s).map(|e| (s, e)))
    }
}

/// The matcher memoises one entry per (pattern token, position) it reaches: refuse the
/// pairs whose table could exceed [`MAX_PATTERN_CELLS`] instead of letting it grow.
fn matcher<'a>(p: &'a Pattern, text: &'a [char], greedy: bool) -> Result<Matcher<'a>, String> {
    let cells = p.toks.len().saturating_mul(text.len() + 1);
    if cells > MAX_PATTERN_CELLS {
        return Err(format!(
            "matching a {}-character pattern against a {}-character value is over strata's limit of {MAX_PATTERN_CELLS} pattern × value cells (MAX_PATTERN_CELLS)",
            p.toks.len(),
            text.len()
        ));
    }
    Ok(Matcher {
        toks: &p.toks,
        text,
        greedy,
        memo: HashMap::new(),
    })
}

/// `${V#p}` (shortest) and `${V##p}` (longest).
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p = Pattern::parse(pattern)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match matcher(&p, &text, greedy)?.at(0, 0) {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${V%p}` (shortest) and `${V%%p}` (longest): the prefix search run on the reversed value
/// with the reversed pattern, which is how BuildKit finds the shortest rightmost match.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p = Pattern::parse(pattern)?.reversed();
    let text: Vec<char> = value.chars().rev().collect();
    let kept = match matcher(&p, &text, greedy)?.at(0, 0) {
        Some(end) => &text[end..],
        None => &text[..],
    };
    Ok(kept.iter().rev().collect())
}

/// `${V/p/r}` and `${V//p/r}`: greedy, unanchored.
pub(crate) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let p = Pattern::parse(pattern)?;
    let text: Vec<char> = value.chars().collect();
    let mut m = matcher(&p, &text, true)?;
    if !all {
        // Go splices the replacement in literally here (no `$` template expansion).
        return Ok(match m.find_from(0) {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(replacement);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        });
    }
    // Go's Regexp.ReplaceAllString, step for step: empty matches right after a match are
    // skipped and the search always advances at least one character.
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((s, e)) = m.find_from(search) else {
            break;
        };
        out.extend(&text[last_end..s]);
        if e > last_end || s == 0 {
            expand_template(&mut out, replacement, &text[s..e]);
        }
        // Every character may be replaced by a long replacement: stop before memory does.
        super::bounded(out.len())?;
        last_end = e;
        search = if search + 1 > e { search + 1 } else { e };
    }
    out.extend(&text[last_end.min(text.len())..]);
    Ok(out)
}

/// Go's `Regexp.Expand` for a pattern without groups: `$0` is the match, any other name is
/// empty, `$$` is a dollar, and a `$` that starts no name stays literal.
fn expand_template(out: &mut String, template: &str, matched: &[char]) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (braced, body) = match rest.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let name_len: usize = body
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .map(char::len_utf8)
            .sum();
        let closed = !braced || body[name_len..].starts_with('}');
        if name_len == 0 || !closed {
            out.push('$');
            continue;
        }
        let name = &body[..name_len];
        if name.chars().all(|c| c.is_ascii_digit()) && name.parse::<u64>() == Ok(0) {
            out.extend(matched);
        }
        rest = &body[name_len + usize::from(braced)..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix_trims_pick_shortest_or_longest() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).unwrap(), "b/c");
        assert_eq!(trim_prefix("*/", "a/b/c", true).unwrap(), "c");
        assert_eq!(trim_suffix("/*", "a/b/c", false).unwrap(), "a/b");
        assert_eq!(trim_suffix("/*", "a/b/c", true).unwrap(), "a");
        assert_eq!(trim_suffix(".tar.?z", "x.tar.gz", false).unwrap(), "x");
        assert_eq!(trim_prefix("nomatch", "value", true).unwrap(), "value");
    }

    #[test]
    fn escapes_make_wildcards_literal() {
        assert_eq!(trim_prefix("a\\*", "a*b", false).unwrap(), "b");
        assert_eq!(trim_prefix("a\\*", "axb", false).unwrap(), "axb");
        assert!(Pattern::parse("a\\x").is_err());
        assert!(Pattern::parse("a\\").is_err());
        // `\}` only protects the brace while the `${...}` is scanned.
        assert_eq!(trim_suffix("\\}", "a}", false).unwrap(), "a");
    }

    #[test]
    fn replacement_first_and_all() {
        assert_eq!(replace("o", "foo boo", "0", false).unwrap(), "f0o boo");
        assert_eq!(replace("o", "foo boo", "0", true).unwrap(), "f00 b00");
        assert_eq!(replace("o*", "foo", "X", true).unwrap(), "fX");
        // An empty value still matches `*` once, as Go's regexp does.
        assert_eq!(replace("*", "", "x", false).unwrap(), "x");
        assert_eq!(replace("*", "", "x", true).unwrap(), "x");
        // The empty match at the end, right after a match, is skipped, as in Go.
        assert_eq!(replace("*", "ab", "-", true).unwrap(), "-");
        assert_eq!(replace("x*", "ab", "-", true).unwrap(), "ab");
    }

    #[test]
    fn replace_all_uses_go_templates() {
        assert_eq!(replace("b", "abc", "[$0]", true).unwrap(), "a[b]c");
        assert_eq!(replace("b", "abc", "$$", true).unwrap(), "a$c");
        assert_eq!(replace("b", "abc", "$x", true).unwrap(), "ac");
        assert_eq!(replace("b", "abc", "$-", true).unwrap(), "a$-c");
        assert_eq!(replace("b", "abc", "[$0]", false).unwrap(), "a[$0]c");
    }

    #[test]
    fn star_does_not_cross_newlines() {
        assert_eq!(trim_prefix("*x", "a\nx", true).unwrap(), "a\nx");
    }
}
