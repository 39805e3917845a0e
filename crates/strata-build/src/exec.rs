//! The build: which stages are needed, each stage's base, its instructions in order, then
//! `--squash`, the image, the record and the tags.

use crate::base::{self, Puller};
use crate::context::SourceTree;
use crate::image::{BaseInfo, ImageState, LayerRef};
use crate::named::{ContextSource, NamedContexts};
use crate::record::BuildRecord;
use crate::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_dockerfile::{parse, parse_trigger, BaseRef, BuildArgs, Dockerfile, GlobalScope, Platform, StageScope};
use strata_oci::compress::Compression;
use strata_oci::layer::WriteOptions;
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;
use strata_rootfs::{DiffOptions, LayerCache, Stage, StageOptions};
use strata_sandbox::{Backend, Network, Sandbox};

pub struct BuildOptions<'a> {
    pub context: PathBuf,
    /// The Dockerfile; `CONTEXT/Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<ImageRef>,
    /// `K=V`, or `K` for the value of `K` in strata's environment.
    pub build_args: Vec<String>,
    pub target: Option<String>,
    /// What RUN may reach: nothing but its loopback (default), or the host's network.
    pub network: Network,
    /// `ADD <url>` may download (false: the build service's policy forbids content that
    /// is neither in the context, the base nor an RPM).
    pub remote_content: bool,
    pub no_cache: bool,
    /// One layer over the base image instead of one per step.
    pub squash: bool,
    pub store: &'a Store,
    /// Unpacked layers and stage roots live here.
    pub work_dir: PathBuf,
    /// Where RUN runs; the sandbox is made (and its runtime probed) only when a RUN has to
    /// execute, so a fully cached build never starts a runtime.
    pub sandbox: Backend,
    /// Fixed `created`, history times and upper bound of every file time.
    pub source_date_epoch: Option<u64>,
    pub compression: Compression,
    pub threads: usize,
    pub puller: Option<&'a dyn Puller>,
    /// Whether registry references are resolved at the registry even when the store has
    /// them (`--pull`).
    pub pull: crate::base::PullPolicy,
    /// Processes and memory each RUN may use (`--pids-limit`, `--memory`).
    pub limits: strata_sandbox::Limits,
    /// How long each RUN may take.
    pub run_timeout: std::time::Duration,
    /// Set by a service to stop the build: checked before every step and handed to every
    /// RUN, which is killed within a quarter second.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Build secrets by id, for `RUN --mount=type=secret`.
    pub secrets: std::collections::BTreeMap<String, crate::mounts::SecretSource>,
    /// `--build-context NAME=VALUE`s by NAME (as [`crate::parse_build_contexts`] makes
    /// them). `docker-image://REF` puts the image REF in place of every FROM, `COPY --from`
    /// and `RUN --mount=from=` that names NAME (matched as buildx does: `web` and
    /// `web:latest` are one name); a local directory is what `COPY --from=NAME` and
    /// `RUN --mount=from=NAME` read. The base is still recorded under the FROM as written,
    /// with the digest actually built on.
    pub contexts: BTreeMap<String, String>,
    /// Progress: called for every step as it starts and ends.
    pub events: &'a dyn Fn(Event<'_>),
}

