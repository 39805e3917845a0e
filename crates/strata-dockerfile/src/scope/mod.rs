//! ARG and ENV scoping, as a state machine the builder drives.
//!
//! BuildKit's model, which this follows:
//! - ARGs before the first FROM form the *global scope*. It also holds the predefined platform
//!   ARGs (`TARGETPLATFORM`, `BUILDARCH`, ...). Only FROM lines see it directly.
//! - A stage sees a global ARG only if it re-declares it (`ARG NAME`, no default), and then
//!   with the global value.
//! - A stage's `ARG NAME[=default]` takes the build argument if one was given, else its default
//!   (expanded), else the global value; from then on `$NAME` expands to it and RUN steps get it
//!   in their environment (not the image's), which is why it must be in their cache key.
//! - The stage's variables are one ordered table where the last assignment wins: an ENV after
//!   an ARG of the same name shadows it, and an ARG with a value after an ENV (or after the
//!   base image's ENV) overrides it — BuildKit's behaviour, unlike the legacy builder's.
//! - `HTTP_PROXY` and the other proxy variables given as build arguments reach RUN steps
//!   without any ARG, but neither expansion nor the cache key sees them.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;

use crate::ast::{ArgDecl, Dockerfile, From, Instruction, KeyValue};
use crate::error::ExpandError;
use crate::expand;
use crate::limits::{exceeded, MAX_VARIABLES_BYTES};
use crate::shell::Lexer;
use crate::vars::Vars;

/// The `PATH` BuildKit gives a stage whose base image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Proxy variables Docker accepts as build arguments without an ARG instruction.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Platform ARGs BuildKit defines in the global scope.
pub const PLATFORM_ARGS: [&str; 9] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// Build arguments BuildKit reads itself and never stores as variables.
const NON_ENV_ARGS: [&str; 2] = ["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Refuses a variable table over [`MAX_VARIABLES_BYTES`] (`ENV B=${A}${A}` chains double it
/// with every instruction).
fn bounded(vars: &Vars) -> Result<(), ExpandError> {
    if vars.bytes() > MAX_VARIABLES_BYTES {
        let m = exceeded(
            "the total of the ARG and ENV values",
            vars.bytes(),
            MAX_VARIABLES_BYTES,
            "MAX_VARIABLES_BYTES",
        );
        return Err(ExpandError::new(m));
    }
    Ok(())
}

fn predefined(name: &str) -> bool {
    PROXY_ARGS.contains(&name) || PLATFORM_ARGS.contains(&name) || name.starts_with("BUILDKIT_")
}

/// The user's `--build-arg` values, remembering which ones an ARG instruction consumed.
#[derive(Debug, Default)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
    used: Mutex<BTreeSet<String>>,
}

impl BuildArgs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// Adds one `--build-arg` as the CLI takes it: `K=V`, or `K` alone meaning "the value of
    /// `K` in the caller's environment" (`env` answers; unset means no build argument).
    pub fn add_cli(&mut self, arg: &str, env: impl Fn(&str) -> Option<String>) {
        match arg.split_once('=') {
            Some((k, v)) => self.set(k, v),
            None => {
                if let Some(v) = env(arg) {
                    self.set(arg, v);
                }
            }
        }
    }

    fn take(&self, name: &str) -> Option<&str> {
        let v = self.values.get(name)?;
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        Some(v)
    }

    /// Build arguments that no ARG instruction declared, predefined ones excepted: what
    /// Docker warns about (`One or more build-args [..] were not consumed`).
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        self.values
            .keys()
            .filter(|k| !used.contains(*k) && !predefined(k))
            .cloned()
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for BuildArgs {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut b = Self::new();
        iter.into_iter().for_each(|(k, v)| b.set(k, v));
        b
    }
}

/// An OCI platform (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// The global scope: predefined platform ARGs and the ARGs before the first FROM.
#[derive(Debug, Clone)]
pub struct GlobalScope {
    vars: Vars,
    escape: char,
}

