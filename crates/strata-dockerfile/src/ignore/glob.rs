//! One `.dockerignore` pattern, matched the way moby's patternmatcher does.
//!
//! moby classifies a pattern before matching: no wildcard at all is an exact comparison,
//! `prefix**` a prefix test, `**suffix` (nothing special after) a suffix test, anything else a
//! regular expression where `*` is `[^/]*`, `?` is `[^/]`, `**/` is `(.*/)?` and a final `**`
//! is `.*`. The three fast paths are kept because they are not quite the regular expression
//! (`**foo` matches `xfoo` as a suffix, but not as `(.*/)?foo`). Character classes follow Go's
//! `filepath.Match`, whose syntax moby checks every pattern against.

use crate::limits::MAX_PATTERN_TOKENS;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `**` followed by more pattern: nothing, or anything ending in `/`.
    Dirs,
    /// `**` at the end: anything.
    Rest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    kind: Kind,
    /// The characters every match starts with (up to the first wildcard or escape).
    literal_prefix: String,
}

impl Glob {
    /// Compiles a cleaned pattern; malformed character classes and a trailing `\` are errors,
    /// as `filepath.Match` reports them.
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        #[derive(PartialEq)]
        enum Mt {
            Exact,
            Prefix,
            Suffix,
            Regex,
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        // moby's match type, updated token by token exactly as its compile loop does.
        let mut mt = Mt::Exact;
        let mut i = 0;
        while i < chars.len() {
            let first = toks.is_empty();
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        toks.push(Tok::Rest);
                        mt = if mt == Mt::Exact {
                            Mt::Prefix
                        } else {
                            Mt::Regex
                        };
                    } else {
                        toks.push(Tok::Dirs);
                        mt = Mt::Regex;
                    }
                    if first {
                        mt = Mt::Suffix;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    mt = Mt::Regex;
                }
                '?' => {
                    toks.push(Tok::One);
                    mt = Mt::Regex;
                }
                '\\' => match chars.get(i) {
                    Some(&e) => {
                        toks.push(Tok::Lit(e));
                        i += 1;
                        mt = Mt::Regex;
                    }
                    None => return Err("trailing \\ in pattern".into()),
                },
                '[' => {
                    let (tok, next) = class(&chars, i)?;
                    toks.push(tok);
                    i = next;
                    mt = Mt::Regex;
                }
                ']' => {
                    toks.push(Tok::Lit(']'));
                    mt = Mt::Regex;
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        let literal_prefix: String = pattern
            .chars()
            .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\'))
            .collect();
        let kind = match mt {
            Mt::Exact => Kind::Exact(pattern.to_string()),
            Mt::Prefix => Kind::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_string()),
            Mt::Suffix => Kind::Suffix(pattern.strip_prefix("**").unwrap_or(pattern).to_string()),
            // Matching costs tokens × path length per path: 60,000 `?` took minutes.
            Mt::Regex if toks.len() > MAX_PATTERN_TOKENS => {
                return Err(format!(
                    "a wildcard pattern of {} characters is over strata's limit of {MAX_PATTERN_TOKENS} (MAX_PATTERN_TOKENS)",
                    toks.len()
                ))
            }
            Mt::Regex => Kind::Glob(toks),
        };
        Ok(Self {
            kind,
            literal_prefix,
        })
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(p) => path == p,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => path.ends_with(s.as_str()) || s.strip_prefix('/') == Some(path),
            Kind::Glob(toks) => {
                let text: Vec<char> = path.chars().collect();
                glob_matches(toks, &text)
            }
        }
    }

    /// Whether some path below `dir/` could match: sound (never says no wrongly) because a
    /// match must start with the pattern's literal prefix.
    pub(crate) fn may_match_below(&self, dir: &str) -> bool {
        let dir = format!("{dir}/");
        self.literal_prefix.starts_with(&dir) || dir.starts_with(&self.literal_prefix)
    }
}

/// A `[...]` class starting after the `[` at `i`; returns it and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Result<(Tok, usize), String> {
    let bad = || "malformed character class in pattern".to_string();
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err(bad()),
            Some(']') if !ranges.is_empty() => return Ok((Tok::Class { negated, ranges }, i + 1)),
            _ => {}
        }
        let (lo, next) = class_char(chars, i).ok_or_else(bad)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, next) = class_char(chars, i + 1).ok_or_else(bad)?;
            // filepath.Match accepts a reversed range, but patternmatcher compiles the class
            // into a Go regexp, which refuses it, and the build fails: so must we (matching
            // nothing instead would silently send files the user meant to keep out).
            if h < lo {
                return Err(format!("invalid character class range {lo}-{h}"));
            }
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

