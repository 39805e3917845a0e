//! Word expansion with the semantics of BuildKit's shell lexer (`frontend/dockerfile/shell`).
//!
//! This is not a shell: there is no command substitution, globbing or arithmetic. It expands
//! `$V`, `${V}` and the `${V:-x}` family, removes quotes, honours the escape character and,
//! for the instructions that need it (EXPOSE, heredoc names), splits the result into words.
//! Every rule below mirrors the Go code's behaviour, including its oddities (an empty quoted
//! string yields no word; `$` before a non-name is literal), because a Dockerfile that builds
//! with Docker must build the same way here.

mod pattern;
#[cfg(test)]
mod tests;

use crate::error::ExpandError;
use crate::limits::{exceeded, MAX_EXPANSION_BYTES, MAX_NESTING};
use crate::vars::Vars;

/// A configured lexer. [`Lexer::new`] gives the one Docker uses for instruction arguments;
/// the escape character is the Dockerfile's (`\` or the `# escape=` directive's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset: bool,
    skip_process_quotes: bool,
    syntax_only: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_process_quotes: false,
            syntax_only: false,
        }
    }

    /// The lexer BuildKit runs over a COPY/ADD heredoc body that is expanded: quotes are
    /// ordinary characters and the escape character is always `\`.
    pub fn heredoc() -> Self {
        Self {
            skip_process_quotes: true,
            ..Self::new('\\')
        }
    }

    /// Keeps quotes and escapes and leaves unset variables untouched: how the parser looks
    /// for `<<EOF` words in a line without changing them.
    pub(crate) fn raw(escape: char) -> Self {
        Self {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            ..Self::new(escape)
        }
    }

    /// Keeps quotes (not escapes) and unset variables: comparing its output with the normal
    /// lexer's tells whether a heredoc delimiter was quoted.
    pub(crate) fn quotes_kept() -> Self {
        Self {
            raw_quotes: true,
            skip_unset: true,
            ..Self::new('\\')
        }
    }

    pub(crate) fn skipping_unset(mut self) -> Self {
        self.skip_unset = true;
        self
    }

    /// Treats every variable as unset but still rejects malformed substitutions, so the
    /// parser can report `${` errors with a line and column before anything is built.
    pub(crate) fn checking(mut self) -> Self {
        self.syntax_only = true;
        self
    }

    /// Expands `word` as one word (Docker's `ProcessWord`): quotes removed, white space kept.
    pub fn expand(&self, word: &str, vars: &Vars) -> Result<String, ExpandError> {
        self.process(word, vars).map(|(w, _)| w)
    }

    /// Expands `text` and splits it into words (Docker's `ProcessWords`): unquoted white space,
    /// including white space that came out of a variable, separates words.
    pub fn expand_words(&self, text: &str, vars: &Vars) -> Result<Vec<String>, ExpandError> {
        self.process(text, vars).map(|(_, ws)| ws)
    }

    pub(crate) fn process(
        &self,
        word: &str,
        vars: &Vars,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut sw = ShellWord {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            depth: 0,
            vars,
            raw_escapes: self.raw_escapes,
        };
        sw.process_stop_on(None, self.raw_escapes).map_err(|e| {
            // A word can be a whole heredoc body: quote the start of it, not megabytes.
            let shown: String = word.chars().take(200).collect();
            let more = if shown.len() < word.len() { "..." } else { "" };
            ExpandError::new(format!("failed to process {shown:?}{more}: {e}"))
        })
    }
}

/// Expands one word with the default escape character `\` (see [`Lexer::expand`]).
pub fn expand(word: &str, vars: &Vars) -> Result<String, ExpandError> {
    Lexer::new('\\').expand(word, vars)
}

/// Expands and splits with the default escape character `\` (see [`Lexer::expand_words`]).
pub fn expand_words(text: &str, vars: &Vars) -> Result<Vec<String>, ExpandError> {
    Lexer::new('\\').expand_words(text, vars)
}

/// Word accumulator for `ProcessWords`; the odd `in_word` bookkeeping is Go's, kept so that
/// splitting decisions match exactly.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    vars: &'a Vars,
    raw_escapes: bool,
    /// Words being processed inside one another (`${A:-${B:-...}}`), see [`MAX_NESTING`].
    depth: usize,
}

