//! From text to logical lines: parser directives, comments, line continuations.
//!
//! Docker's rules, which this follows exactly: directives are only recognised before the first
//! line that is not one (a blank line, a comment or an instruction ends them); the first line
//! of an instruction is stripped of leading white space but continuation lines are not; a
//! continuation is the escape character at the end of a line (trailing blanks allowed) unless
//! it is itself escaped; comment lines and blank lines inside a continuation are skipped (the
//! blank ones with a warning); joined lines are concatenated without the newline.

use std::collections::HashSet;

use crate::error::{ErrorKind, ParseError};
use crate::limits::{exceeded, MAX_DOCKERFILE_BYTES, MAX_INSTRUCTION_BYTES, MAX_LINE_BYTES};

/// One physical line: byte range in the source, without its line ending.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhysLine {
    pub start: usize,
    pub end: usize,
    /// End including the line ending.
    pub full_end: usize,
}

pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub lines: Vec<PhysLine>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        // A UTF-8 byte order mark before the first line is not part of it.
        let mut pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
        while pos < text.len() {
            let full_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
            let content = text[pos..full_end].trim_end_matches(['\r', '\n']);
            lines.push(PhysLine {
                start: pos,
                end: pos + content.len(),
                full_end,
            });
            pos = full_end;
        }
        Self { text, lines }
    }

    /// The source, refused when it or one of its physical lines is over its limit.
    pub(crate) fn checked(text: &'a str) -> Result<Self, ParseError> {
        if text.len() > MAX_DOCKERFILE_BYTES {
            let m = exceeded(
                "the Dockerfile",
                text.len(),
                MAX_DOCKERFILE_BYTES,
                "MAX_DOCKERFILE_BYTES",
            );
            return Err(Self::new("").error(1, 1, ErrorKind::Limit(m)));
        }
        let src = Self::new(text);
        if let Some(n) = src
            .lines
            .iter()
            .position(|l| l.end - l.start > MAX_LINE_BYTES)
        {
            let len = src.lines[n].end - src.lines[n].start;
            let m = exceeded(
                &format!("line {}", n + 1),
                len,
                MAX_LINE_BYTES,
                "MAX_LINE_BYTES",
            );
            return Err(src.error(n + 1, 1, ErrorKind::Limit(m)).shortened());
        }
        Ok(src)
    }

    /// Line `n` (0-based index) without its ending.
    pub(crate) fn content(&self, n: usize) -> &'a str {
        let l = self.lines[n];
        &self.text[l.start..l.end]
    }

    /// Line `n` with its ending, as heredoc bodies keep it.
    pub(crate) fn full(&self, n: usize) -> &'a str {
        let l = self.lines[n];
        &self.text[l.start..l.full_end]
    }

    pub(crate) fn error(&self, line: usize, column: usize, kind: ErrorKind) -> ParseError {
        let line_text = line
            .checked_sub(1)
            .filter(|&i| i < self.lines.len())
            .map(|i| self.content(i).to_string())
            .unwrap_or_default();
        ParseError {
            line,
            column: column.max(1),
            line_text,
            kind,
        }
    }
}

/// Directive state while reading the top of the file.
#[derive(Debug)]
pub(crate) struct Directives {
    pub escape: char,
    pub syntax: Option<String>,
    pub check: Option<String>,
    done: bool,
    seen: HashSet<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            escape: '\\',
            syntax: None,
            check: None,
            done: false,
            seen: HashSet::new(),
        }
    }
}

impl Directives {
    /// Looks at a line (leading white space already removed); any line that is not a
    /// recognised directive ends directive parsing for good.
    pub(crate) fn consider(&mut self, token: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(token) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if !self.seen.insert(key.clone()) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        match key.as_str() {
            "escape" => match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                other => {
                    return Err(format!(
                        "invalid escape token '{other}' does not match ` or \\"
                    ))
                }
            },
            "syntax" => self.syntax = Some(value.to_string()),
            _ => self.check = Some(value.to_string()),
        }
        Ok(())
    }
}

/// Go's `\s` (RE2: ASCII only, without `\v`).
fn re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// `# key = value`, per BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` applied after
/// the `#` and the white space following it.
fn directive(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_alphanumeric())
        .map_or(rest.len(), |(i, _)| i);
    let key = &rest[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_len..]
        .trim_start_matches(re_space)
        .strip_prefix('=')?
        .trim_start_matches(re_space)
        .trim_end_matches(re_space);
    (!value.is_empty()).then_some((key, value))
}

pub(crate) fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a line-continuation escape (and the blanks after it) from the end of `line`;
/// returns whether there was one.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, false);
    };
    // An escaped escape character is a literal, not a continuation.
    if before.ends_with(escape) {
        return (line, false);
    }
    (before, true)
}

/// A piece of a logical line and where it came from, so offsets map back to line:column.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Byte offset in the logical line's text.
    at: usize,
    /// 1-based physical line.
    line: usize,
    /// 1-based character column of the segment's first character.
    column: usize,
}

/// An instruction's text with continuations joined.
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    pub text: String,
    segments: Vec<Segment>,
    /// 0-based index of the first physical line.
    pub first: usize,
}

