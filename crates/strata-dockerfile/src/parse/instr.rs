//! One logical line to one typed instruction, following Docker's per-instruction rules.

use std::time::Duration;

use crate::ast::{
    strip_leading_tabs, Add, ArgDecl, Command, Copy, From, Healthcheck, Heredoc, HeredocFile,
    Instruction, KeyValue, Onbuild, Run,
};
use crate::error::{ErrorKind, ParseError};
use crate::flags::{self, Flags, Spec};
use crate::heredoc::{marker, Marker};
use crate::shell::Lexer;
use crate::source::{Logical, Source};
use crate::suggest::nearest;
use crate::values::parse_go_duration;
use crate::vars::Vars;
use crate::words::{
    extract_flags, is_ws, parse_json, parse_words, split_command, split_ws, Json, Piece,
};

pub(crate) const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

pub(crate) enum Parsed {
    From(From, Option<String>),
    Instr(Instruction),
}

/// What an instruction is parsed against: the source (for positions and line texts), its
/// joined line, the escape character, and the heredoc bodies already read for it.
pub(crate) struct Line<'a> {
    pub src: &'a Source<'a>,
    pub logical: &'a Logical,
    pub escape: char,
    pub heredocs: &'a [(Marker, String)],
    /// Inside ONBUILD: words are expanded when the trigger fires, in the child build, with the
    /// default escape character, so they are not syntax-checked here.
    pub nested: bool,
}

impl Line<'_> {
    pub(crate) fn err(&self, at: usize, kind: ErrorKind) -> ParseError {
        let (line, column) = self.logical.position(at);
        self.src.error(line, column, kind)
    }

    fn syntax(&self, at: usize, message: impl Into<String>) -> ParseError {
        self.err(at, ErrorKind::Syntax(message.into()))
    }

    /// Rejects a FROM word Docker would fail to expand, so the error has a position. Only
    /// FROM is checked here: BuildKit expands every stage's FROM before building anything,
    /// but the other instructions only when their stage is built (and an ARG default only
    /// when no build argument replaces it), so their errors wait for
    /// [`crate::StageScope::apply`] — a stage that `--target` leaves out may hold a word that
    /// would not expand.
    fn check(&self, p: &Piece) -> Result<(), ParseError> {
        if self.nested {
            return Ok(());
        }
        Lexer::new(self.escape)
            .checking()
            .process(&p.text, &Vars::new())
            .map(drop)
            .map_err(|e| self.err(p.at, ErrorKind::Expansion(e.message().to_string())))
    }

    fn flags(&self, raw: &[Piece], spec: Spec, keyword: &'static str) -> Result<Flags, ParseError> {
        flags::parse(raw, spec, keyword).map_err(|(at, kind)| self.err(at, kind))
    }
}

fn missing(instruction: &'static str, expected: &'static str) -> ErrorKind {
    ErrorKind::MissingArguments {
        instruction,
        expected,
    }
}