impl GlobalScope {
    /// Evaluates the global ARGs in order: a build argument wins, else the default expanded
    /// with the ARGs before it; an ARG with neither stays unset. `target_stage` is the name of
    /// the stage being built (`TARGETSTAGE`).
    pub fn new(
        dockerfile: &Dockerfile,
        build_args: &BuildArgs,
        build: &Platform,
        target: &Platform,
        target_stage: Option<&str>,
    ) -> Result<Self, ExpandError> {
        let mut vars = Vars::new();
        let variant = |p: &Platform| p.variant.clone().unwrap_or_default();
        let defaults = [
            ("BUILDPLATFORM", build.to_string()),
            ("BUILDOS", build.os.clone()),
            ("BUILDARCH", build.architecture.clone()),
            ("BUILDVARIANT", variant(build)),
            ("TARGETPLATFORM", target.to_string()),
            ("TARGETOS", target.os.clone()),
            ("TARGETARCH", target.architecture.clone()),
            ("TARGETVARIANT", variant(target)),
            ("TARGETSTAGE", target_stage.unwrap_or_default().to_string()),
        ];
        for (k, v) in defaults {
            let v = build_args.take(k).map_or(v, str::to_string);
            vars.set(k, v);
        }
        let lex = Lexer::new(dockerfile.escape);
        for arg in &dockerfile.global_args {
            for d in &arg.node {
                let value = match (build_args.take(&d.name), &d.default) {
                    (Some(v), _) => Some(v.to_string()),
                    (None, Some(def)) => Some(lex.expand(def, &vars).map_err(|e| e.at(arg.span))?),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    vars.set(d.name.clone(), v);
                    bounded(&vars).map_err(|e| e.at(arg.span))?;
                }
            }
        }
        Ok(Self {
            vars,
            escape: dockerfile.escape,
        })
    }

    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    pub fn expand(&self, word: &str) -> Result<String, ExpandError> {
        Lexer::new(self.escape).expand(word, &self.vars)
    }

    /// A stage's base image and `--platform`, expanded. An empty image name is an error.
    pub fn expand_from(&self, from: &From) -> Result<(String, Option<String>), ExpandError> {
        let image = self.expand(&from.image)?;
        if image.is_empty() {
            return Err(ExpandError::new(format!(
                "base name ({}) should not be blank",
                from.image
            )));
        }
        let platform = from
            .platform
            .as_deref()
            .map(|p| self.expand(p))
            .transpose()?;
        if platform.as_deref() == Some("") {
            return Err(ExpandError::new(format!(
                "empty platform value from expression {}",
                from.platform.as_deref().unwrap_or_default()
            )));
        }
        Ok((image, platform))
    }
}

/// Parses `text` (which must parse) and expands its last stage's instructions in order, as a
/// build does, with no build arguments; the first expansion error with its position.
#[cfg(test)]
pub(crate) fn first_expansion_error(text: &str) -> String {
    let df = crate::parse(text).unwrap_or_else(|e| panic!("{e}"));
    let args = BuildArgs::new();
    let p = Platform::new("linux", "amd64", None);
    let global = GlobalScope::new(&df, &args, &p, &p, None).expect("global scope");
    let mut scope = StageScope::new::<&str>(&[], &global, &args);
    for i in &df.stages.last().expect("a stage").instructions {
        if let Err(e) = scope.apply(&i.node) {
            return e.at(i.span).to_string();
        }
    }
    panic!("{text:?} expanded without an error")
}

/// What a RUN step runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnv {
    /// The process environment in order: image ENV, stage ENV and ARG values. It must be part
    /// of the step's cache key.
    pub env: Vec<(String, String)>,
    /// Each ARG in effect once, with its value ("" if unset): what BuildKit writes in the
    /// history entry (`RUN |2 A=1 B= /bin/sh -c ...`).
    pub args: Vec<(String, String)>,
    /// Proxy variables from build arguments that no ARG or ENV set: in the process
    /// environment, but not in the cache key nor in history, as in Docker.
    pub proxy: Vec<(String, String)>,
}

impl RunEnv {
    /// `env` then `proxy`, as `NAME=value` strings for the process.
    pub fn process_env(&self) -> Vec<String> {
        self.env
            .iter()
            .chain(&self.proxy)
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// BuildKit's history prefix for the ARGs (`|2 A=1 B=2`), empty without ARGs.
    pub fn history_prefix(&self) -> String {
        if self.args.is_empty() {
            return String::new();
        }
        let mut s = format!("|{}", self.args.len());
        for (k, v) in &self.args {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }
}

/// One stage's variables while the builder walks its instructions.
#[derive(Debug, Clone)]
pub struct StageScope<'a> {
    global: &'a GlobalScope,
    build_args: &'a BuildArgs,
    env: Vars,
    image_env: Vec<(String, String)>,
    args: Vec<(String, Option<String>)>,
}

impl<'a> StageScope<'a> {
    /// A stage on a base image whose config has `base_env` (`NAME=value` strings; empty for
    /// `scratch`). Like BuildKit, adds [`DEFAULT_PATH`] when the base has no `PATH`.
    pub fn new<S: AsRef<str>>(
        base_env: &[S],
        global: &'a GlobalScope,
        build_args: &'a BuildArgs,
    ) -> Self {
        let mut image_env: Vec<(String, String)> = Vars::from_env_strings(base_env)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !image_env.iter().any(|(k, _)| k == "PATH") {
            image_env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let env = image_env.iter().cloned().collect();
        Self {
            global,
            build_args,
            env,
            image_env,
            args: Vec::new(),
        }
    }

    /// The scope for a stage whose FROM names this (earlier) stage: BuildKit carries over the
    /// whole state, the parent's ARG values and declarations included.
    pub fn child(&self) -> Self {
        self.clone()
    }

    /// What `$NAME` expands to at this point of the stage.
    pub fn vars(&self) -> &Vars {
        &self.env
    }

    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.global.escape)
    }

