//! The parsed Dockerfile: stages and typed instructions.
//!
//! Words that Docker expands are kept exactly as written (quotes, `$` and escapes included);
//! [`crate::StageScope`] expands them when the builder reaches the instruction, because their
//! values depend on build arguments and on the base image's environment.

use std::time::Duration;

/// Where an instruction starts (line and column of its keyword, 1-based) and the last
/// physical line it spans (continuations and heredoc bodies included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
}

/// A node with its position and the exact source text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub span: Span,
    /// From the keyword to the end of the instruction's last line, comments inside
    /// continuations and heredoc bodies included, without the final line ending.
    pub original: String,
    pub node: T,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `\` unless an `# escape=` directive chose `` ` ``.
    pub escape: char,
    /// The `# syntax=` directive's value, recorded but not acted on.
    pub syntax: Option<String>,
    /// The `# check=` directive's value, recorded but not acted on.
    pub check: Option<String>,
    /// ARG instructions before the first FROM; visible to FROM lines only.
    pub global_args: Vec<Spanned<Vec<ArgDecl>>>,
    pub stages: Vec<Stage>,
    /// What Docker warns about but accepts (empty continuation lines).
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: Spanned<From>,
    /// The `AS` name, lowercased as Docker does (stage names are case-insensitive).
    pub name: Option<String>,
    pub instructions: Vec<Spanned<Instruction>>,
}

/// `FROM [--platform=P] image [AS name]`; `image` and `platform` are expanded with the
/// global scope ([`crate::GlobalScope`]) before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: String,
    pub platform: Option<String>,
}

/// `name` or `name=default` of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// One `key=value` of ENV or LABEL, both unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the old `ENV key value` form (one pair, value is the rest of the line).
    pub legacy: bool,
}

/// The argument of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A JSON array: run as is, never expanded by the builder.
    Exec(Vec<String>),
    /// A command line for the stage's SHELL (default `/bin/sh -c`); the shell, not the
    /// builder, expands it.
    Shell(String),
}

/// A heredoc attached to a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// Every line between the opening line and the delimiter, each with its line ending, as
    /// written (leading tabs kept even for `<<-`; see [`Heredoc::body`]).
    pub content: String,
    /// `<<-`: leading tabs are stripped from every line.
    pub chomp: bool,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`).
    pub expand: bool,
}

impl Heredoc {
    /// The content with `<<-` tab stripping applied.
    pub fn body(&self) -> String {
        if self.chomp {
            strip_leading_tabs(&self.content)
        } else {
            self.content.clone()
        }
    }
}

pub(crate) fn strip_leading_tabs(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// A file that COPY or ADD creates from a heredoc: `COPY <<EOF /etc/motd` writes a file named
/// `EOF` into `/etc/motd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocFile {
    /// The delimiter word; it is the file's name.
    pub name: String,
    /// The file's content, `<<-` tab stripping already applied, not yet expanded.
    pub content: String,
    /// Expand `$V` in the content (unquoted delimiter) with [`crate::Lexer::heredoc`].
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// `--mount=` values as written (a CSV of `key=value`), in order.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
}

/// What a RUN step actually executes, after BuildKit's heredoc rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Exec form: this argv, no shell.
    Exec(Vec<String>),
    /// Run `SHELL + [script]` (e.g. `/bin/sh -c script`).
    Shell(String),
    /// `RUN <<EOF` whose body starts with `#!`: write the body to a file with mode 0755
    /// (BuildKit mounts it read-only at `/dev/pipes/<name>`) and execute that file directly.
    Executable { name: String, content: String },
}

impl Run {
    pub fn script(&self) -> RunScript {
        let line = match &self.command {
            Command::Exec(argv) => return RunScript::Exec(argv.clone()),
            Command::Shell(line) => line,
        };
        let Some(first) = self.heredocs.first() else {
            return RunScript::Shell(line.clone());
        };
        // `RUN <<EOF` alone: the heredoc is the script. Otherwise (`RUN python3 <<EOF`, or
        // several heredocs) the shell gets the line and the bodies and does heredocs itself.
        if crate::heredoc::marker(line).is_some() {
            // BuildKit looks for the shebang before stripping `<<-` tabs.
            if first.content.starts_with("#!") {
                return RunScript::Executable {
                    name: first.name.clone(),
                    content: first.body(),
                };
            }
            return RunScript::Shell(first.body());
        }
        let mut full = line.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        RunScript::Shell(full)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `--from=`: a stage name, a stage index, or an image reference. Never expanded (BuildKit
    /// refuses variables here).
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// Context (or `--from`) paths, heredoc markers removed.
    pub sources: Vec<String>,
    pub dest: String,
    /// Files made from heredocs; BuildKit copies them after `sources`.
    pub heredocs: Vec<HeredocFile>,
    /// Written as a JSON array.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    /// `--unpack`: `None` when not given (BuildKit then unpacks local archives only).
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
    pub sources: Vec<String>,
    pub dest: String,
    pub heredocs: Vec<HeredocFile>,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any healthcheck inherited from the base image.
    None,
    Cmd {
        /// `None` when the flag was not given; `Some(ZERO)` when given as 0. Both mean
        /// "default" in an image config.
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
        cmd: Command,
    },
}

impl Healthcheck {
    /// The image config's `Healthcheck.Test`: `["NONE"]`, `["CMD", argv...]` or
    /// `["CMD-SHELL", line]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Self::None => vec!["NONE".into()],
            Self::Cmd {
                cmd: Command::Exec(argv),
                ..
            } => std::iter::once("CMD".to_string())
                .chain(argv.iter().cloned())
                .collect(),
            Self::Cmd {
                cmd: Command::Shell(line),
                ..
            } => vec!["CMD-SHELL".into(), line.clone()],
        }
    }
}