/// Go's `getEsc`: one class character, `\` escaping; a bare `-` or `]` is malformed.
fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match chars.get(i)? {
        '-' | ']' => None,
        '\\' => chars.get(i + 1).map(|&c| (c, i + 2)),
        &c => Some((c, i + 1)),
    }
}

/// Whether `toks` match all of `text`: dynamic programming over (token, position) from the
/// end, one row per token, so time is O(tokens × length) and nothing recurses. (A memoized
/// backtracking matcher that let `*` and `**/` try every split took O(tokens × length²) per
/// call, and `.dockerignore` checks every parent of a path: a 160-byte `**/a**/a…` line took
/// seconds against one 320-byte path.)
fn glob_matches(toks: &[Tok], text: &[char]) -> bool {
    let n = text.len();
    // next[pos]: whether the tokens after the current one match text[pos..].
    let mut next = vec![false; n + 1];
    next[n] = true;
    let mut cur = vec![false; n + 1];
    for tok in toks.iter().rev() {
        // Dirs: some `/` at or after pos is followed by a match of the rest.
        let mut slash_then_rest = false;
        for pos in (0..=n).rev() {
            let here = text.get(pos).copied();
            let one = |ok: bool| ok && next[pos + 1];
            cur[pos] = match tok {
                Tok::Lit(c) => one(here == Some(*c)),
                Tok::One => one(matches!(here, Some(c) if c != '/')),
                Tok::Class { negated, ranges } => one(
                    matches!(here, Some(c) if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated),
                ),
                // Nothing, or one character but `/` and the star again.
                Tok::Star => next[pos] || (matches!(here, Some(c) if c != '/') && cur[pos + 1]),
                Tok::Rest => true,
                Tok::Dirs => {
                    if here == Some('/') && next[pos + 1] {
                        slash_then_rest = true;
                    }
                    next[pos] || slash_then_rest
                }
            };
        }
        std::mem::swap(&mut cur, &mut next);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Glob::new(p).unwrap().matches(path)
    }

    #[test]
    fn fast_paths_like_moby() {
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foo/bar"));
        assert!(m("foo/**", "foo/bar/baz"));
        assert!(!m("foo/**", "foo"));
        assert!(m("**/foo", "foo"));
        assert!(m("**/foo", "a/b/foo"));
        assert!(!m("**/foo", "a/xfoo"));
        // The suffix fast path is a plain suffix test.
        assert!(m("**foo", "a/xfoo"));
        assert!(m("**", "anything/at/all"));
        assert!(m("a.b", "a.b"));
        // An escape after a leading `**` leaves the fast path, as in moby.
        assert!(m("**/\\*", "a/*"));
        assert!(!m("**/\\*", "a/x*"));
        assert!(!m("a.b", "axb"));
    }

    #[test]
    fn wildcards_stop_at_slashes() {
        assert!(m("*.go", "main.go"));
        assert!(!m("*.go", "cmd/main.go"));
        assert!(m("**/*.go", "cmd/sub/main.go"));
        assert!(m("**/*.go", "main.go"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/xb"));
        assert!(m("a/?", "a/x"));
        assert!(!m("a?b", "a/b"));
        assert!(m("dir/*/**", "dir/x/y/z"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[a-c]x", "dx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(!m("[^a-c]x", "ax"));
        assert!(m("[\\]]", "]"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        for bad in [
            "[",
            "[a",
            "[]",
            "[a-]",
            "[-a]",
            "x\\",
            "[Local-Only]",
            "[z-a]",
        ] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn below_checks_are_conservative() {
        let g = Glob::new("keep/this/*.txt").unwrap();
        assert!(g.may_match_below("keep"));
        assert!(g.may_match_below("keep/this"));
        assert!(!g.may_match_below("other"));
        assert!(Glob::new("**/x").unwrap().may_match_below("any"));
        assert!(Glob::new("ke*").unwrap().may_match_below("keep"));
    }

    /// Found probing fuzz/dockerfile: each `**/` or `*` tried every split of the rest.
    #[test]
    fn nested_wildcards_match_in_polynomial_time() {
        let started = std::time::Instant::now();
        let p = "**/a".repeat(200) + "b";
        let path = "a/".repeat(400);
        assert!(!m(&p, &path));
        assert!(m(&"**/a".repeat(200), &("a/".repeat(399) + "a")));
        assert!(!m(&("*a".repeat(200) + "b"), &"a".repeat(800)));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
