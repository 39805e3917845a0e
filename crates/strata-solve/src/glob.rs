//! Shell-style globs on package names, as dnf's `excludepkgs` and `--exclude` take them
//! (fnmatch: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`).

/// A compiled name glob. Matching is on whole names and case-sensitive, like dnf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Glob {
    pattern: Vec<char>,
    literal: bool,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.chars().collect(),
            literal: !pattern.contains(['*', '?', '[']),
        }
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        if self.literal {
            return self.pattern.iter().copied().eq(name.chars());
        }
        let text: Vec<char> = name.chars().collect();
        match_from(&self.pattern, &text)
    }
}

/// Iterative wildcard matching with single-star backtracking: linear in practice and
/// without recursion depth limits, whatever the pattern.
fn match_from(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = class(&pattern[p..], text[t]) {
                        if matched {
                            p += len;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == '[' {
                        // An unterminated `[` is an ordinary character (fnmatch does the same).
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches a bracket expression at the start of `pattern` against `c`: returns whether it
/// matched and the expression's length, or `None` when the bracket is not closed.
fn class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        let lo = pattern[i];
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = pattern[i + 2];
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn literal_and_wildcards() {
        assert!(Glob::new("bash").matches("bash"));
        assert!(!Glob::new("bash").matches("bash-completion"));
        assert!(Glob::new("bash*").matches("bash-completion"));
        assert!(Glob::new("*-doc").matches("python3-doc"));
        assert!(!Glob::new("*-doc").matches("python3-docs"));
        assert!(Glob::new("lib?ssl3").matches("libxssl3"));
        assert!(Glob::new("*a*b*").matches("xxaxxbxx"));
        assert!(!Glob::new("*a*b").matches("xxaxxbxx"));
        assert!(Glob::new("*").matches(""));
    }

    #[test]
    fn bracket_classes() {
        assert!(Glob::new("perl-[a-c]*").matches("perl-base"));
        assert!(!Glob::new("perl-[a-c]*").matches("perl-modules"));
        assert!(Glob::new("x[!0-9]").matches("xa"));
        assert!(!Glob::new("x[!0-9]").matches("x5"));
        assert!(Glob::new("a[]]b").matches("a]b"));
        // An unterminated bracket is literal.
        assert!(Glob::new("a[b*").matches("a[bcd"));
    }
}
