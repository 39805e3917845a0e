//! The Dockerfile front end of `strata build`: everything about a Dockerfile that can be
//! decided from its text, the build arguments and a base image's environment.
//!
//! This crate owns:
//! - **parsing** ([`parse`]): parser directives (`escape`; `syntax` and `check` recorded and
//!   ignored), line continuations, comments, heredocs, exec and shell forms, flags, and one
//!   typed [`Instruction`] per line with its [`Span`] and original text, grouped into
//!   [`Stage`]s; syntax errors as [`ParseError`] with line, column and the offending line;
//! - **word expansion** ([`expand`], [`expand_words`], [`Lexer`]) with BuildKit's shell-lexer
//!   semantics (`$V`, `${V:-x}`, `${V#p}`, quotes, the escape character);
//! - **scoping** ([`BuildArgs`], [`GlobalScope`], [`StageScope`]): which ARG and ENV values an
//!   instruction sees, which fields Docker expands ([`StageScope::expand_instruction`]), the
//!   environment and cache-relevant arguments of a RUN step, and unused build arguments;
//! - **`.dockerignore`** matching ([`DockerIgnore`]) with moby's patternmatcher semantics;
//! - checks of expanded values Docker makes: ports ([`parse_ports`]), modes
//!   ([`parse_chmod`]), stop signals ([`parse_signal`]), image references ([`ImageRef`]).
//!
//! **Limits** ([`limits`]): a Dockerfile is at most 16 MiB, a physical line (of a Dockerfile or
//! a `.dockerignore`) at most 65,535 bytes (BuildKit's and moby's own limit), an instruction with
//! its continuations at most 1 MiB, a heredoc body at most 8 MiB, and there are at most 10,000
//! instructions; one expansion produces at most 16 MiB and a stage's ARG and ENV values together
//! hold at most 16 MiB; a `${V#p}`-style pattern match covers at most 4 M pattern × value cells,
//! a `${V#p}` or wildcard `.dockerignore` pattern has at most 1,024 characters, and
//! substitutions nest at most 128 deep. Past one, parsing or expansion fails with a message
//! naming the limit. No Dockerfile that builds with Docker comes near them.
//!
//! It does not read files, resolve or pull images, walk the build context, or execute
//! anything: the builder (`strata-build`) passes text in and drives the state machines. Every
//! function here is pure, so the parser can be fuzzed (`fuzz/`).
//!
//! Where Docker's two builders disagree, this follows BuildKit, Docker's default builder.
//!
//! How a builder drives it, for one stage:
//!
//! ```
//! use strata_dockerfile::*;
//!
//! let df = parse("ARG TAG=3.20\nFROM alpine:$TAG\nARG USER=app\nRUN adduser $USER\nUSER $USER\n")?;
//! let build_args: BuildArgs = [("USER", "web")].into_iter().collect();
//! let amd64 = Platform::new("linux", "amd64", None);
//! let global = GlobalScope::new(&df, &build_args, &amd64, &amd64, None)?;
//! let (image, _platform) = global.expand_from(&df.stages[0].from.node)?;
//! assert_eq!(image, "alpine:3.20");
//!
//! // The base image's config Env, as the builder read it from the image.
//! let mut scope = StageScope::new(&["PATH=/usr/bin:/bin"], &global, &build_args);
//! for step in &df.stages[0].instructions {
//!     match scope.apply(&step.node).map_err(|e| e.at(step.span))? {
//!         Instruction::Run(run) => {
//!             // The shell expands $USER; the builder passes the ARG in the environment.
//!             assert_eq!(run.script(), RunScript::Shell("adduser $USER".into()));
//!             assert!(scope.run_env().env.contains(&("USER".into(), "web".into())));
//!         }
//!         Instruction::User(user) => assert_eq!(user, "web"),
//!         _ => {}
//!     }
//! }
//! assert_eq!(scope.image_env(), ["PATH=/usr/bin:/bin"]);
//! assert!(build_args.unused().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ast;
mod error;
mod expand;
mod flags;
mod heredoc;
mod ignore;
pub mod limits;
mod parse;
mod print;
mod scope;
mod shell;
mod source;
mod suggest;
mod values;
mod vars;
mod words;

pub use ast::{
    Add, ArgDecl, BaseRef, Command, Copy, Dockerfile, From, Healthcheck, Heredoc, HeredocFile,
    Instruction, KeyValue, Onbuild, Run, RunScript, Span, Spanned, Stage, Warning,
};
pub use error::{ErrorKind, ExpandError, ParseError};
pub use ignore::{BuildFiles, DockerIgnore, IgnoreError, Walk};
pub use parse::{parse, parse_trigger};
pub use scope::{
    BuildArgs, GlobalScope, Platform, RunEnv, StageScope, DEFAULT_PATH, PLATFORM_ARGS, PROXY_ARGS,
};
pub use shell::{expand, expand_words, Lexer};
pub use values::{parse_chmod, parse_ports, parse_signal, ExposedPort, ImageRef, Protocol};
pub use vars::Vars;