/// `ONBUILD <instruction>`: stored in the image config, fired by a later build's FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    pub trigger: Box<Instruction>,
    /// The text Docker stores in the image config's `OnBuild` list (the trigger as written,
    /// continuations joined, heredoc bodies appended); [`crate::parse_trigger`] reads it back.
    pub expression: String,
}

/// One instruction of a stage. FROM is not here: it starts a [`Stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Copy(Copy),
    Add(Add),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Label(Vec<KeyValue>),
    /// Not expanded.
    Maintainer(String),
    /// Port words as written; expand with [`crate::StageScope::expand_words`] each, then
    /// [`crate::parse_ports`].
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    Stopsignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    Onbuild(Onbuild),
}

impl Instruction {
    /// The upper-case keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Env(_) => "ENV",
            Self::Arg(_) => "ARG",
            Self::Label(_) => "LABEL",
            Self::Maintainer(_) => "MAINTAINER",
            Self::Expose(_) => "EXPOSE",
            Self::User(_) => "USER",
            Self::Workdir(_) => "WORKDIR",
            Self::Volume(_) => "VOLUME",
            Self::Stopsignal(_) => "STOPSIGNAL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
            Self::Onbuild(_) => "ONBUILD",
        }
    }
}

impl Stage {
    /// The expressions of this stage's ONBUILD instructions, in order: what goes into the
    /// built image's `OnBuild` config, and the triggers a later `FROM <this stage>` fires.
    pub fn onbuild_expressions(&self) -> Vec<String> {
        self.instructions
            .iter()
            .filter_map(|i| match &i.node {
                Instruction::Onbuild(o) => Some(o.expression.clone()),
                _ => None,
            })
            .collect()
    }
}

/// What a FROM or `COPY --from` refers to, once expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    /// The empty image.
    Scratch,
    /// An earlier stage, by index into [`Dockerfile::stages`].
    Stage(usize),
    /// An image reference to resolve.
    Image(String),
}

impl Dockerfile {
    /// The stage at `index`'s base: the latest earlier stage with that name (names are
    /// case-insensitive; FROM cannot use indexes), else `scratch`, else an image. A stage
    /// name wins over `scratch`, as in BuildKit.
    pub fn base_of(&self, index: usize, expanded_image: &str) -> BaseRef {
        match self.stage_named(expanded_image, index) {
            Some(i) => BaseRef::Stage(i),
            None if expanded_image == "scratch" => BaseRef::Scratch,
            None => BaseRef::Image(expanded_image.to_string()),
        }
    }

    /// What `COPY --from=<from>` in stage `index` reads from: a stage by name or by index
    /// (which must be earlier than `index`), else an image. An index that is not an earlier
    /// stage is an error, as in BuildKit.
    pub fn copy_source(&self, index: usize, from: &str) -> Result<BaseRef, String> {
        if let Ok(n) = from.parse::<i64>() {
            return match usize::try_from(n) {
                Ok(n) if n < index => Ok(BaseRef::Stage(n)),
                Ok(n) if n < self.stages.len() => Err(format!(
                    "cannot copy from stage {n}, it needs to be defined before the current stage {index}"
                )),
                _ => Err(format!("invalid stage index {n}")),
            };
        }
        if let Some(i) = self.stage_named(from, index) {
            return Ok(BaseRef::Stage(i));
        }
        if let Some(i) = self.stage_named(from, self.stages.len()) {
            return Err(format!(
                "cannot copy from stage {:?}, it needs to be defined before the current stage {index}",
                self.stages[i].name.as_deref().unwrap_or_default()
            ));
        }
        Ok(BaseRef::Image(from.to_string()))
    }

    fn stage_named(&self, name: &str, before: usize) -> Option<usize> {
        let name = name.to_ascii_lowercase();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .rposition(|s| s.name.as_deref() == Some(name.as_str()))
    }
}