    pub fn expand(&self, word: &str) -> Result<String, ExpandError> {
        self.lexer().expand(word, &self.env)
    }

    pub fn expand_words(&self, text: &str) -> Result<Vec<String>, ExpandError> {
        self.lexer().expand_words(text, &self.env)
    }

    /// Processes an ARG instruction's declarations, in order.
    pub fn declare_arg(&mut self, decls: &[ArgDecl]) -> Result<Vec<ArgDecl>, ExpandError> {
        let mut out = Vec::with_capacity(decls.len());
        for d in decls {
            let value = match (self.build_args.take(&d.name), &d.default) {
                (Some(v), _) => Some(v.to_string()),
                (None, Some(def)) => Some(self.expand(def)?),
                (None, None) => self.global.vars.get(&d.name).map(str::to_string),
            };
            if let Some(v) = &value {
                if !NON_ENV_ARGS.contains(&d.name.as_str()) {
                    self.env.set(d.name.clone(), v.clone());
                    bounded(&self.env)?;
                }
            }
            self.args.push((d.name.clone(), value.clone()));
            out.push(ArgDecl {
                name: d.name.clone(),
                default: value,
            });
        }
        Ok(out)
    }

    /// Processes an ENV instruction: every pair is expanded first (so `ENV a=1 b=$a` sees the
    /// old `a`), then set. Returns the expanded pairs.
    pub fn set_env(&mut self, pairs: &[KeyValue]) -> Result<Vec<KeyValue>, ExpandError> {
        let expanded = expand::pairs(self.lexer(), &self.env, pairs)?;
        for p in &expanded {
            self.env.set(p.key.clone(), p.value.clone());
            bounded(&self.env)?;
            match self.image_env.iter_mut().find(|(k, _)| *k == p.key) {
                Some(slot) => slot.1 = p.value.clone(),
                None => self.image_env.push((p.key.clone(), p.value.clone())),
            }
        }
        Ok(expanded)
    }

    /// The instruction with every field Docker expands replaced by its expansion (see the
    /// `expand` module docs for the list); ENV and ARG are expanded but not applied.
    pub fn expand_instruction(&self, i: &Instruction) -> Result<Instruction, ExpandError> {
        expand::instruction(self.lexer(), &self.env, i)
    }

    /// Advances the scope over one instruction and returns it expanded: ENV and ARG update
    /// the variables (ARG comes back with the values in effect as defaults), everything else
    /// is [`expand_instruction`](Self::expand_instruction).
    pub fn apply(&mut self, i: &Instruction) -> Result<Instruction, ExpandError> {
        match i {
            Instruction::Env(pairs) => self.set_env(pairs).map(Instruction::Env),
            Instruction::Arg(decls) => self.declare_arg(decls).map(Instruction::Arg),
            other => self.expand_instruction(other),
        }
    }

    /// A `RUN --mount=` value as its `key[=value]` fields, values expanded, keys lower-case.
    pub fn expand_mount(&self, raw: &str) -> Result<Vec<(String, Option<String>)>, ExpandError> {
        expand::mount_fields(self.lexer(), &self.env, raw)
    }

    /// The image config's `Env` at this point: the base image's, then ENV instructions
    /// (replacing in place). ARG values are never in it.
    pub fn image_env(&self) -> Vec<String> {
        self.image_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    pub fn run_env(&self) -> RunEnv {
        let env: Vec<(String, String)> =
            self.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let mut args: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.args {
            let v = self
                .env
                .get(name)
                .map(str::to_string)
                .or_else(|| value.clone())
                .unwrap_or_default();
            match args.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = v,
                None => args.push((name.clone(), v)),
            }
        }
        let mut proxy = Vec::new();
        for pair in PROXY_ARGS.chunks(2) {
            let (upper, lower) = (pair[0], pair[1]);
            if self.env.contains(upper) || self.env.contains(lower) {
                continue;
            }
            let given = self
                .build_args
                .values
                .get(upper)
                .or_else(|| self.build_args.values.get(lower));
            if let Some(v) = given {
                proxy.push((upper.to_string(), v.clone()));
                proxy.push((lower.to_string(), v.clone()));
            }
        }
        RunEnv { env, args, proxy }
    }
}