/// Parses `piece` (a whole logical line, or the part after ONBUILD) as one instruction.
pub(crate) fn instruction(line: &Line<'_>, piece: &Piece) -> Result<Parsed, ParseError> {
    let (cmd, rest) = split_command(&piece.text);
    let (cmd, rest) = (shift(cmd, piece.at), shift(rest, piece.at));
    let (raw_flags, args) = extract_flags(&rest);
    let kw = cmd.text.to_ascii_uppercase();
    let Some(&keyword) = KEYWORDS.iter().find(|k| **k == kw) else {
        return Err(line.err(
            cmd.at,
            ErrorKind::UnknownInstruction {
                name: cmd.text.clone(),
                suggestion: nearest(&cmd.text, KEYWORDS),
            },
        ));
    };
    let none = || line.flags(&raw_flags, flags::NONE, keyword).map(drop);
    let need = |ok: bool, expected: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(line.err(cmd.at, missing(keyword, expected)))
        }
    };
    let instr = match keyword {
        "FROM" => return from(line, &raw_flags, &args, cmd.at),
        "RUN" => Instruction::Run(run(line, &raw_flags, &args)?),
        "CMD" | "ENTRYPOINT" => {
            none()?;
            let c = command(line, &args, keyword)?;
            if keyword == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "COPY" => Instruction::Copy(copy(line, &raw_flags, &args, cmd.at)?),
        "ADD" => Instruction::Add(add(line, &raw_flags, &args, cmd.at)?),
        "ENV" | "LABEL" => {
            none()?;
            let pairs = name_values(line, &args, keyword, cmd.at)?;
            if keyword == "ENV" {
                Instruction::Env(pairs)
            } else {
                Instruction::Label(pairs)
            }
        }
        "ARG" => {
            none()?;
            Instruction::Arg(arg(line, &args, cmd.at)?)
        }
        "MAINTAINER" => {
            none()?;
            need(!args.text.is_empty(), "exactly one argument")?;
            Instruction::Maintainer(args.text.clone())
        }
        "EXPOSE" => {
            none()?;
            let ports = split_ws(&args);
            need(!ports.is_empty(), "at least one argument")?;
            Instruction::Expose(texts(ports))
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" => {
            none()?;
            need(!args.text.is_empty(), "exactly one argument")?;
            let v = args.text.clone();
            match keyword {
                "USER" => Instruction::User(v),
                "WORKDIR" => Instruction::Workdir(v),
                _ => Instruction::Stopsignal(v),
            }
        }
        "VOLUME" => {
            none()?;
            let (paths, _) = list(line, &args, keyword)?;
            need(!paths.is_empty(), "at least one argument")?;
            for p in &paths {
                if p.text.trim().is_empty() {
                    return Err(line.syntax(p.at, "VOLUME specified can not be an empty string"));
                }
            }
            Instruction::Volume(
                paths
                    .into_iter()
                    .map(|p| p.text.trim().to_string())
                    .collect(),
            )
        }
        "HEALTHCHECK" => Instruction::Healthcheck(healthcheck(line, &raw_flags, &args, cmd.at)?),
        "SHELL" => {
            none()?;
            match parse_json(&args.text) {
                Json::Strings(v) if !v.is_empty() => Instruction::Shell(v),
                Json::Strings(_) => {
                    return Err(line.err(cmd.at, missing(keyword, "at least one argument")))
                }
                Json::NotStrings => {
                    return Err(line.err(
                        args.at,
                        ErrorKind::NotStringArray {
                            instruction: keyword,
                        },
                    ))
                }
                Json::No if args.text.is_empty() => {
                    return Err(line.err(cmd.at, missing(keyword, "at least one argument")))
                }
                Json::No => return Err(line.err(args.at, ErrorKind::ShellNotJson)),
            }
        }
        "ONBUILD" => {
            none()?;
            Instruction::Onbuild(onbuild(line, &args, cmd.at)?)
        }
        _ => unreachable!("every keyword has an arm"),
    };
    Ok(Parsed::Instr(instr))
}

fn shift(mut p: Piece, by: usize) -> Piece {
    p.at += by;
    p
}

fn texts(pieces: Vec<Piece>) -> Vec<String> {
    pieces.into_iter().map(|p| p.text).collect()
}

fn from(line: &Line<'_>, raw: &[Piece], args: &Piece, at: usize) -> Result<Parsed, ParseError> {
    let words = split_ws(args);
    let name = match words.as_slice() {
        [_] => None,
        [_, kw, name] if kw.text.eq_ignore_ascii_case("as") => {
            let lower = name.text.to_ascii_lowercase();
            let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(line.syntax(
                    name.at,
                    format!(
                        "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                        name.text
                    ),
                ));
            }
            Some(lower)
        }
        _ => {
            return Err(line.syntax(
                at,
                "FROM requires either one or three arguments (image [AS name])",
            ))
        }
    };
    let f = line.flags(raw, flags::FROM, "FROM")?;
    line.check(&words[0])?;
    let platform = f.str("platform");
    if let Some(p) = &platform {
        let at = raw
            .iter()
            .find(|r| r.text.starts_with("--platform"))
            .map_or(at, |r| r.at);
        line.check(&Piece {
            text: p.clone(),
            at,
        })?;
    }
    Ok(Parsed::From(
        From {
            image: words[0].text.clone(),
            platform,
        },
        name,
    ))
}

