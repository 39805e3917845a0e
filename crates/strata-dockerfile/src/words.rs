//! Splitting a logical line the ways Docker's parser does: keyword and rest, leading
//! `--flags`, quote-aware words (ARG, ENV, LABEL), white space (FROM, EXPOSE, COPY), JSON.
//!
//! Every piece carries its byte offset in the logical line so errors can point at it.

/// Docker's `reWhitespace`: `[\t\v\f\r ]+`.
pub(crate) fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// A piece of the line and its byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub text: String,
    pub at: usize,
}

/// The keyword, then the rest of the line (both with offsets). The rest is trimmed.
pub(crate) fn split_command(line: &str) -> (Piece, Piece) {
    let start = line.len() - line.trim_start().len();
    let body = line.trim();
    let end = body.find(is_ws).unwrap_or(body.len());
    let cmd = Piece {
        text: body[..end].to_string(),
        at: start,
    };
    let after = &body[end..];
    let skip = after.len() - after.trim_start_matches(is_ws).len();
    let rest = Piece {
        text: after[skip..].trim().to_string(),
        at: start + end + skip,
    };
    (cmd, rest)
}

/// Leading `--name[=value]` words (Docker's `extractBuilderFlags`): quotes group, `\` escapes,
/// a bare `--` ends the flags. Returns the flags (quotes removed) and what follows.
pub(crate) fn extract_flags(rest: &Piece) -> (Vec<Piece>, Piece) {
    let line = rest.text.as_str();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        let at = chars.get(i).map_or(line.len(), |c| c.0);
        let starts_flag = line[at..].starts_with("--");
        if !starts_flag {
            return (
                flags,
                Piece {
                    text: line[at..].trim().to_string(),
                    at: rest.at + at,
                },
            );
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while i < chars.len() {
            let c = chars[i].1;
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            i += 1;
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '\'' | '"') => {
                    quote = Some(c);
                    blank_ok = true;
                }
                (_, '\\') => {
                    if i == chars.len() {
                        // A trailing backslash is dropped.
                        continue;
                    }
                    word.push(chars[i].1);
                    i += 1;
                }
                (_, c) => word.push(c),
            }
        }
        if word == "--" && quote.is_none() {
            let at = chars.get(i).map_or(line.len(), |c| c.0);
            return (
                flags,
                Piece {
                    text: line[at..].trim().to_string(),
                    at: rest.at + at,
                },
            );
        }
        if blank_ok || !word.is_empty() {
            flags.push(Piece {
                text: word,
                at: rest.at + at,
            });
        }
        if i >= chars.len() {
            return (
                flags,
                Piece {
                    text: String::new(),
                    at: rest.at + line.len(),
                },
            );
        }
    }
}

/// Words for ARG, ENV and LABEL (Docker's `parseWords`): white space separates, quotes and
/// escapes are kept in the word (expansion removes them later) but protect white space.
pub(crate) fn parse_words(rest: &Piece, escape: char) -> Vec<Piece> {
    let s = rest.text.as_str();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let at = chars[i].0;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while i < chars.len() {
            let c = chars[i].1;
            let last = i + 1 == chars.len();
            match quote {
                None if c.is_whitespace() => break,
                None => {
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                        blank_ok = true;
                    } else if c == escape {
                        if last {
                            i += 1;
                            continue;
                        }
                        // Escape plus the next character go in as they are, even a quote.
                        word.push(c);
                        i += 1;
                    }
                }
                Some(q) => {
                    if c == q {
                        quote = None;
                    } else if c == escape && q != '\'' {
                        if last {
                            i += 1;
                            continue;
                        }
                        word.push(c);
                        i += 1;
                    }
                }
            }
            word.push(chars[i].1);
            i += 1;
        }
        if blank_ok || !word.is_empty() {
            words.push(Piece {
                text: word,
                at: rest.at + at,
            });
        }
    }
    words
}

