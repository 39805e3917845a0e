//! "Did you mean" suggestions by edit distance.

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-folded,
/// so `EVN` is one edit from `ENV`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo: one edit
/// for short words, two from five characters on, and never a rewrite of most of the word.
pub(crate) fn nearest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let len = word.chars().count();
    let limit = if len >= 5 { 2 } else { 1 };
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|&(d, _)| d <= limit && d < len)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KW: &[&str] = &["RUN", "ENV", "COPY", "ENTRYPOINT", "FROM", "EXPOSE", "ADD"];

    #[test]
    fn typos_find_their_keyword() {
        assert_eq!(nearest("RUNN", KW), Some("RUN"));
        assert_eq!(nearest("evn", KW), Some("ENV"));
        assert_eq!(nearest("CPY", KW), Some("COPY"));
        assert_eq!(nearest("ENTRYPONT", KW), Some("ENTRYPOINT"));
        assert_eq!(nearest("EXPOSSE", KW), Some("EXPOSE"));
    }

    #[test]
    fn unrelated_words_get_no_suggestion() {
        assert_eq!(nearest("hello", KW), None);
        assert_eq!(nearest("X", KW), None);
        assert_eq!(nearest("", KW), None);
    }
}