/// RUN/CMD/ENTRYPOINT argument: a JSON array of strings, else the rest of the line as is.
fn command(line: &Line<'_>, args: &Piece, keyword: &'static str) -> Result<Command, ParseError> {
    if args.text.is_empty() {
        return Ok(Command::Shell(String::new()));
    }
    match parse_json(&args.text) {
        Json::Strings(v) => Ok(Command::Exec(v)),
        Json::NotStrings => Err(line.err(
            args.at,
            ErrorKind::NotStringArray {
                instruction: keyword,
            },
        )),
        Json::No => Ok(Command::Shell(args.text.clone())),
    }
}

fn run(line: &Line<'_>, raw: &[Piece], args: &Piece) -> Result<Run, ParseError> {
    let f = line.flags(raw, flags::RUN, "RUN")?;
    let command = command(line, args, "RUN")?;
    let heredocs = line
        .heredocs
        .iter()
        .map(|(m, content)| Heredoc {
            name: m.name.clone(),
            content: content.clone(),
            chomp: m.chomp,
            expand: m.expand,
        })
        .collect();
    Ok(Run {
        mounts: f.many("mount"),
        network: f.str("network"),
        security: f.str("security"),
        command,
        heredocs,
    })
}

/// COPY/ADD/VOLUME arguments: a JSON array of strings, else white-space separated words.
fn list(
    line: &Line<'_>,
    args: &Piece,
    keyword: &'static str,
) -> Result<(Vec<Piece>, bool), ParseError> {
    match parse_json(&args.text) {
        Json::Strings(v) => Ok((
            v.into_iter()
                .map(|text| Piece { text, at: args.at })
                .collect(),
            true,
        )),
        Json::NotStrings => Err(line.err(
            args.at,
            ErrorKind::NotStringArray {
                instruction: keyword,
            },
        )),
        Json::No => Ok((split_ws(args), false)),
    }
}

struct Transfer {
    sources: Vec<String>,
    dest: String,
    heredocs: Vec<HeredocFile>,
    json: bool,
}

fn sources_and_dest(
    line: &Line<'_>,
    args: &Piece,
    keyword: &'static str,
    at: usize,
) -> Result<Transfer, ParseError> {
    let (mut words, json) = list(line, args, keyword)?;
    if words.len() < 2 {
        return Err(line.err(
            at,
            missing(
                keyword,
                "at least two arguments, but only one was provided. Destination could not be determined",
            ),
        ));
    }
    let dest = words.pop().expect("two words");
    if marker(&dest.text).is_some() {
        return Err(line.syntax(
            dest.at,
            format!("{keyword} cannot accept a heredoc as a destination"),
        ));
    }
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for w in words {
        let Some(m) = marker(&w.text) else {
            sources.push(w.text);
            continue;
        };
        // Docker looks bodies up by name; the last heredoc of that name wins.
        let content = line
            .heredocs
            .iter()
            .rev()
            .find(|(hm, _)| hm.name == m.name)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let content = if m.chomp {
            strip_leading_tabs(&content)
        } else {
            content
        };
        heredocs.push(HeredocFile {
            name: m.name,
            content,
            expand: m.expand,
        });
    }
    Ok(Transfer {
        sources,
        dest: dest.text,
        heredocs,
        json,
    })
}