/// What the build is doing, for the command line to show.
#[derive(Debug)]
pub enum Event<'a> {
    Step { number: usize, total: usize, text: &'a str },
    /// The step's result came from the step cache.
    Cached,
    /// The step ran; it made a layer of this many bytes, or none.
    Done { layer: Option<u64>, seconds: f64 },
    /// Output of a RUN, as it finished.
    Output(&'a str),
    Warning(&'a str),
}

#[derive(Debug, Clone)]
pub struct StepReport {
    pub stage: usize,
    pub text: String,
    pub cached: bool,
    pub layer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Built {
    pub manifest_digest: String,
    /// The config digest: what docker and podman show as the image id.
    pub image_id: String,
    pub tags: Vec<String>,
    pub layers: usize,
    pub base: Option<BaseInfo>,
    pub steps: Vec<StepReport>,
    pub warnings: Vec<String>,
}

/// Everything one build carries from step to step.
pub(crate) struct Builder<'a, 'o> {
    pub opts: &'a BuildOptions<'o>,
    pub df: &'a Dockerfile,
    pub context: &'a SourceTree,
    pub unpacked: LayerCache,
    pub stages_dir: PathBuf,
    pub created: u64,
    pub steps: Vec<StepReport>,
    pub warnings: Vec<String>,
    pub number: usize,
    pub total: usize,
    pub sandbox: std::rc::Rc<std::cell::OnceCell<Sandbox>>,
    pub contexts: NamedContexts,
}

/// A stage root assembled from `layers`, for as long as a step needs it.
pub(crate) struct Root {
    stage: Option<Stage>,
}

impl Root {
    pub fn path(&self) -> &Path {
        self.stage.as_ref().expect("root is alive").root()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(s) = self.stage.take() {
            let _ = s.remove();
        }
    }
}

/// The mount points a RUN gets that must never become part of a layer.
const EPHEMERAL: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

impl Builder<'_, '_> {
    pub fn store(&self) -> &Store {
        self.opts.store
    }

    /// Mounts a root of `layers` (unpacking each into the layer cache on first use).
    pub fn root(&self, layers: &[LayerRef]) -> Result<Root, Error> {
        for l in layers {
            self.unpacked.unpack_from_store(self.store(), &l.digest, &l.diff_id)?;
        }
        let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let stage = Stage::from_cache(&self.stages_dir, &self.unpacked, &diff_ids, &StageOptions::default())?;
        Ok(Root { stage: Some(stage) })
    }

    /// Runs `work` in a root of `state`'s layers and commits what it changed: a layer in the
    /// store, or `None` when nothing changed.
    pub fn commit<T>(&self, state: &ImageState, work: impl FnOnce(&Path) -> Result<T, Error>) -> Result<(T, Option<LayerRef>), Error> {
        let root = self.root(&state.layers)?;
        let out = work(root.path())?;
        let stage = root.stage.as_ref().expect("root is alive");
        let diff = stage.diff(&DiffOptions { clamp_mtime: self.opts.source_date_epoch, ephemeral: EPHEMERAL.iter().map(|s| s.to_string()).collect() })?;
        if diff.is_empty() {
            return Ok((out, None));
        }
        let info = self.store().put_layer(diff.into_layer(), WriteOptions { compression: self.opts.compression, threads: self.opts.threads })?;
        Ok((out, Some(LayerRef::from_info(&info))))
    }

    /// The image a FROM, `COPY --from` or `RUN --mount=from=` names (after expansion): the
    /// `--build-context` image in its place when one names it — recorded under `name`, with
    /// the digest of the image built on — else the image itself.
    pub fn image(&self, name: &str) -> Result<ImageState, Error> {
        let Some(c) = self.contexts.get(name) else {
            return base::resolve(self.store(), name, self.opts.puller, self.opts.pull);
        };
        match &c.source {
            ContextSource::Image(r) => {
                let mut st = base::resolve(self.store(), r, self.opts.puller, self.opts.pull).map_err(|e| match e {
                    Error::Base { name: _, message } => Error::Base { name: format!("{r} (--build-context {}=docker-image://{r}, in place of {name})", c.name), message },
                    other => other,
                })?;
                if let Some(b) = &mut st.base {
                    b.name = name.to_string();
                    b.build_context = Some(r.clone());
                }
                Ok(st)
            }
            ContextSource::Dir(d) => Err(Error::BuildContext(format!(
                "--build-context {}={}: a directory context can be read by COPY --from={name} and RUN --mount=from={name}, but not be an image (for FROM, give NAME=docker-image://REF)",
                c.name,
                d.display()
            ))),
        }
    }

    /// The local directory a `--build-context NAME=DIR` gives for `from`, if any.
    pub fn context_dir(&self, from: &str) -> Option<(String, PathBuf)> {
        let c = self.contexts.get(from)?;
        match &c.source {
            ContextSource::Dir(d) => Some((c.name.clone(), d.clone())),
            ContextSource::Image(_) => None,
        }
    }

    pub fn event(&self, e: Event<'_>) {
        (self.opts.events)(e)
    }

    pub fn warn(&mut self, w: String) {
        self.event(Event::Warning(&w));
        self.warnings.push(w);
    }
}

fn host_arch() -> &'static str {
    strata_rpm::arch::oci_arch(strata_rpm::arch::host_arch())
}

/// Stages the target needs, FROM, `COPY --from` and `RUN --mount=from=` followed.
fn needed(df: &Dockerfile, bases: &[BaseRef], target: usize) -> Result<Vec<bool>, Error> {
    let mut need = vec![false; df.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut need[i], true) {
            continue;
        }
        if let BaseRef::Stage(p) = bases[i] {
            todo.push(p);
        }
        for ins in &df.stages[i].instructions {
            let froms: Vec<&str> = match &ins.node {
                strata_dockerfile::Instruction::Copy(c) => c.from.as_deref().into_iter().collect(),
                strata_dockerfile::Instruction::Run(r) => r.mounts.iter().filter_map(|m| crate::mounts::from_of(m)).collect(),
                _ => Vec::new(),
            };
            for from in froms {
                if let BaseRef::Stage(p) = df.copy_source(i, from).map_err(|e| Error::Dockerfile(format!("line {}: {e}", ins.span.line)))? {
                    todo.push(p);
                }
            }
        }
    }
    Ok(need)
}

pub fn build(opts: &BuildOptions<'_>) -> Result<Built, Error> {
    let context = SourceTree::context(&opts.context)?;
    let df_path = opts.dockerfile.clone().unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = std::fs::read_to_string(&df_path).map_err(|e| Error::Io(format!("reading {}: {e}", df_path.display())))?;
    let df = parse(&text).map_err(|source| Error::Parse { path: df_path.display().to_string(), source: Box::new(source) })?;
    let mut args = BuildArgs::new();
    for a in &opts.build_args {
        args.add_cli(a, |k| std::env::var(k).ok());
    }
    let target = match &opts.target {
        Some(t) => df.stages.iter().position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str())).ok_or_else(|| {
            let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
            Error::Dockerfile(format!("--target {t}: no stage of that name (stages: {})", names.join(", ")))
        })?,
        None => df.stages.len() - 1,
    };
    let platform = Platform::new("linux", host_arch(), None);
    let global = GlobalScope::new(&df, &args, &platform, &platform, df.stages[target].name.as_deref()).map_err(|e| Error::Dockerfile(e.to_string()))?;
    let mut images: Vec<String> = Vec::new();
    let mut bases: Vec<BaseRef> = Vec::new();
    for (i, s) in df.stages.iter().enumerate() {
        let (image, _platform) = global.expand_from(&s.from.node).map_err(|e| Error::Dockerfile(format!("line {}: {e}", s.from.span.line)))?;
        bases.push(df.base_of(i, &image));
        images.push(image);
    }
    let need = needed(&df, &bases, target)?;
    let total = df.stages.iter().enumerate().filter(|(i, _)| need[*i]).map(|(_, s)| s.instructions.len() + 1).sum();

    std::fs::create_dir_all(&opts.work_dir)?;
    let stages_dir = opts.work_dir.join("stages");
    std::fs::create_dir_all(&stages_dir)?;
    Stage::remove_stale(&stages_dir)?;
    let created = opts.source_date_epoch.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    let stage_names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    let contexts = NamedContexts::new(&opts.contexts, &stage_names)?;
    let mut b = Builder { opts, df: &df, context: &context, unpacked: LayerCache::open(&opts.work_dir)?, stages_dir, created, steps: Vec::new(), warnings: Vec::new(), number: 0, total, sandbox: Default::default(), contexts };
    for w in &df.warnings {
        b.warn(format!("{}:{}: {}", df_path.display(), w.line, w.message));
    }

    let mut states: Vec<Option<ImageState>> = vec![None; df.stages.len()];
    let mut scopes: Vec<Option<StageScope<'_>>> = vec![None; df.stages.len()];
    for i in 0..=target {
        if !need[i] {
            continue;
        }
        let stage = &df.stages[i];
        b.number += 1;
        b.event(Event::Step { number: b.number, total, text: &stage.from.original });
        let (mut state, mut scope, triggers) = match &bases[i] {
            BaseRef::Scratch => (ImageState::scratch(host_arch()), StageScope::new::<&str>(&[], &global, &args), Vec::new()),
            BaseRef::Stage(p) => {
                let st = states[*p].clone().expect("needed stages come first");
                let scope = scopes[*p].as_ref().expect("needed stages come first").child();
                (st, scope, df.stages[*p].onbuild_expressions())
            }
            BaseRef::Image(name) => {
                let st = b.image(name)?;
                let scope = StageScope::new(&st.env(), &global, &args);
                let triggers = st.strings("OnBuild");
                (st, scope, triggers)
            }
        };
        state.set("OnBuild", serde_json::Value::Null);
        state.cmd_set = false;
        b.event(Event::Done { layer: None, seconds: 0.0 });
        // ONBUILD triggers of the base run first, as if written right after FROM.
        for t in &triggers {
            let ins = parse_trigger(t).map_err(|e| Error::Dockerfile(format!("line {}: ONBUILD trigger {t:?} of the base image: {e}", stage.from.span.line)))?;
            crate::steps::step(&mut b, i, &mut state, &mut scope, &ins, &states)?;
        }
        for ins in &stage.instructions {
            if opts.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) {
                return Err(Error::Canceled);
            }
            b.number += 1;
            b.event(Event::Step { number: b.number, total, text: &ins.original });
            crate::steps::step(&mut b, i, &mut state, &mut scope, ins, &states)?;
        }
        states[i] = Some(state);
        scopes[i] = Some(scope);
    }
    let unused = args.unused();
    if !unused.is_empty() {
        b.warn(format!("build arguments not consumed by any ARG: {}", unused.join(", ")));
    }
    let unused: Vec<String> = b.contexts.unused().into_iter().map(str::to_string).collect();
    for name in unused {
        b.warn(format!("--build-context {name}: no FROM, COPY --from or RUN --mount=from= of this build names it"));
    }

    let mut state = states[target].take().expect("the target was built");
    if opts.squash {
        squash(&b, &mut state)?;
    }
    if opts.source_date_epoch.is_none() {
        reuse_first_created(&mut b, &mut state)?;
    }
    write_image(&b, &state, &df_path, &text, &context, &args_map(&opts.build_args), &images[target])
}

