//! COPY/ADD source wildcards: Go's `filepath.Match`, component by component, as BuildKit
//! matches them (no `**`; `*` never crosses a `/`).

/// Whether a source pattern has wildcards at all.
pub(crate) fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// `pattern` against `path`, both relative and `/`-separated, component by component.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let s: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| component(&p.chars().collect::<Vec<_>>(), &s.chars().collect::<Vec<_>>()))
}

fn component(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| component(&p[1..], &s[i..])),
        Some('?') => !s.is_empty() && component(&p[1..], &s[1..]),
        Some('[') => match (class(&p[1..], s.first().copied()), s.is_empty()) {
            (Some((true, rest)), false) => component(&p[1 + rest..], &s[1..]),
            _ => false,
        },
        Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && component(&p[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && component(&p[1..], &s[1..]),
    }
}

/// Matches one character against the class starting after `[`; returns whether it matched and how
/// many pattern characters the class took (including the closing `]`). `None`: malformed class.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let c = c?;
    let mut i = 0;
    let negate = p.first() == Some(&'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&b| b != ']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            hit |= lo <= c && c <= hi;
        } else {
            hit |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn go_filepath_match_cases() {
        for (p, s, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("*.txt", "notes.txt", true),
            ("*.txt", "dir/notes.txt", false),
            ("src/*.rs", "src/main.rs", true),
            ("[", "a", false),
        ] {
            assert_eq!(matches(p, s), want, "{p} vs {s}");
        }
    }
}