impl Logical {
    /// Maps a byte offset in `text` back to (line, column).
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.at <= offset)
            .copied()
            .unwrap_or(Segment {
                at: 0,
                line: self.first + 1,
                column: 1,
            });
        let chars = self.text[seg.at..floor_char(&self.text, offset)]
            .chars()
            .count();
        (seg.line, seg.column + chars)
    }

    pub(crate) fn start(&self) -> (usize, usize) {
        self.position(0)
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Reads the next logical line starting at physical line `*pos`, advancing `*pos` past it.
pub(crate) fn next_logical(
    src: &Source<'_>,
    pos: &mut usize,
    directives: &mut Directives,
    warnings: &mut Vec<crate::ast::Warning>,
) -> Result<Option<Logical>, ParseError> {
    while *pos < src.lines.len() {
        let first = *pos;
        let content = src.content(first);
        let lead = content.len() - content.trim_start().len();
        let token = &content[lead..];
        directives
            .consider(token)
            .map_err(|m| src.error(first + 1, lead + 1, ErrorKind::Directive(m)))?;
        *pos += 1;
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        let column = content[..lead].chars().count() + 1;
        let (piece, mut more) = trim_continuation(token, directives.escape);
        let mut text = piece.to_string();
        let mut segments = vec![Segment {
            at: 0,
            line: first + 1,
            column,
        }];
        let mut blank_inside = false;
        while more && *pos < src.lines.len() {
            let n = *pos;
            *pos += 1;
            let line = src.content(n);
            if is_comment(line) {
                continue;
            }
            if line.trim_start().is_empty() {
                blank_inside = true;
                continue;
            }
            let (piece, again) = trim_continuation(line, directives.escape);
            if text.len() + piece.len() > MAX_INSTRUCTION_BYTES {
                let what = format!("the instruction starting on line {}", first + 1);
                let m = exceeded(
                    &what,
                    text.len() + piece.len(),
                    MAX_INSTRUCTION_BYTES,
                    "MAX_INSTRUCTION_BYTES",
                );
                return Err(src
                    .error(first + 1, column, ErrorKind::Limit(m))
                    .shortened());
            }
            segments.push(Segment {
                at: text.len(),
                line: n + 1,
                column: 1,
            });
            text.push_str(piece);
            more = again;
        }
        if blank_inside {
            warnings.push(crate::ast::Warning {
                line: first + 1,
                message: format!("empty continuation line found in: {text}"),
            });
        }
        return Ok(Some(Logical {
            text,
            segments,
            first,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logicals(text: &str) -> (Vec<String>, Directives, usize) {
        let src = Source::new(text);
        let mut d = Directives::default();
        let mut w = Vec::new();
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(l) = next_logical(&src, &mut pos, &mut d, &mut w).unwrap() {
            out.push(l.text);
        }
        (out, d, w.len())
    }

    #[test]
    fn continuation_joins_without_newline_and_skips_comments_and_blanks() {
        let (l, _, warnings) = logicals("RUN echo a \\\n# note\n\n   b \\\n  c\nRUN x\n");
        assert_eq!(l, ["RUN echo a    b   c", "RUN x"]);
        assert_eq!(warnings, 1);
    }

    #[test]
    fn escaped_escape_is_not_a_continuation() {
        let (l, _, _) = logicals("RUN echo \\\\\nRUN y");
        assert_eq!(l, ["RUN echo \\\\", "RUN y"]);
        let (l, _, _) = logicals("RUN echo \\  \t\n z");
        assert_eq!(l, ["RUN echo  z"]);
    }

    #[test]
    fn escape_directive_changes_continuation() {
        // The Dockerfile reference's Windows example: with ` as escape, \ is literal.
        let (l, d, _) =
            logicals("# escape=`\n\nFROM w\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n  /s\n");
        assert_eq!(d.escape, '`');
        assert_eq!(l, ["FROM w", "COPY testfile.txt c:\\", "RUN dir c:\\   /s"]);
    }

    #[test]
    fn directives_only_at_the_top_and_case_insensitive() {
        let (_, d, _) = logicals("# ESCAPE = `\n# syntax=docker/dockerfile:1\nFROM x\n");
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        // After a comment, a directive-looking line is a comment.
        let (_, d, _) = logicals("# hello\n# escape=`\nFROM x\n");
        assert_eq!(d.escape, '\\');
        // After a blank line too.
        let (_, d, _) = logicals("\n# escape=`\nFROM x\n");
        assert_eq!(d.escape, '\\');
        // An unknown directive ends directives.
        let (_, d, _) = logicals("# unknown=1\n# escape=`\nFROM x\n");
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn bad_and_repeated_directives_are_errors() {
        let src = Source::new("# escape=x\nFROM a\n");
        let mut d = Directives::default();
        let e = next_logical(&src, &mut 0, &mut d, &mut Vec::new()).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().contains("invalid escape token 'x'"), "{e}");
        let src = Source::new("# escape=`\n# Escape=\\\nFROM a\n");
        let e =
            next_logical(&src, &mut 0, &mut Directives::default(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().contains("only one escape parser directive"),
            "{e}"
        );
    }

    #[test]
    fn positions_map_back_through_continuations() {
        let src = Source::new("  RUN a \\\nbc\n");
        let l = next_logical(&src, &mut 0, &mut Directives::default(), &mut Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!(l.text, "RUN a bc");
        assert_eq!(l.start(), (1, 3));
        assert_eq!(l.position(4), (1, 7));
        assert_eq!(l.position(6), (2, 1));
        assert_eq!(l.position(7), (2, 2));
    }

    #[test]
    fn bom_and_crlf() {
        let (l, _, _) = logicals("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n");
        assert_eq!(l, ["FROM a", "RUN b  c"]);
    }
}