fn args_map(args: &[String]) -> BTreeMap<String, String> {
    args.iter().map(|a| a.split_once('=').map_or((a.clone(), std::env::var(a).unwrap_or_default()), |(k, v)| (k.into(), v.into()))).collect()
}

/// `--squash`: every layer the build added, as one layer over the base's.
fn squash(b: &Builder<'_, '_>, state: &mut ImageState) -> Result<(), Error> {
    if state.layers.len() <= state.base_layers + 1 {
        return Ok(());
    }
    let added: Vec<LayerRef> = state.layers[state.base_layers..].to_vec();
    let mut base_state = state.clone();
    base_state.layers.truncate(state.base_layers);
    let store = b.store();
    let ((), layer) = b.commit(&base_state, |root| {
        for l in &added {
            let blob = store.open_blob(&l.digest)?;
            strata_rootfs::extract(std::io::BufReader::new(blob), root, &strata_rootfs::ExtractOptions::default())?;
        }
        Ok(())
    })?;
    state.layers.truncate(state.base_layers);
    let history = state.config["history"].as_array_mut();
    if let Some(h) = history {
        for e in h.iter_mut().skip(state.base_history) {
            e["empty_layer"] = serde_json::json!(true);
        }
    }
    if let Some(l) = layer {
        state.add_layer(l, b.created, "strata build --squash: the layers of every step above, as one");
    }
    Ok(())
}

