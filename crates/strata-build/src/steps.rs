//! One instruction: its meaning for the image config, and for the steps that change files
//! (RUN, COPY, ADD, WORKDIR) the step cache and the layer.

use crate::context::SourceTree;
use crate::copy::{self, CopyOpts};
use crate::exec::{Builder, Event, StepReport};
use crate::image::{chain, ImageState, LayerRef};
use crate::stepcache;
use crate::Error;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;
use strata_dockerfile::{parse_chmod, parse_ports, parse_signal, BaseRef, Command, Healthcheck, Instruction, Lexer, Run, RunScript, Spanned, StageScope};
use strata_install::rootfs::{Attrs, RootFs};
use strata_sandbox::{Capabilities, Network, FILES_DIR};

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Bumped whenever a step with the same inputs would now change files differently, so the
/// step cache of an older strata is not trusted.
const STEP_FORMAT: u32 = 2;

pub(crate) fn step(b: &mut Builder<'_, '_>, stage: usize, state: &mut ImageState, scope: &mut StageScope<'_>, ins: &Spanned<Instruction>, states: &[Option<ImageState>]) -> Result<(), Error> {
    let line = ins.span.line;
    let at = |e: strata_dockerfile::ExpandError| Error::Dockerfile(e.at(ins.span).to_string());
    let expanded = scope.apply(&ins.node).map_err(at)?;
    let text = expanded.to_string();
    let bad = |m: String| Error::Dockerfile(format!("line {line}: {m}"));
    match &expanded {
        Instruction::Run(run) => run_step(b, stage, state, scope, run, &text, line, states),
        Instruction::Copy(c) => {
            let (tree, _root, from_key) = match &c.from {
                None => (None, None, String::new()),
                Some(from) => {
                    let src = b.df.copy_source(stage, from).map_err(bad)?;
                    let dir = match &src {
                        BaseRef::Image(name) => b.context_dir(name),
                        _ => None,
                    };
                    if let Some((name, dir)) = dir {
                        // A `--build-context NAME=DIR`: its files (and .dockerignore), each
                        // source's content in the key below.
                        let tree = SourceTree::with_ignore(&dir, &format!("--build-context {name}"))?;
                        (Some(tree), None, format!("build context {name}"))
                    } else {
                        let st = match src {
                            BaseRef::Stage(p) => states[p].clone().expect("needed stages are built first"),
                            BaseRef::Image(name) => b.image(&name)?,
                            BaseRef::Scratch => crate::image::ImageState::scratch("amd64"),
                        };
                        let root = b.root(&st.layers)?;
                        let tree = SourceTree::open(root.path(), None, &format!("--from={from}"))?;
                        (Some(tree), Some(root), st.key.clone())
                    }
                }
            };
            let tree = tree.as_ref().unwrap_or(b.context);
            let mut srcs = Vec::new();
            for pat in &c.sources {
                srcs.extend(tree.sources(pat)?);
            }
            srcs.retain(|s| !c.exclude.iter().any(|x| crate::glob::matches(x, s)));
            let digests: Vec<String> = srcs.iter().map(|s| tree.digest(s)).collect::<Result<_, _>>()?;
            let heredocs = heredoc_files(scope, &c.heredocs).map_err(at)?;
            let dest = copy::destination(&c.dest, &workdir(state));
            let chmod = c.chmod.as_deref().map(parse_chmod).transpose().map_err(bad)?;
            let history = format!("COPY {} {dest}", if srcs.is_empty() { heredocs.iter().map(|h| h.0.clone()).collect::<Vec<_>>().join(" ") } else { srcs.join(" ") });
            let key = format!("{text}\nfrom={from_key}\n{digests:?}");
            let chown = c.chown.clone().unwrap_or_default();
            let now = b.created as u32;
            fs_step(b, stage, state, &key, &history, |_, root| {
                let opts = copy_opts(root, &chown, chmod, now)?;
                if !srcs.is_empty() {
                    copy::copy_sources(root, tree, &srcs, &dest, &opts)?;
                }
                for (name, content) in &heredocs {
                    copy::write_bytes(root, &dest, name, &mut content.as_bytes(), 0o644, &opts)?;
                }
                Ok(())
            })
        }
        Instruction::Add(a) => {
            let dest = copy::destination(&a.dest, &workdir(state));
            let mut urls: Vec<(String, tempfile::NamedTempFile, Option<u32>)> = Vec::new();
            let mut local: Vec<String> = Vec::new();
            let mut digests: Vec<String> = Vec::new();
            for src in &a.sources {
                if src.starts_with("http://") || src.starts_with("https://") {
                    if !b.opts.remote_content {
                        return Err(bad(format!("ADD {src}: content from a URL is not allowed here (--no-remote-content; the build service's policy: remote_content = false)")));
                    }
                    let tmp = tempfile::NamedTempFile::new_in(&b.opts.work_dir)?;
                    let (_, modified) = strata_repo::Fetcher::new().get_dated("ADD", src, tmp.path()).map_err(|e| bad(format!("ADD {src}: {e}")))?;
                    // As Docker: the file is dated by the server's Last-Modified, if it says.
                    let modified = modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32);
                    let digest = strata_oci::sha256_hex_of(&std::fs::read(tmp.path())?).to_string();
                    if let Some(want) = &a.checksum {
                        if want != &digest {
                            return Err(bad(format!("ADD {src}: the download has checksum {digest}, --checksum says {want}")));
                        }
                    }
                    digests.push(format!("{digest} {modified:?}"));
                    urls.push((src.clone(), tmp, modified));
                } else {
                    for s in b.context.sources(src)? {
                        digests.push(b.context.digest(&s)?);
                        local.push(s);
                    }
                }
            }
            let heredocs = heredoc_files(scope, &a.heredocs).map_err(at)?;
            let into_dir = dest.ends_with('/') || urls.len() + local.len() + heredocs.len() > 1;
            if !dest.ends_with('/') && urls.len() + local.len() > 1 {
                return Err(bad(format!("when adding several sources, the destination {dest} must be a directory ending in /")));
            }
            let chmod = a.chmod.as_deref().map(parse_chmod).transpose().map_err(bad)?;
            let unpack = a.unpack != Some(false);
            let history = format!("ADD {} {dest}", a.sources.join(" "));
            let key = format!("{text}\n{digests:?}");
            let chown = a.chown.clone().unwrap_or_default();
            let now = b.created as u32;
            let context = b.context;
            fs_step(b, stage, state, &key, &history, |_, root| {
                let opts = copy_opts(root, &chown, chmod, now)?;
                for (url, tmp, modified) in &urls {
                    let name = url.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("index.html");
                    let mut f = std::fs::File::open(tmp.path())?;
                    let dated = CopyOpts { now: modified.unwrap_or(opts.now), ..opts };
                    copy::write_bytes(root, &dest, name, &mut f, 0o600, &dated)?;
                }
                for s in &local {
                    if unpack {
                        copy::add_local(root, context, s, &dest, into_dir, &opts)?;
                    } else {
                        copy::copy_sources(root, context, std::slice::from_ref(s), &dest, &opts)?;
                    }
                }
                for (name, content) in &heredocs {
                    copy::write_bytes(root, &dest, name, &mut content.as_bytes(), 0o644, &opts)?;
                }
                Ok(())
            })
        }
        Instruction::Workdir(w) => {
            let path = copy::destination(w, &workdir(state)).trim_end_matches('/').to_string();
            let path = if path.is_empty() { "/".to_string() } else { path };
            state.set("WorkingDir", json!(path));
            let user = state.string("User");
            let now = b.created as u32;
            // As BuildKit: the directory is made (as the stage's USER) when missing.
            fs_step(b, stage, state, &text, &format!("WORKDIR {path}"), |_, root| {
                let who = strata_sandbox::resolve_user(root, &user)?;
                let view = SourceTree::open(root, None, "the stage")?;
                let mut fs = RootFs::open(root)?;
                // Through an in-image symlink, as Docker: `WORKDIR /link` makes what it names.
                let target = copy::in_root(&view, &path)?;
                let mut cur = String::new();
                for c in target.split('/').filter(|c| !c.is_empty()) {
                    cur.push('/');
                    cur.push_str(c);
                    if view.followed(cur.trim_start_matches('/'))?.is_none() {
                        fs.dir(&cur, &Attrs { uid: who.uid, gid: who.gid, perms: 0o755, mtime: now, caps: None })?;
                    }
                }
                Ok(())
            })
        }
        other => {
            metadata(state, other).map_err(bad)?;
            if matches!(other, Instruction::Env(_) | Instruction::Arg(_)) {
                state.set("Env", json!(scope.image_env()));
            }
            state.key = chain(&state.key, &text);
            state.history(b.created, &text, true);
            b.steps.push(StepReport { stage, text, cached: false, layer: None });
            b.event(Event::Done { layer: None, seconds: 0.0 });
            Ok(())
        }
    }
}

