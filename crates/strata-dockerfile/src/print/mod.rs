//! Instructions back to Dockerfile text.
//!
//! For a parsed instruction the text is canonical: [`crate::parse`] reads it back to the same
//! value. For an expanded one (from [`crate::StageScope::apply`]) it is what BuildKit writes in
//! an image's history (`ENV k=v w`, values unquoted), which is not meant to be parsed again.

#[cfg(test)]
mod tests;

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::{Command, From, Healthcheck, HeredocFile, Instruction, KeyValue, Stage};
use crate::values::format_duration;

/// A flag value as `extract_flags` reads it back: quoted when it has blanks, quotes or `\`.
fn flag(out: &mut Formatter<'_>, name: &str, value: &str) -> fmt::Result {
    write!(out, " --{name}=")?;
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || "\"'\\".contains(c))
    {
        out.write_char('"')?;
        for c in value.chars() {
            if c == '"' || c == '\\' {
                out.write_char('\\')?;
            }
            out.write_char(c)?;
        }
        out.write_char('"')
    } else {
        out.write_str(value)
    }
}

fn opt_flag(out: &mut Formatter<'_>, name: &str, value: &Option<String>) -> fmt::Result {
    match value {
        Some(v) => flag(out, name, v),
        None => Ok(()),
    }
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).expect("strings serialize")
}

/// The arguments after the keyword and flags. Docker reads leading `--words` of any
/// instruction as flags, so arguments that start like one get a `--` (end of flags) first.
fn rest(out: &mut Formatter<'_>, text: &str) -> fmt::Result {
    if text.starts_with("--") {
        write!(out, " -- {text}")
    } else {
        write!(out, " {text}")
    }
}

fn command(out: &mut Formatter<'_>, c: &Command) -> fmt::Result {
    match c {
        Command::Exec(argv) => write!(out, " {}", json(argv)),
        Command::Shell(s) if s.is_empty() => Ok(()),
        Command::Shell(s) => rest(out, s),
    }
}

/// After `HEALTHCHECK ... CMD` nothing is read as a flag any more.
fn health_command(out: &mut Formatter<'_>, c: &Command) -> fmt::Result {
    match c {
        Command::Shell(s) => write!(out, " {s}"),
        exec => command(out, exec),
    }
}

fn pairs(out: &mut Formatter<'_>, kw: &str, kv: &[KeyValue]) -> fmt::Result {
    out.write_str(kw)?;
    let text = match kv {
        [p] if p.legacy => format!("{} {}", p.key, p.value),
        _ => kv
            .iter()
            .map(|p| format!("{}={}", p.key, p.value))
            .collect::<Vec<_>>()
            .join(" "),
    };
    rest(out, &text)
}

/// Sources, heredoc markers, destination, then the heredoc bodies.
fn transfer(
    out: &mut Formatter<'_>,
    sources: &[String],
    heredocs: &[HeredocFile],
    dest: &str,
    json_form: bool,
) -> fmt::Result {
    let markers = heredocs.iter().map(|h| {
        if h.expand {
            format!("<<{}", h.name)
        } else {
            format!("<<\"{}\"", h.name)
        }
    });
    let words: Vec<String> = sources
        .iter()
        .cloned()
        .chain(markers)
        .chain(std::iter::once(dest.to_string()))
        .collect();
    if json_form {
        write!(out, " {}", json(&words))?;
    } else {
        rest(out, &words.join(" "))?;
    }
    heredocs
        .iter()
        .try_for_each(|h| write!(out, "\n{}{}", h.content, h.name))
}

impl Display for Instruction {
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run(r) => {
                out.write_str("RUN")?;
                r.mounts.iter().try_for_each(|m| flag(out, "mount", m))?;
                opt_flag(out, "network", &r.network)?;
                opt_flag(out, "security", &r.security)?;
                command(out, &r.command)?;
                r.heredocs
                    .iter()
                    .try_for_each(|h| write!(out, "\n{}{}", h.content, h.name))
            }
            Self::Cmd(c) | Self::Entrypoint(c) => {
                out.write_str(self.keyword())?;
                command(out, c)
            }
            Self::Copy(c) => {
                out.write_str("COPY")?;
                opt_flag(out, "from", &c.from)?;
                opt_flag(out, "chown", &c.chown)?;
                opt_flag(out, "chmod", &c.chmod)?;
                if c.link {
                    out.write_str(" --link")?;
                }
                if c.parents {
                    out.write_str(" --parents")?;
                }
                c.exclude.iter().try_for_each(|e| flag(out, "exclude", e))?;
                transfer(out, &c.sources, &c.heredocs, &c.dest, c.json)
            }
            Self::Add(a) => {
                out.write_str("ADD")?;
                opt_flag(out, "chown", &a.chown)?;
                opt_flag(out, "chmod", &a.chmod)?;
                if a.link {
                    out.write_str(" --link")?;
                }
                if a.keep_git_dir {
                    out.write_str(" --keep-git-dir")?;
                }
                opt_flag(out, "checksum", &a.checksum)?;
                if let Some(u) = a.unpack {
                    write!(out, " --unpack={u}")?;
                }
                a.exclude.iter().try_for_each(|e| flag(out, "exclude", e))?;
                transfer(out, &a.sources, &a.heredocs, &a.dest, a.json)
            }
            Self::Env(kv) => pairs(out, "ENV", kv),
            Self::Label(kv) => pairs(out, "LABEL", kv),
            Self::Arg(decls) => {
                out.write_str("ARG")?;
                let words: Vec<String> = decls
                    .iter()
                    .map(|d| match &d.default {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    })
                    .collect();
                rest(out, &words.join(" "))
            }
            Self::Maintainer(s) | Self::User(s) | Self::Workdir(s) | Self::Stopsignal(s) => {
                out.write_str(self.keyword())?;
                rest(out, s)
            }
            Self::Expose(ports) => {
                out.write_str("EXPOSE")?;
                rest(out, &ports.join(" "))
            }
            Self::Volume(v) => write!(out, "VOLUME {}", json(v)),
            Self::Shell(v) => write!(out, "SHELL {}", json(v)),
            Self::Healthcheck(Healthcheck::None) => out.write_str("HEALTHCHECK NONE"),
            Self::Healthcheck(Healthcheck::Cmd {
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
                cmd,
            }) => {
                out.write_str("HEALTHCHECK")?;
                for (name, d) in [
                    ("interval", interval),
                    ("timeout", timeout),
                    ("start-period", start_period),
                    ("start-interval", start_interval),
                ] {
                    if let Some(d) = d {
                        write!(out, " --{name}={}", format_duration(*d))?;
                    }
                }
                if let Some(r) = retries {
                    write!(out, " --retries={r}")?;
                }
                out.write_str(" CMD")?;
                health_command(out, cmd)
            }
            Self::Onbuild(o) => write!(out, "ONBUILD {}", o.expression),
        }
    }
}

impl Display for From {
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        out.write_str("FROM")?;
        opt_flag(out, "platform", &self.platform)?;
        write!(out, " {}", self.image)
    }
}

impl Display for Stage {
    /// The stage as Dockerfile text: its FROM line, then one instruction per line.
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        write!(out, "{}", self.from.node)?;
        if let Some(n) = &self.name {
            write!(out, " AS {n}")?;
        }
        self.instructions
            .iter()
            .try_for_each(|i| write!(out, "\n{}", i.node))
    }
}
