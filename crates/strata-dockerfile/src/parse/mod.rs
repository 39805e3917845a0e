//! The parser: text → [`Dockerfile`].

mod instr;
#[cfg(test)]
mod tests;

use crate::ast::{Dockerfile, Instruction, Span, Spanned, Stage};
use crate::error::{ErrorKind, ParseError};
use crate::heredoc::{markers_in_line, read_bodies};
use crate::limits::MAX_INSTRUCTIONS;
use crate::source::{next_logical, Directives, Logical, Source};
use crate::words::{extract_flags, parse_json, split_command, Json, Piece};
use instr::{Line, Parsed};

/// Parses a whole Dockerfile.
///
/// Checks everything that can be checked without build arguments or base images: syntax,
/// flags, argument counts, heredocs, JSON forms, stage names, and that every word Docker will
/// expand is well-formed. Values are not expanded (see [`crate::StageScope`]).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let src = Source::checked(text)?;
    let mut directives = Directives::default();
    let mut warnings = Vec::new();
    let mut pos = 0;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut first_line = None;
    let mut count = 0;
    while let Some(logical) = next_logical(&src, &mut pos, &mut directives, &mut warnings)? {
        count += 1;
        if count > MAX_INSTRUCTIONS {
            let (line, column) = logical.start();
            let m = format!(
                "instruction {count} (line {line}): a Dockerfile has at most {MAX_INSTRUCTIONS} instructions in strata (MAX_INSTRUCTIONS)"
            );
            return Err(src.error(line, column, ErrorKind::Limit(m)));
        }
        let (meta, parsed) = read_instruction(&src, &mut pos, &logical, directives.escape)?;
        first_line.get_or_insert(meta.span.line);
        match parsed {
            Parsed::From(from, name) => stages.push(Stage {
                from: meta.with(from),
                name,
                instructions: Vec::new(),
            }),
            Parsed::Instr(i) => match (stages.last_mut(), i) {
                (Some(stage), i) => stage.instructions.push(meta.with(i)),
                (None, Instruction::Arg(decls)) => global_args.push(meta.with(decls)),
                (None, other) => {
                    return Err(src.error(
                        meta.span.line,
                        meta.span.column,
                        ErrorKind::InstructionBeforeFrom {
                            instruction: other.keyword(),
                        },
                    ))
                }
            },
        }
    }
    let Some(first_line) = first_line else {
        return Err(src.error(1, 1, ErrorKind::Empty));
    };
    if stages.is_empty() {
        return Err(src.error(first_line, 1, ErrorKind::NoFrom));
    }
    Ok(Dockerfile {
        escape: directives.escape,
        syntax: directives.syntax,
        check: directives.check,
        global_args,
        stages,
        warnings,
    })
}

/// Parses an ONBUILD trigger as stored in a base image's config (`OnBuild` entries, or
/// [`crate::Onbuild::expression`]) into the instruction to run at the start of the stage.
///
/// Docker parses triggers with default directives, so the escape character is `\` whatever
/// the Dockerfile that stored them used. Positions in errors are relative to the trigger
/// text; report them against the FROM line that fired it.
pub fn parse_trigger(expression: &str) -> Result<Spanned<Instruction>, ParseError> {
    let src = Source::checked(expression)?;
    let mut directives = Directives::default();
    let mut pos = 0;
    let Some(logical) = next_logical(&src, &mut pos, &mut directives, &mut Vec::new())? else {
        return Err(src.error(1, 1, ErrorKind::Syntax("empty ONBUILD trigger".into())));
    };
    let (meta, parsed) = read_instruction(&src, &mut pos, &logical, '\\')?;
    if next_logical(&src, &mut pos, &mut directives, &mut Vec::new())?.is_some() {
        return Err(src.error(
            meta.span.end_line + 1,
            1,
            ErrorKind::Syntax("an ONBUILD trigger must be a single instruction".into()),
        ));
    }
    let trigger = match parsed {
        Parsed::Instr(Instruction::Onbuild(_)) => "ONBUILD",
        Parsed::From(..) => "FROM",
        Parsed::Instr(i) => return Ok(meta.with(i)),
    };
    Err(src.error(
        meta.span.line,
        meta.span.column,
        ErrorKind::Syntax(format!("{trigger} isn't allowed as an ONBUILD trigger")),
    ))
}

struct Meta {
    span: Span,
    original: String,
}

impl Meta {
    fn with<T>(self, node: T) -> Spanned<T> {
        Spanned {
            span: self.span,
            original: self.original,
            node,
        }
    }
}

/// Whether BuildKit reads heredocs for this line: RUN, COPY and ADD (also as an ONBUILD
/// trigger) in shell form.
fn heredoc_capable(piece: &Piece, depth: usize) -> bool {
    let (cmd, rest) = split_command(&piece.text);
    let (_, args) = extract_flags(&rest);
    match cmd.text.to_ascii_lowercase().as_str() {
        "run" | "copy" | "add" => !matches!(parse_json(&args.text), Json::Strings(_)),
        "onbuild" if depth == 0 => heredoc_capable(&args, 1),
        _ => false,
    }
}

fn read_instruction(
    src: &Source<'_>,
    pos: &mut usize,
    logical: &Logical,
    escape: char,
) -> Result<(Meta, Parsed), ParseError> {
    let whole = Piece {
        text: logical.text.clone(),
        at: 0,
    };
    let start = logical.start();
    let markers = if heredoc_capable(&whole, 0) {
        markers_in_line(&logical.text)
    } else {
        Vec::new()
    };
    let bodies = read_bodies(src, pos, &markers, start)?;
    let heredocs: Vec<_> = markers.into_iter().zip(bodies).collect();
    let line = Line {
        src,
        logical,
        escape,
        heredocs: &heredocs,
        nested: false,
    };
    let parsed = instr::instruction(&line, &whole)?;
    let first = src.lines[logical.first];
    let content = src.content(logical.first);
    let lead = content.len() - content.trim_start().len();
    let last = src.lines[*pos - 1];
    let meta = Meta {
        span: Span {
            line: start.0,
            column: start.1,
            end_line: *pos,
        },
        original: src.text[first.start + lead..last.end].to_string(),
    };
    Ok((meta, parsed))
}
