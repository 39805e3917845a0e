//! `.dockerignore`: which context paths the build never sees.
//!
//! Reading follows moby's `ignorefile.ReadAll` (one pattern per line; a line starting with `#`
//! is a comment; blank lines skipped; white space trimmed; `!` marks an exception; patterns
//! cleaned like Go's `filepath.Clean`, a leading `/` dropped). Matching follows patternmatcher's
//! `MatchesOrParentMatches`: patterns apply in order, the last one that matches the path or
//! one of its parent directories decides, so excluding a directory excludes everything below
//! it unless a later exception re-includes something.

mod glob;
#[cfg(test)]
mod tests;

use std::fmt;

use glob::Glob;

use crate::limits::{exceeded, MAX_LINE_BYTES};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    glob: Glob,
    exception: bool,
    text: String,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for IgnoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".dockerignore:{}: {}", self.line, self.message)
    }
}

impl std::error::Error for IgnoreError {}

/// What a context walker should do with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Include,
    /// Excluded, and so is everything below it.
    Exclude,
    /// An excluded directory below which an exception may re-include entries: leave the
    /// directory itself out but look inside it (create it only if something inside is kept).
    Descend,
}

/// Whether the `.dockerignore` matches the build's own files. Docker still reads both (the
/// Dockerfile is sent to the builder regardless); when matched they are just not part of the
/// context that COPY and ADD see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildFiles {
    pub dockerfile_excluded: bool,
    pub dockerignore_excluded: bool,
}

/// Go's `filepath.Clean` on `/`-separated paths.
pub(crate) fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// A context path in the form patterns are matched against.
fn normalize(path: &str) -> String {
    let c = clean(path);
    match c.strip_prefix('/') {
        Some("") => ".".into(),
        Some(rest) => rest.to_string(),
        None => c,
    }
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            // moby reads the file with a line scanner that fails past 64 KiB; so do we.
            if raw.len() > MAX_LINE_BYTES {
                return Err(IgnoreError {
                    line: n + 1,
                    message: exceeded("the line", raw.len(), MAX_LINE_BYTES, "MAX_LINE_BYTES"),
                });
            }
            // Only a `#` in the very first column starts a comment.
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            let err = |message: String| IgnoreError {
                line: n + 1,
                message,
            };
            if p.is_empty() {
                return Err(err("illegal exclusion pattern: \"!\"".into()));
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let glob = Glob::new(&cleaned).map_err(|e| {
                // Quote the pattern, or its start when it is too long to be worth reading.
                let shown: String = cleaned.chars().take(80).collect();
                let more = if shown.len() < cleaned.len() {
                    "..."
                } else {
                    ""
                };
                err(format!("{e}: {shown:?}{more}"))
            })?;
            patterns.push(Pattern {
                glob,
                exception,
                text: cleaned,
            });
        }
        Ok(Self { patterns })
    }

    /// The patterns as read, exceptions prefixed with `!`.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exception {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is left out of the
    /// context. The context root itself never is.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = normalize(rel_path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = path
            .char_indices()
            .filter(|&(_, c)| c == '/')
            .map(|(i, _)| &path[..i])
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An exclusion cannot change an excluded path, nor an exception an included one.
            if p.exception != excluded {
                continue;
            }
            if p.glob.matches(&path) || parents.iter().any(|d| p.glob.matches(d)) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// What a walker does with `rel_path`: files and included directories are decided by
    /// [`is_excluded`](Self::is_excluded); an excluded directory is skipped whole unless an
    /// exception could match something inside it.
    pub fn walk(&self, rel_path: &str, is_dir: bool) -> Walk {
        if !self.is_excluded(rel_path) {
            return Walk::Include;
        }
        if is_dir && self.must_descend(rel_path) {
            Walk::Descend
        } else {
            Walk::Exclude
        }
    }

    /// Whether an exception could re-include something below the directory `rel_dir`.
    pub fn must_descend(&self, rel_dir: &str) -> bool {
        let dir = normalize(rel_dir);
        if dir == "." {
            return true;
        }
        self.patterns
            .iter()
            .any(|p| p.exception && p.glob.may_match_below(&dir))
    }

    /// Checks the Dockerfile (its path relative to the context) and `.dockerignore` itself.
    pub fn build_files(&self, dockerfile: &str) -> BuildFiles {
        BuildFiles {
            dockerfile_excluded: self.is_excluded(dockerfile),
            dockerignore_excluded: self.is_excluded(".dockerignore"),
        }
    }
}