fn workdir(state: &ImageState) -> String {
    let w = state.string("WorkingDir");
    if w.is_empty() {
        "/".into()
    } else {
        w
    }
}

/// Heredoc files of a COPY/ADD with their content, expanded where the delimiter allows.
fn heredoc_files(scope: &StageScope<'_>, files: &[strata_dockerfile::HeredocFile]) -> Result<Vec<(String, String)>, strata_dockerfile::ExpandError> {
    files
        .iter()
        .map(|h| {
            let content = if h.expand { Lexer::heredoc().expand(&h.content, scope.vars())? } else { h.content.clone() };
            Ok((h.name.clone(), content))
        })
        .collect()
}

fn copy_opts(root: &Path, chown: &str, chmod: Option<u32>, now: u32) -> Result<CopyOpts, Error> {
    let (uid, gid) = if chown.is_empty() {
        (0, 0)
    } else {
        let u = strata_sandbox::resolve_user(root, chown)?;
        (u.uid, u.gid)
    };
    Ok(CopyOpts { uid, gid, chmod, now })
}

/// A step that may change files: from the step cache when its key is known, else `work` in
/// a fresh root of the state's layers, committed.
fn fs_step(b: &mut Builder<'_, '_>, stage: usize, state: &mut ImageState, key_text: &str, history: &str, work: impl FnOnce(&Builder<'_, '_>, &Path) -> Result<(), Error>) -> Result<(), Error> {
    let key = chain(&state.key, &format!("strata-build-step {STEP_FORMAT}\n{key_text}"));
    let cached = if b.opts.no_cache { None } else { stepcache::lookup(b.store(), &key)? };
    let layer: Option<LayerRef> = match cached {
        Some(l) => {
            b.event(Event::Cached);
            b.steps.push(StepReport { stage, text: history.to_string(), cached: true, layer: l.as_ref().map(|l| l.digest.to_string()) });
            l
        }
        None => {
            let t = Instant::now();
            let shared: &Builder<'_, '_> = b;
            let ((), l) = shared.commit(state, |root| work(shared, root))?;
            stepcache::record(b.store(), &key, l.as_ref())?;
            b.event(Event::Done { layer: l.as_ref().map(|l| l.size), seconds: t.elapsed().as_secs_f64() });
            b.steps.push(StepReport { stage, text: history.to_string(), cached: false, layer: l.as_ref().map(|l| l.digest.to_string()) });
            l
        }
    };
    match layer {
        Some(l) => state.add_layer(l, b.created, history),
        None => state.history(b.created, history, true),
    }
    state.key = key;
    Ok(())
}