/// Docker's `parseStringsWhitespaceDelimited`.
pub(crate) fn split_ws(rest: &Piece) -> Vec<Piece> {
    let mut out = Vec::new();
    let s = rest.text.as_str();
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        match (start, is_ws(c)) {
            (None, false) => start = Some(i),
            (Some(st), true) => {
                out.push(Piece {
                    text: s[st..i].to_string(),
                    at: rest.at + st,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The outcome of trying to read the rest of a line as a JSON array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Json {
    /// Not a JSON array: Docker falls back to the shell or white-space form.
    No,
    Strings(Vec<String>),
    /// Valid JSON array with a non-string element: an error in Docker.
    NotStrings,
}

pub(crate) fn parse_json(rest: &str) -> Json {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Json::No;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Err(_) => Json::No,
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map_or(Json::NotStrings, Json::Strings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(s: &str) -> Piece {
        Piece {
            text: s.to_string(),
            at: 0,
        }
    }

    fn texts(p: &[Piece]) -> Vec<&str> {
        p.iter().map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn command_split_keeps_offsets() {
        let (c, r) = split_command("COPY  --from=a  x y  ");
        assert_eq!((c.text.as_str(), c.at), ("COPY", 0));
        assert_eq!((r.text.as_str(), r.at), ("--from=a  x y", 6));
        let (c, r) = split_command("CMD");
        assert_eq!((c.text.as_str(), r.text.as_str()), ("CMD", ""));
    }

    #[test]
    fn flags_are_leading_double_dash_words() {
        let (f, rest) = extract_flags(&Piece {
            text: "--from=b --chown=\"a b\" src dst".into(),
            at: 5,
        });
        assert_eq!(texts(&f), ["--from=b", "--chown=a b"]);
        assert_eq!(f[1].at, 14);
        assert_eq!(rest.text, "src dst");
        assert_eq!(rest.at, 28);
        let (f, rest) = extract_flags(&piece("-- --not-a-flag x"));
        assert!(f.is_empty());
        assert_eq!(rest.text, "--not-a-flag x");
        let (f, rest) = extract_flags(&piece("--link"));
        assert_eq!(texts(&f), ["--link"]);
        assert_eq!(rest.text, "");
        let (f, rest) = extract_flags(&piece("echo --x"));
        assert!(f.is_empty());
        assert_eq!(rest.text, "echo --x");
        let (f, _) = extract_flags(&piece("--a=\\\"q --b=''"));
        assert_eq!(texts(&f), ["--a=\"q", "--b="]);
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let w = parse_words(&piece(r#"a=1 b="x y" c='p q' d=\"e f\ g"#), '\\');
        assert_eq!(
            texts(&w),
            ["a=1", r#"b="x y""#, "c='p q'", r#"d=\"e"#, r"f\ g"]
        );
        let w = parse_words(&piece(r#"k="a\"b c""#), '\\');
        assert_eq!(texts(&w), [r#"k="a\"b c""#]);
        // Inside single quotes the escape character is literal and cannot protect a quote.
        let w = parse_words(&piece(r"k='a\' b"), '\\');
        assert_eq!(texts(&w), [r"k='a\'", "b"]);
        let w = parse_words(&piece("x `\" y"), '`');
        assert_eq!(texts(&w), ["x", "`\"", "y"]);
    }

    #[test]
    fn white_space_split() {
        let w = split_ws(&Piece {
            text: "a \t b\x0bc".into(),
            at: 3,
        });
        assert_eq!(texts(&w), ["a", "b", "c"]);
        assert_eq!(w[1].at, 7);
        assert!(split_ws(&piece("")).is_empty());
    }

    #[test]
    fn json_arrays() {
        assert_eq!(
            parse_json(r#" ["a", "b c"] "#),
            Json::Strings(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse_json("[]"), Json::Strings(vec![]));
        assert_eq!(parse_json(r#"["a", 1]"#), Json::NotStrings);
        assert_eq!(parse_json(r#"["a", 'b']"#), Json::No);
        assert_eq!(parse_json(r#"["a"] x"#), Json::No);
        assert_eq!(parse_json("echo [x]"), Json::No);
    }
}
