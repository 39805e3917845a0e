//! Heredocs: finding `<<EOF` words in a line and reading their bodies.
//!
//! BuildKit lexes the whole joined line (quotes and escapes kept) into words and treats every
//! word matching `^(\d*)<<(-?)\s*([^<]*)$` as a heredoc, in order. The delimiter is the rest of
//! the word with quotes removed; it was quoted (no expansion) when removing quotes changed
//! the number of quote characters.

use crate::error::{ErrorKind, ParseError};
use crate::limits::{exceeded, MAX_HEREDOC_BYTES};
use crate::shell::Lexer;
use crate::source::Source;
use crate::vars::Vars;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub name: String,
    pub chomp: bool,
    pub expand: bool,
}

/// Parses one word as a heredoc marker (BuildKit's `ParseHeredoc`).
pub(crate) fn marker(word: &str) -> Option<Marker> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // Blanks may separate `<<` from the delimiter (the lexer keeps `<< EOF` one word).
    let rest = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let empty = Vars::new();
    let words = Lexer::new('\\')
        .skipping_unset()
        .expand_words(rest, &empty)
        .ok()?;
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = Lexer::quotes_kept().expand_words(rest, &empty).ok()?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw.len() == 1 && quotes(name) == quotes(&raw[0]);
    Some(Marker {
        name: name.clone(),
        chomp,
        expand,
    })
}

/// Every heredoc marker in a joined instruction line, in order.
pub(crate) fn markers_in_line(line: &str) -> Vec<Marker> {
    Lexer::raw('\\')
        .expand_words(line, &Vars::new())
        .map(|words| words.iter().filter_map(|w| marker(w)).collect())
        .unwrap_or_default()
}

/// Reads the bodies of `markers` from the physical lines at `*pos`, in order. Each body is
/// every line up to the delimiter line, line endings kept; with `<<-` the delimiter may be
/// indented by tabs. `opened` is where the instruction starts, for the error.
pub(crate) fn read_bodies(
    src: &Source<'_>,
    pos: &mut usize,
    markers: &[Marker],
    opened: (usize, usize),
) -> Result<Vec<String>, ParseError> {
    let mut bodies = Vec::with_capacity(markers.len());
    for m in markers {
        let mut body = String::new();
        let mut closed = false;
        while *pos < src.lines.len() {
            let n = *pos;
            *pos += 1;
            let line = src.content(n);
            let candidate = if m.chomp {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == m.name {
                closed = true;
                break;
            }
            body.push_str(src.full(n));
            if body.len() > MAX_HEREDOC_BYTES {
                let what = format!("the heredoc {:?} opened on line {}", m.name, opened.0);
                let m = exceeded(&what, body.len(), MAX_HEREDOC_BYTES, "MAX_HEREDOC_BYTES");
                return Err(src.error(opened.0, opened.1, ErrorKind::Limit(m)));
            }
        }
        if !closed {
            return Err(src.error(
                opened.0,
                opened.1,
                ErrorKind::UnterminatedHeredoc {
                    delimiter: m.name.clone(),
                    line: opened.0,
                },
            ));
        }
        bodies.push(body);
    }
    Ok(bodies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, chomp: bool, expand: bool) -> Marker {
        Marker {
            name: name.into(),
            chomp,
            expand,
        }
    }

    #[test]
    fn markers_and_their_quoting() {
        assert_eq!(marker("<<EOF"), Some(m("EOF", false, true)));
        assert_eq!(marker("<<-EOF"), Some(m("EOF", true, true)));
        assert_eq!(marker("<<\"EOF\""), Some(m("EOF", false, false)));
        assert_eq!(marker("<<'EOF'"), Some(m("EOF", false, false)));
        assert_eq!(marker("3<<EOF"), Some(m("EOF", false, true)));
        assert_eq!(marker("<<"), None);
        assert_eq!(marker("<<<EOF"), None);
        assert_eq!(marker("x<<EOF"), None);
        assert_eq!(marker("<<EOF FOO"), None);
        // A blank after `<<` (or `<<-`) is allowed; a `-` after the blank is the name's.
        assert_eq!(marker("<< EOF"), Some(m("EOF", false, true)));
        assert_eq!(marker("<<-\t'EOF'"), Some(m("EOF", true, false)));
        assert_eq!(marker("<< -EOF"), Some(m("-EOF", false, true)));
        assert_eq!(marker("<< "), None);
    }

    #[test]
    fn markers_in_a_line_skip_quoted_text() {
        let names: Vec<String> = markers_in_line("RUN cat <<A && cat <<-'B' && echo \"<<C\"")
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["A", "B"]);
        assert!(markers_in_line("RUN echo 'unterminated <<A").is_empty());
        // BuildKit's lexer keeps only `<<` and the blanks right after it together, so a blank
        // after `<<-` splits the word and `B` is no heredoc (in BuildKit either).
        let names: Vec<String> = markers_in_line("RUN cat <<  A > f && cat <<- B")
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["A"]);
    }

    #[test]
    fn bodies_in_order_with_chomp_terminators() {
        let src = Source::new("RUN x\na\n\tEOF\nEOF\nb\r\n\t\tEND\nRUN y\n");
        let mut pos = 1;
        let bodies = read_bodies(
            &src,
            &mut pos,
            &[m("EOF", false, true), m("END", true, true)],
            (1, 1),
        )
        .unwrap();
        assert_eq!(bodies, ["a\n\tEOF\n", "b\r\n"]);
        assert_eq!(pos, 6);
    }

    #[test]
    fn unterminated_names_the_delimiter_and_line() {
        let src = Source::new("FROM a\nRUN <<EOF\nno end\n");
        let e = read_bodies(&src, &mut 2, &[m("EOF", false, true)], (2, 1)).unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert_eq!(
            e.kind,
            ErrorKind::UnterminatedHeredoc {
                delimiter: "EOF".into(),
                line: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "Dockerfile:2:1: unterminated heredoc: no line \"EOF\" closes the heredoc opened on line 2\n  2 | RUN <<EOF"
        );
    }
}