/// `argv[0]` as a path in `root`: as given when it has a `/`, else the first match along
/// the step's `PATH`, as a shell would find it.
fn program(root: &Path, name: &str, env: &[(String, String)]) -> Result<String, Error> {
    if name.contains('/') {
        return Ok(name.to_string());
    }
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or(strata_dockerfile::DEFAULT_PATH);
    let view = SourceTree::open(root, None, "the stage")?;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        if view.followed(candidate.trim_start_matches('/'))?.is_some() {
            return Ok(candidate);
        }
    }
    Err(Error::Dockerfile(format!("RUN: {name:?} not found in the image's PATH ({path})")))
}

#[allow(clippy::too_many_arguments)]
fn run_step(b: &mut Builder<'_, '_>, stage: usize, state: &mut ImageState, scope: &StageScope<'_>, run: &Run, text: &str, line: usize, states: &[Option<ImageState>]) -> Result<(), Error> {
    let bad = |m: String| Error::Dockerfile(format!("line {line}: {m}"));
    let mounts = crate::mounts::plan(b, stage, scope, &run.mounts, &workdir(state), states).map_err(bad)?;
    let network = match run.network.as_deref() {
        None | Some("default") => b.opts.network,
        Some("none") => Network::None,
        Some("host") if b.opts.network == Network::Host => Network::Host,
        Some("host") => return Err(bad("RUN --network=host needs `strata build --network host`".into())),
        Some(other) => return Err(bad(format!("RUN --network={other}: strata knows none, default and host"))),
    };
    let shell = {
        let s = state.strings("Shell");
        if s.is_empty() {
            DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
        } else {
            s
        }
    };
    let (argv, file) = match run.script() {
        RunScript::Exec(v) => (v, None),
        RunScript::Shell(line) => (shell.into_iter().chain([line]).collect::<Vec<_>>(), None),
        RunScript::Executable { name, content } => (vec![format!("{FILES_DIR}/{name}")], Some((name, content))),
    };
    if argv.is_empty() {
        return Err(bad("RUN with an empty command".into()));
    }
    let env = scope.run_env();
    let prefix = env.history_prefix();
    let history = format!("RUN {}{}", if prefix.is_empty() { String::new() } else { format!("{prefix} ") }, argv.join(" "));
    let key = format!("{text}\n{:?}\nnetwork={network:?}{}", env.env, mounts.key);
    let (user, dir) = (state.string("User"), workdir(state));
    let events = b.opts.events;
    let step_name = format!("step {}/{} (Dockerfile line {line})", b.number, b.total);
    let (cell, backend) = (b.sandbox.clone(), b.opts.sandbox.clone());
    let sandbox_of = move || -> Result<(), Error> {
        if cell.get().is_none() {
            let _ = cell.set(strata_sandbox::Sandbox::new(backend)?);
        }
        Ok(())
    };
    let cell = b.sandbox.clone();
    fs_step(b, stage, state, &key, &history, |b, root| {
        let mounted = mounts.realize(b)?;
        if dir != "/" {
            RootFs::open(root)?.ensure_dir(&dir)?;
        }
        let prog = program(root, &argv[0], &env.env)?;
        let mut cmd = strata_sandbox::Command::new(prog).args(&argv[1..]).env_clear();
        for kv in env.process_env() {
            if let Some((k, v)) = kv.split_once('=') {
                cmd = cmd.env(k, v);
            }
        }
        for (k, v) in &mounted.env {
            cmd = cmd.env(k, v);
        }
        for (dest, source) in &mounted.mounts {
            cmd = cmd.mount(dest.clone(), source.clone());
        }
        cmd = cmd.user(user.as_str()).cwd(dir.as_str()).network(network).capabilities(Capabilities::DockerDefault).hostname("strata-build");
        cmd = cmd.limits(b.opts.limits).timeout(b.opts.run_timeout);
        if let Some(flag) = &b.opts.cancel {
            cmd = cmd.cancel_on(flag.clone());
        }
        if let Some((name, content)) = &file {
            cmd = cmd.file(name.clone(), content.clone().into_bytes(), 0o755);
        }
        sandbox_of()?;
        let out = cell.get().expect("made just above").run(root, &cmd)?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        if !output.is_empty() {
            events(Event::Output(&output));
        }
        if !out.status.success() {
            let lines: Vec<&str> = output.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            return Err(Error::RunFailed { step: step_name, command: argv.join(" "), status: out.status.to_string(), tail });
        }
        Ok(())
    })
}