type Step<T> = Result<T, String>;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn lookup(&self, name: &str) -> Option<String> {
        if self.lex.syntax_only {
            return None;
        }
        self.vars.get(name).map(str::to_string)
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "substitutions nested more than {MAX_NESTING} deep (strata's limit, MAX_NESTING)"
            ));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.stop_on(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        r
    }

    fn stop_on(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            if c == '$' || c == '<' || (quotes && (c == '\'' || c == '"')) {
                let piece = match c {
                    '$' => self.dollar()?,
                    '<' => self.possible_heredoc(),
                    '\'' => self.single_quote()?,
                    _ => self.double_quote()?,
                };
                result.push_str(&piece);
                bounded(result.len())?;
                if c == '$' {
                    words.add_string(&piece);
                } else {
                    words.add_raw_string(&piece);
                }
                continue;
            }
            let mut c = self.next().expect("peeked");
            if c == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(c);
                    result.push(c);
                }
                // A trailing escape character is dropped.
                let Some(e) = self.next() else { break };
                c = e;
                words.add_raw_char(c);
            } else {
                words.add_char(c);
            }
            result.push(c);
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish()))
    }

    /// `<<` and the blanks after it stay one piece, so `<< EOF` is a single word (BuildKit's
    /// `processPossibleHeredoc`, which lets heredocs have a blank before the delimiter).
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut piece = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            piece.push(c);
            self.next();
        }
        piece
    }

    fn single_quote(&mut self) -> Step<String> {
        // Nothing can be escaped between single quotes, not even the quote.
        let mut out = String::new();
        let q = self.next().expect("peeked quote");
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Step<String> {
        let mut out = String::new();
        let q = self.next().expect("peeked quote");
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                    bounded(out.len())?;
                }
                Some(_) => {
                    let mut c = self.next().expect("peeked");
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            // Only these can be escaped inside double quotes; any other
                            // escape character is literal, as in sh.
                            Some(e) if e == '"' || e == '$' || e == self.lex.escape => {
                                c = self.next().expect("peeked");
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !(c.is_alphabetic() || c.is_numeric() || c == '_') {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> Step<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut ops = op.to_string();
        let mut null_is_unset = false;
        match op {
            '}' => {
                return Ok(match self.lookup(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            '/' => return self.replace(&name),
            ':' => {
                null_is_unset = true;
                op = self.next().unwrap_or('\u{fffd}');
                ops.push(op);
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => {
                return Err(format!(
                    "unsupported modifier ({}) in substitution",
                    ops.escape_debug()
                ))
            }
        }
        let raw = op == '#' || op == '%';
        // `${V:#p}` and `${V:%p}` are not shell syntax; BuildKit refuses them before reading
        // the pattern, whatever V holds.
        if null_is_unset && raw {
            return Err(format!(
                "unsupported modifier ({}) in substitution",
                ops.escape_debug()
            ));
        }
        let word = match self.process_stop_on(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        if value.is_none() && self.lex.skip_unset {
            return Ok(format!("${{{name}{ops}{word}}}"));
        }
        let set = value.is_some();
        let value = value.unwrap_or_default();
        let unset = !set || (null_is_unset && value.is_empty());
        match op {
            '-' => Ok(if unset { word } else { value }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' if self.lex.syntax_only => Ok(String::new()),
            '?' if !set => Err(format!(
                "{name}: {}",
                or(word, "is not allowed to be unset")
            )),
            '?' if unset => Err(format!(
                "{name}: {}",
                or(word, "is not allowed to be empty")
            )),
            '?' => Ok(value),
            '#' | '%' => {
                let (greedy, pat) = match word.strip_prefix(op) {
                    Some(p) => (true, p),
                    None => (false, word.as_str()),
                };
                let r = if op == '%' {
                    pattern::trim_suffix(pat, &value, greedy)
                } else {
                    pattern::trim_prefix(pat, &value, greedy)
                };
                r.map_err(|e| format!("invalid pattern ({pat}) in substitution: {e}"))
            }
            _ => Err(format!(
                "unsupported modifier ({}) in substitution",
                ops.escape_debug()
            )),
        }
    }

    fn replace(&mut self, name: &str) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pat = match self.process_stop_on(Some('/'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".into())
            }
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(e) => return Err(e),
        };
        let value = self.lookup(name);
        if value.is_none() && self.lex.skip_unset {
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pat}/{replacement}}}"));
        }
        pattern::replace(&pat, &value.unwrap_or_default(), &replacement, all)
            .map_err(|e| format!("invalid pattern ({pat}) in substitution: {e}"))
    }
}

/// Fails once an expansion has produced more than [`MAX_EXPANSION_BYTES`], before it can
/// grow further (`${A}${A}...` doubles with every pair).
pub(crate) fn bounded(len: usize) -> Step<()> {
    if len > MAX_EXPANSION_BYTES {
        return Err(exceeded(
            "the expansion",
            len,
            MAX_EXPANSION_BYTES,
            "MAX_EXPANSION_BYTES",
        ));
    }
    Ok(())
}

fn or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}