/// Without SOURCE_DATE_EPOCH: when this exact content (config without its times, layers)
/// was built before, its first build's time replaces this build's everywhere it was
/// written (config, this build's history entries, annotation, record), so the rebuild is
/// the same image.
fn reuse_first_created(b: &mut Builder<'_, '_>, state: &mut ImageState) -> Result<(), Error> {
    let now = strata_oci::config::rfc3339(b.created);
    let mut timeless = state.final_config(0);
    timeless.as_object_mut().expect("config is an object").remove("created");
    if let Some(h) = timeless["history"].as_array_mut() {
        for e in h.iter_mut().skip(state.base_history) {
            if e["created"] == serde_json::json!(now) {
                e.as_object_mut().expect("history entries are objects").remove("created");
            }
        }
    }
    // serde_json's maps are sorted: the same content gives the same bytes.
    let bytes = serde_json::to_vec(&(&timeless, state.base.as_ref().map(|base| &base.digest))).expect("serialises");
    let layers: Vec<&strata_oci::oci_spec::image::Digest> = state.layers.iter().map(|l| &l.digest).collect();
    let first = crate::stepcache::first_created(b.store(), &bytes, &layers, b.created)?;
    if first == b.created {
        return Ok(());
    }
    let then = serde_json::json!(strata_oci::config::rfc3339(first));
    if let Some(h) = state.config["history"].as_array_mut() {
        for e in h.iter_mut().skip(state.base_history) {
            if e["created"] == serde_json::json!(now) {
                e["created"] = then.clone();
            }
        }
    }
    b.created = first;
    Ok(())
}

fn write_image(b: &Builder<'_, '_>, state: &ImageState, df_path: &Path, text: &str, context: &SourceTree, args: &BTreeMap<String, String>, from: &str) -> Result<Built, Error> {
    let store = b.store();
    let config = state.final_config(b.created);
    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.created".to_string(), strata_oci::config::rfc3339(b.created));
    if let Some(base) = &state.base {
        annotations.insert("org.opencontainers.image.base.name".to_string(), base.name.clone());
        annotations.insert("org.opencontainers.image.base.digest".to_string(), base.digest.clone());
    }
    let layers: Vec<_> = state.layers.iter().map(LayerRef::descriptor).collect();
    let staged = store.stage_image_json(&config, layers, &annotations)?;
    let record = BuildRecord::new(b, state, df_path, text, context, args, from, &staged)?;
    record.write(store)?;
    store.tag_staged(&staged, &b.opts.tags)?;
    Ok(Built {
        manifest_digest: staged.manifest.digest().to_string(),
        image_id: staged.config.digest().to_string(),
        tags: b.opts.tags.iter().map(|t| t.to_string()).collect(),
        layers: state.layers.len(),
        base: state.base.clone(),
        steps: b.steps.clone(),
        warnings: b.warnings.clone(),
    })
}
