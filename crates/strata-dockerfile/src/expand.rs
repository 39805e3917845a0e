//! Which fields of which instruction Docker expands, and how.
//!
//! Expanded (quotes removed, one word each): COPY/ADD sources, destination, `--chown` and
//! `--chmod` (BuildKit's `Expand` methods do both), ADD `--checksum`, ENV and LABEL keys and values, WORKDIR, USER, VOLUME entries, STOPSIGNAL;
//! EXPOSE words are expanded and split; COPY/ADD heredoc bodies with an unquoted delimiter are
//! expanded with quotes left alone. Not expanded: RUN, CMD, ENTRYPOINT and HEALTHCHECK (the
//! shell, if any, does it), SHELL, MAINTAINER, ONBUILD (its trigger is expanded when it fires),
//! COPY `--from` (BuildKit refuses variables there) and `--exclude`.

use crate::ast::{Add, Copy, HeredocFile, Instruction, KeyValue};
use crate::error::ExpandError;
use crate::shell::Lexer;
use crate::vars::Vars;

pub(crate) fn instruction(
    lex: Lexer,
    vars: &Vars,
    i: &Instruction,
) -> Result<Instruction, ExpandError> {
    let one = |w: &str| lex.expand(w, vars);
    let opt = |w: &Option<String>| w.as_deref().map(one).transpose();
    let all = |ws: &[String]| ws.iter().map(|w| one(w)).collect::<Result<Vec<_>, _>>();
    let heredocs = |hs: &[HeredocFile]| {
        hs.iter()
            .map(|h| {
                let content = if h.expand {
                    Lexer::heredoc().expand(&h.content, vars)?
                } else {
                    h.content.clone()
                };
                Ok(HeredocFile {
                    content,
                    ..h.clone()
                })
            })
            .collect::<Result<Vec<_>, ExpandError>>()
    };
    Ok(match i {
        Instruction::Copy(c) => Instruction::Copy(Copy {
            chown: opt(&c.chown)?,
            chmod: opt(&c.chmod)?,
            sources: all(&c.sources)?,
            dest: one(&c.dest)?,
            heredocs: heredocs(&c.heredocs)?,
            ..c.clone()
        }),
        Instruction::Add(a) => Instruction::Add(Add {
            chown: opt(&a.chown)?,
            chmod: opt(&a.chmod)?,
            checksum: opt(&a.checksum)?,
            sources: all(&a.sources)?,
            dest: one(&a.dest)?,
            heredocs: heredocs(&a.heredocs)?,
            ..a.clone()
        }),
        Instruction::Env(kv) => Instruction::Env(pairs(lex, vars, kv)?),
        Instruction::Label(kv) => Instruction::Label(pairs(lex, vars, kv)?),
        Instruction::Workdir(w) => Instruction::Workdir(one(w)?),
        Instruction::User(u) => Instruction::User(one(u)?),
        Instruction::Stopsignal(s) => Instruction::Stopsignal(one(s)?),
        Instruction::Volume(v) => Instruction::Volume(all(v)?),
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                out.extend(lex.expand_words(p, vars)?);
            }
            Instruction::Expose(out)
        }
        Instruction::Arg(_)
        | Instruction::Run(_)
        | Instruction::Cmd(_)
        | Instruction::Entrypoint(_)
        | Instruction::Healthcheck(_)
        | Instruction::Shell(_)
        | Instruction::Maintainer(_)
        | Instruction::Onbuild(_) => i.clone(),
    })
}

/// Expands every key and value against the same variables: `ENV a=1 b=$a` gives `b` the value
/// `a` had before this instruction, as Docker does.
pub(crate) fn pairs(
    lex: Lexer,
    vars: &Vars,
    kv: &[KeyValue],
) -> Result<Vec<KeyValue>, ExpandError> {
    kv.iter()
        .map(|p| {
            Ok(KeyValue {
                key: lex.expand(&p.key, vars)?,
                value: lex.expand(&p.value, vars)?,
                legacy: p.legacy,
            })
        })
        .collect()
}

/// Splits a `RUN --mount=` value into its `key[=value]` fields (Go's CSV reader: commas
/// separate, a field may be double-quoted with `""` for a quote), lower-cases the keys as
/// BuildKit does, and expands each value.
pub(crate) fn mount_fields(
    lex: Lexer,
    vars: &Vars,
    raw: &str,
) -> Result<Vec<(String, Option<String>)>, ExpandError> {
    let mut fields = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(ExpandError::new(format!(
                            "unterminated quote in mount {raw:?}"
                        )))
                    }
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err(ExpandError::new(format!(
                    "extraneous text after a quoted field in mount {raw:?}"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(lex.expand(v, vars)?)),
            None => (field.trim().to_ascii_lowercase(), None),
        });
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}