fn copy(line: &Line<'_>, raw: &[Piece], args: &Piece, at: usize) -> Result<Copy, ParseError> {
    let f = line.flags(raw, flags::COPY, "COPY")?;
    let from = f.str("from");
    if let Some(from) = &from {
        let fat = raw
            .iter()
            .find(|r| r.text.starts_with("--from"))
            .map_or(at, |r| r.at);
        let expanded = Lexer::new(line.escape)
            .expand(from, &Vars::new())
            .map_err(|e| line.err(fat, ErrorKind::Expansion(e.message().to_string())))?;
        if expanded != *from && !line.nested {
            return Err(line.syntax(
                fat,
                "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
            ));
        }
    }
    let chown = f.str("chown");
    let t = sources_and_dest(line, args, "COPY", at)?;
    Ok(Copy {
        from,
        chown,
        chmod: f.str("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        exclude: f.many("exclude"),
        sources: t.sources,
        dest: t.dest,
        heredocs: t.heredocs,
        json: t.json,
    })
}

fn add(line: &Line<'_>, raw: &[Piece], args: &Piece, at: usize) -> Result<Add, ParseError> {
    let f = line.flags(raw, flags::ADD, "ADD")?;
    let chown = f.str("chown");
    let checksum = f.str("checksum");
    let t = sources_and_dest(line, args, "ADD", at)?;
    Ok(Add {
        chown,
        chmod: f.str("chmod"),
        link: f.bool("link").unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir").unwrap_or(false),
        checksum,
        unpack: f.bool("unpack"),
        exclude: f.many("exclude"),
        sources: t.sources,
        dest: t.dest,
        heredocs: t.heredocs,
        json: t.json,
    })
}

/// ENV and LABEL: `key value` (old form, one pair, the value is the rest of the line) or
/// `key=value ...`, decided by whether the first word has an `=`.
fn name_values(
    line: &Line<'_>,
    args: &Piece,
    keyword: &'static str,
    at: usize,
) -> Result<Vec<KeyValue>, ParseError> {
    let words = parse_words(args, line.escape);
    let Some(first) = words.first() else {
        return Err(line.err(at, missing(keyword, "at least one argument")));
    };
    if !first.text.contains('=') {
        let s = args.text.as_str();
        let key_end = s.find(is_ws).unwrap_or(s.len());
        let value_at = key_end + s[key_end..].len() - s[key_end..].trim_start_matches(is_ws).len();
        if value_at >= s.len() {
            return Err(line.syntax(at, format!("{keyword} must have two arguments")));
        }
        let key = Piece {
            text: s[..key_end].to_string(),
            at: args.at,
        };
        let value = Piece {
            text: s[value_at..].to_string(),
            at: args.at + value_at,
        };
        return Ok(vec![KeyValue {
            key: key.text,
            value: value.text,
            legacy: true,
        }]);
    }
    let mut pairs = Vec::with_capacity(words.len());
    for w in &words {
        let Some((k, v)) = w.text.split_once('=') else {
            return Err(line.syntax(
                w.at,
                format!(
                    "Syntax error - can't find = in {:?}. Must be of the form: name=value",
                    w.text
                ),
            ));
        };
        if k.is_empty() {
            return Err(line.syntax(w.at, format!("{keyword} names can not be blank")));
        }
        pairs.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
            legacy: false,
        });
    }
    Ok(pairs)
}

fn arg(line: &Line<'_>, args: &Piece, at: usize) -> Result<Vec<ArgDecl>, ParseError> {
    let words = parse_words(args, line.escape);
    if words.is_empty() {
        return Err(line.err(at, missing("ARG", "at least one argument")));
    }
    words
        .into_iter()
        .map(|w| match w.text.split_once('=') {
            Some(("", _)) => Err(line.syntax(w.at, "ARG names can not be blank")),
            Some((k, v)) => Ok(ArgDecl {
                name: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: w.text,
                default: None,
            }),
        })
        .collect()
}