/// The config change of a metadata-only instruction.
fn metadata(state: &mut ImageState, ins: &Instruction) -> Result<(), String> {
    let shell = || {
        let s = state.strings("Shell");
        if s.is_empty() {
            DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
        } else {
            s
        }
    };
    let argv = |c: &Command, shell: Vec<String>| match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(line) => shell.into_iter().chain([line.clone()]).collect(),
    };
    match ins {
        Instruction::Env(_) | Instruction::Arg(_) => {}
        Instruction::Label(pairs) => {
            for kv in pairs {
                state.insert("Labels", &kv.key, json!(kv.value));
            }
        }
        Instruction::Maintainer(m) => state.config["author"] = json!(m),
        Instruction::Expose(words) => {
            for p in parse_ports(words)? {
                state.insert("ExposedPorts", &p.to_string(), json!({}));
            }
        }
        Instruction::User(u) => state.set("User", json!(u)),
        Instruction::Volume(vols) => {
            for v in vols {
                state.insert("Volumes", v, json!({}));
            }
        }
        Instruction::Stopsignal(s) => {
            parse_signal(s)?;
            state.set("StopSignal", json!(s));
        }
        Instruction::Healthcheck(h) => state.set("Healthcheck", healthcheck(h)),
        Instruction::Shell(v) => state.set("Shell", json!(v)),
        Instruction::Cmd(c) => {
            let v = argv(c, shell());
            state.set("Cmd", json!(v));
            state.cmd_set = true;
        }
        Instruction::Entrypoint(c) => {
            let v = argv(c, shell());
            state.set("Entrypoint", json!(v));
            // BuildKit: a new ENTRYPOINT drops an inherited CMD, not one set in this stage.
            if !state.cmd_set {
                state.set("Cmd", Value::Null);
            }
        }
        Instruction::Onbuild(o) => {
            let mut list = state.strings("OnBuild");
            list.push(o.expression.clone());
            state.set("OnBuild", json!(list));
        }
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_) => unreachable!("filesystem steps"),
    }
    Ok(())
}

fn healthcheck(h: &Healthcheck) -> Value {
    let mut v = json!({"Test": h.test()});
    if let Healthcheck::Cmd { interval, timeout, start_period, start_interval, retries, .. } = h {
        for (k, d) in [("Interval", interval), ("Timeout", timeout), ("StartPeriod", start_period), ("StartInterval", start_interval)] {
            if let Some(d) = d.filter(|d| !d.is_zero()) {
                v[k] = json!(d.as_nanos() as u64);
            }
        }
        if let Some(r) = retries.filter(|r| *r > 0) {
            v["Retries"] = json!(r);
        }
    }
    v
}
