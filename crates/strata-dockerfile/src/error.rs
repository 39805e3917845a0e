//! Errors: parse errors that point at a line and column, and expansion errors.

use std::fmt;

use crate::ast::Span;

/// A Dockerfile that cannot be parsed, with where and why.
///
/// Displays as `Dockerfile:7:5: unknown instruction: RUNN (did you mean RUN?)` followed by
/// the offending line (`  7 | RUNN echo hi`). Lines and columns start at 1; columns count
/// characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    /// The physical line the error points into, without its line ending.
    pub line_text: String,
    pub kind: ErrorKind,
}

impl ParseError {
    /// Quotes only the start of the offending line: echoing a line that is over a size limit
    /// back in full would defeat the limit.
    pub(crate) fn shortened(mut self) -> Self {
        if self.line_text.chars().count() > 80 {
            self.line_text = self.line_text.chars().take(80).collect::<String>() + "...";
        }
        self
    }
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dockerfile:{}:{}: {}\n  {} | {}",
            self.line, self.column, self.kind, self.line, self.line_text
        )
    }
}

/// What went wrong, with the details a caller (or a test) may want to match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    UnknownInstruction {
        name: String,
        suggestion: Option<&'static str>,
    },
    UnknownFlag {
        flag: String,
        instruction: &'static str,
        suggestion: Option<&'static str>,
    },
    DuplicateFlag {
        flag: String,
        instruction: &'static str,
    },
    FlagNeedsValue {
        flag: String,
        instruction: &'static str,
    },
    FlagNotBoolean {
        flag: String,
        instruction: &'static str,
        value: String,
    },
    /// A heredoc whose terminating line never came; `line` is where it was opened.
    UnterminatedHeredoc {
        delimiter: String,
        line: usize,
    },
    /// A JSON array with something other than strings in it (Docker refuses it rather than
    /// falling back to shell form).
    NotStringArray {
        instruction: &'static str,
    },
    ShellNotJson,
    MissingArguments {
        instruction: &'static str,
        expected: &'static str,
    },
    InstructionBeforeFrom {
        instruction: &'static str,
    },
    NoFrom,
    Empty,
    /// A parser directive that is malformed or repeated.
    Directive(String),
    /// A word that Docker would fail to expand (unterminated `${`, quote, bad substitution).
    Expansion(String),
    /// Any other violation of an instruction's syntax, in words.
    Syntax(String),
    /// Larger than one of [`crate::limits`] allows.
    Limit(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownInstruction { name, suggestion } => {
                // BuildKit's wording, so the message can be looked up.
                write!(f, "unknown instruction: {name}")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean {s}?)")?;
                }
                Ok(())
            }
            Self::UnknownFlag { flag, instruction, suggestion } => {
                write!(f, "unknown flag: --{flag} for {instruction}")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean --{s}?)")?;
                }
                Ok(())
            }
            Self::DuplicateFlag { flag, instruction } => {
                write!(f, "flag --{flag} given twice to {instruction}")
            }
            Self::FlagNeedsValue { flag, instruction } => {
                write!(f, "flag --{flag} of {instruction} needs a value (--{flag}=...)")
            }
            Self::FlagNotBoolean { flag, instruction, value } => write!(
                f,
                "flag --{flag} of {instruction} takes true or false, not {value:?}"
            ),
            Self::UnterminatedHeredoc { delimiter, line } => write!(
                f,
                "unterminated heredoc: no line {delimiter:?} closes the heredoc opened on line {line}"
            ),
            Self::NotStringArray { instruction } => write!(
                f,
                "{instruction}: when using JSON array syntax, arrays must be comprised of strings only"
            ),
            Self::ShellNotJson => write!(
                f,
                "SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]"
            ),
            Self::MissingArguments { instruction, expected } => {
                write!(f, "{instruction} requires {expected}")
            }
            Self::InstructionBeforeFrom { instruction } => write!(
                f,
                "{instruction} before the first FROM: only ARG may come before FROM"
            ),
            Self::NoFrom => write!(f, "the Dockerfile has no FROM instruction, so no stage to build"),
            Self::Empty => write!(f, "the Dockerfile has no instructions"),
            Self::Directive(m) | Self::Expansion(m) | Self::Syntax(m) | Self::Limit(m) => {
                f.write_str(m)
            }
        }
    }
}

/// A word that cannot be expanded: a malformed substitution, an unterminated quote, or a
/// `${V:?message}` whose variable is unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    message: String,
    span: Option<Span>,
}

impl ExpandError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: None,
        }
    }

    /// Ties the error to the instruction being expanded, so it displays with its position.
    pub fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn span(&self) -> Option<Span> {
        self.span
    }
}

impl std::error::Error for ExpandError {}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.span {
            Some(s) => write!(f, "Dockerfile:{}:{}: {}", s.line, s.column, self.message),
            None => f.write_str(&self.message),
        }
    }
}