fn healthcheck(
    line: &Line<'_>,
    raw: &[Piece],
    args: &Piece,
    at: usize,
) -> Result<Healthcheck, ParseError> {
    let s = args.text.as_str();
    let sep = s.find(char::is_whitespace).unwrap_or(s.len());
    if sep == 0 {
        return Err(line.err(at, missing("HEALTHCHECK", "at least one argument")));
    }
    let typ = s[..sep].to_ascii_uppercase();
    let next = sep + s[sep..].len() - s[sep..].trim_start().len();
    let rest = Piece {
        text: s[next..].to_string(),
        at: args.at + next,
    };
    match typ.as_str() {
        // BuildKit does not look at flags given with NONE; neither do we.
        "NONE" if rest.text.is_empty() => Ok(Healthcheck::None),
        "NONE" => Err(line.syntax(rest.at, "HEALTHCHECK NONE takes no arguments")),
        "CMD" => {
            let f = line.flags(raw, flags::HEALTHCHECK, "HEALTHCHECK")?;
            let cmd = command(line, &rest, "HEALTHCHECK")?;
            if matches!(&cmd, Command::Shell(s) if s.is_empty())
                || matches!(&cmd, Command::Exec(v) if v.is_empty())
            {
                return Err(line.syntax(args.at, "Missing command after HEALTHCHECK CMD"));
            }
            let flag_at = |name: &str| {
                raw.iter()
                    .find(|r| r.text[2..].starts_with(name))
                    .map_or(at, |r| r.at)
            };
            let duration = |name: &str| -> Result<Option<Duration>, ParseError> {
                let Some(v) = f.str(name) else {
                    return Ok(None);
                };
                let nanos = parse_go_duration(&v)
                    .map_err(|e| line.syntax(flag_at(name), format!("--{name}: {e}")))?;
                if nanos == 0 {
                    return Ok(Some(Duration::ZERO));
                }
                if nanos < 1_000_000 {
                    return Err(line.syntax(
                        flag_at(name),
                        format!("Interval {name:?} cannot be less than 1ms"),
                    ));
                }
                Ok(Some(Duration::from_nanos(
                    u64::try_from(nanos).unwrap_or(u64::MAX),
                )))
            };
            let retries = match f.str("retries") {
                None => None,
                Some(v) => match v.parse::<i32>() {
                    Ok(n) if n < 0 => {
                        return Err(line.syntax(
                            flag_at("retries"),
                            format!("--retries cannot be negative ({n})"),
                        ))
                    }
                    Ok(n) => Some(n.unsigned_abs()),
                    Err(_) => {
                        return Err(line.syntax(
                            flag_at("retries"),
                            format!("--retries must be a number, not {v:?}"),
                        ))
                    }
                },
            };
            Ok(Healthcheck::Cmd {
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
                cmd,
            })
        }
        _ => Err(line.syntax(
            args.at,
            format!("Unknown type {:?} in HEALTHCHECK (try CMD)", &s[..sep]),
        )),
    }
}

fn onbuild(line: &Line<'_>, args: &Piece, at: usize) -> Result<Onbuild, ParseError> {
    if line.nested {
        return Err(line.syntax(at, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
    }
    if args.text.is_empty() {
        return Err(line.err(at, missing("ONBUILD", "at least one argument")));
    }
    let (trigger_kw, _) = split_command(&args.text);
    match trigger_kw.text.to_ascii_uppercase().as_str() {
        "ONBUILD" => {
            return Err(line.syntax(
                args.at,
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ))
        }
        kw @ ("FROM" | "MAINTAINER") => {
            return Err(line.syntax(args.at, format!("{kw} isn't allowed as an ONBUILD trigger")))
        }
        _ => {}
    }
    let inner = Line {
        nested: true,
        ..*line
    };
    let Parsed::Instr(trigger) = instruction(&inner, args)? else {
        unreachable!("FROM triggers are rejected above");
    };
    // The image config keeps the trigger as text: the joined line without ONBUILD, then each
    // heredoc's body and delimiter, which is what a child build parses back.
    let mut expression = strip_onbuild(&line.logical.text).to_string();
    for (m, body) in line.heredocs {
        expression.push('\n');
        expression.push_str(body);
        expression.push_str(&m.name);
    }
    Ok(Onbuild {
        trigger: Box::new(trigger),
        expression,
    })
}

/// Docker's `(?i)^\s*ONBUILD\s*` removal.
fn strip_onbuild(text: &str) -> &str {
    let re_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r');
    let t = text.trim_start_matches(re_space);
    match t.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => t[7..].trim_start_matches(re_space),
        _ => text,
    }
}
