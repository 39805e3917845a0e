//! `RUN --mount=`: what BuildKit offers a step besides its root — a read-only view of the
//! context or another stage (`bind`), a directory kept from build to build (`cache`), a
//! scratch tmpfs (`tmpfs`) and build secrets (`secret`). None of it becomes part of the
//! layer: the sandbox removes the mountpoints it had to create, and a `bind` is a private
//! copy, so even an `rw` bind's writes are discarded, as BuildKit discards them.
//!
//! Into the step's cache key go the mount options and a bind's content digest; a cache
//! mount's and a secret's content do not (as BuildKit: they must not make the step miss).

use crate::context::{clean_source, SourceTree};
use crate::copy::{self, CopyOpts};
use crate::exec::Builder;
use crate::image::ImageState;
use crate::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_dockerfile::{BaseRef, StageScope};
use strata_sandbox::MountSource;

/// Where build secrets come from (`strata build --secret id=ID[,src=PATH|,env=VAR]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// Parses one `--secret` value, docker's syntax (`id=`, `src=`/`source=`, `env=`,
/// `type=file|env`); with neither source, the environment variable named by the id.
pub fn parse_secret(spec: &str) -> Result<(String, SecretSource), String> {
    let (mut id, mut src, mut env, mut ty) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| format!("--secret {spec}: {field:?} is not key=value"))?;
        match k.trim() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" => ty = Some(v.to_string()),
            other => return Err(format!("--secret {spec}: unknown key {other:?} (id, src, env, type)")),
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or_else(|| format!("--secret {spec}: id= is required"))?;
    let source = match (ty.as_deref(), src, env) {
        (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
        (Some("file") | None, Some(p), None) => SecretSource::File(PathBuf::from(p)),
        (None | Some("env"), None, None) => SecretSource::Env(id.clone()),
        (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
        (Some(t), _, _) if t != "file" && t != "env" => return Err(format!("--secret {spec}: type {t:?} is not file or env")),
        _ => return Err(format!("--secret {spec}: give src= or env=, not both")),
    };
    Ok((id, source))
}

/// The `from=` of a `--mount` value as written, for finding the stages a build needs.
pub(crate) fn from_of(raw: &str) -> Option<&str> {
    raw.split(',').find_map(|f| f.trim().strip_prefix("from="))
}

/// One `--mount`, checked, with what it needs from the host still to be made.
enum Plan {
    Bind { target: String, tree: BindTree, source: String, readonly: bool },
    Cache { target: String, dir: PathBuf, readonly: bool, mode: u32, uid: u32, gid: u32 },
    Tmpfs { target: String, size: Option<u64> },
    Secret { target: Option<String>, env: Option<String>, bytes: Vec<u8>, mode: u32, uid: u32, gid: u32 },
}

/// Where a bind's content is read from.
enum BindTree {
    Context,
    /// The layers of a stage or image.
    Layers(Vec<crate::image::LayerRef>),
    /// A `--build-context NAME=DIR`.
    Dir(SourceTree),
}

/// The mounts of one RUN: the key text they add, and how to make them.
pub(crate) struct RunMounts {
    pub key: String,
    plans: Vec<Plan>,
}

/// What the sandbox gets; the temporary host files live as long as this.
pub(crate) struct Realized {
    pub mounts: Vec<(String, MountSource)>,
    pub env: Vec<(String, String)>,
    _temps: Vec<tempfile::TempDir>,
}

fn number(key: &str, v: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(v, radix).map_err(|_| format!("{key}={v} is not a number"))
}

fn flag(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => Err(format!("{key}={o} is not true or false")),
    }
}

/// Checks every `--mount` of a RUN and says what goes into its cache key.
pub(crate) fn plan(b: &Builder<'_, '_>, stage: usize, scope: &StageScope<'_>, raw: &[String], workdir: &str, states: &[Option<ImageState>]) -> Result<RunMounts, String> {
    let mut plans = Vec::new();
    let mut key = String::new();
    let mut targets = Vec::new();
    for m in raw {
        let fields = scope.expand_mount(m).map_err(|e| format!("--mount={m}: {e}"))?;
        let mut opts: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, v) in fields {
            let k = match k.as_str() {
                "dst" | "destination" => "target".to_string(),
                "src" => "source".to_string(),
                "readonly" => "ro".to_string(),
                "readwrite" => "rw".to_string(),
                _ => k,
            };
            opts.insert(k, v);
        }
        let get = |k: &str| opts.get(k).and_then(|v| v.as_deref());
        let ty = get("type").unwrap_or("bind");
        let err = |msg: String| format!("--mount={m}: {msg}");
        // A boolean option: absent is false, a bare key is true.
        let set = |k: &str| if opts.contains_key(k) { flag(k, get(k)).map_err(err) } else { Ok(false) };
        let known: &[&str] = match ty {
            "bind" => &["type", "target", "source", "from", "ro", "rw"],
            "cache" => &["type", "target", "id", "ro", "rw", "sharing", "mode", "uid", "gid"],
            "tmpfs" => &["type", "target", "size"],
            "secret" => &["type", "target", "id", "env", "required", "mode", "uid", "gid"],
            "ssh" => return Err(err("type=ssh (SSH agent forwarding) is not supported by strata build".into())),
            other => return Err(err(format!("unknown mount type {other:?} (bind, cache, tmpfs, secret)"))),
        };
        if let Some(k) = opts.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(err(format!("{k} is not an option of a {ty} mount")));
        }
        let target = get("target").filter(|t| !t.is_empty()).map(|t| copy::destination(t, workdir).trim_end_matches('/').to_string());
        let target = match (ty, target) {
            ("secret", t) => t,
            (_, Some(t)) if !t.is_empty() => Some(t),
            (_, _) => return Err(err("target= is required".into())),
        };
        let mode = get("mode").map(|v| number("mode", v, 8)).transpose().map_err(err)?;
        let (uid, gid) = (get("uid").map(|v| number("uid", v, 10)).transpose().map_err(err)?.unwrap_or(0), get("gid").map(|v| number("gid", v, 10)).transpose().map_err(err)?.unwrap_or(0));
        let plan = match ty {
            "bind" => {
                // Read-only unless `rw`, as BuildKit.
                let readonly = !set("rw")? || set("ro")?;
                let source = clean_source(get("source").unwrap_or("")).ok_or_else(|| err("source= leads outside its tree".into()))?;
                let (tree, content) = match get("from") {
                    None => (BindTree::Context, b.context.digest(&source).map_err(|e| err(e.to_string()))?),
                    Some(from) => {
                        let src = b.df.copy_source(stage, from)?;
                        let dir = match &src {
                            BaseRef::Image(name) => b.context_dir(name),
                            _ => None,
                        };
                        if let Some((name, dir)) = dir {
                            let tree = SourceTree::with_ignore(&dir, &format!("--build-context {name}")).map_err(|e| err(e.to_string()))?;
                            let content = tree.digest(&source).map_err(|e| err(e.to_string()))?;
                            (BindTree::Dir(tree), content)
                        } else {
                            let st = match src {
                                BaseRef::Stage(p) => states[p].clone().expect("needed stages are built first"),
                                BaseRef::Image(name) => b.image(&name).map_err(|e| err(e.to_string()))?,
                                BaseRef::Scratch => return Err(err("from=scratch has nothing to bind".into())),
                            };
                            (BindTree::Layers(st.layers.clone()), format!("{}:{source}", st.key))
                        }
                    }
                };
                key.push_str(&format!("\nbind {content}"));
                Plan::Bind { target: target.clone().expect("checked"), tree, source, readonly }
            }
            "cache" => {
                let id = get("id").filter(|i| !i.is_empty()).map(str::to_string).unwrap_or_else(|| target.clone().expect("checked"));
                if let Some(s) = get("sharing").filter(|s| !["shared", "private", "locked"].contains(s)) {
                    return Err(err(format!("sharing={s} is not shared, private or locked")));
                }
                // Steps run one at a time here, so every sharing mode means the same.
                let dir = b.opts.work_dir.join("cache-mounts").join(strata_oci::sha256_hex_of(id.as_bytes()).to_string().trim_start_matches("sha256:"));
                Plan::Cache { target: target.clone().expect("checked"), dir, readonly: set("ro")?, mode: mode.unwrap_or(0o755), uid, gid }
            }
            "tmpfs" => {
                let size = get("size").map(|s| parse_size(s).ok_or_else(|| err(format!("size={s} is not a size")))).transpose()?;
                Plan::Tmpfs { target: target.clone().expect("checked"), size }
            }
            _ => {
                let id = get("id").map(str::to_string).or_else(|| target.as_deref().and_then(|t| t.rsplit('/').next()).map(str::to_string)).filter(|i| !i.is_empty()).ok_or_else(|| err("id= or target= is required".into()))?;
                let env = get("env").map(str::to_string);
                let target = match (&target, &env) {
                    (Some(t), _) => Some(t.clone()),
                    (None, None) => Some(format!("/run/secrets/{id}")),
                    (None, Some(_)) => None,
                };
                let required = set("required")?;
                match b.opts.secrets.get(&id) {
                    None if required => return Err(err(format!("secret {id} is required; give it with --secret id={id},src=FILE"))),
                    None => continue,
                    Some(source) => {
                        let bytes = match source {
                            SecretSource::File(p) => std::fs::read(p).map_err(|e| err(format!("secret {id}: reading {}: {e}", p.display())))?,
                            SecretSource::Env(v) => std::env::var(v).map_err(|_| err(format!("secret {id}: environment variable {v} is not set")))?.into_bytes(),
                        };
                        Plan::Secret { target, env, bytes, mode: mode.unwrap_or(0o400), uid, gid }
                    }
                }
            }
        };
        key.push_str(&format!("\nmount {m}"));
        if let Plan::Bind { target: t, .. } | Plan::Cache { target: t, .. } | Plan::Tmpfs { target: t, .. } | Plan::Secret { target: Some(t), .. } = &plan {
            if t == "/" || targets.contains(t) {
                return Err(err(format!("target {t} is / or already a mount target")));
            }
            targets.push(t.clone());
        }
        plans.push(plan);
    }
    Ok(RunMounts { key, plans })
}

/// A size as docker's flags take it: bytes, or with a `k`, `m` or `g` suffix (`512m`, `4g`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, shift) = match s.as_bytes().last()? {
        b'k' => (&s[..s.len() - 1], 10),
        b'm' => (&s[..s.len() - 1], 20),
        b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

impl RunMounts {
    /// Makes what the mounts need on the host, just before the step runs.
    pub(crate) fn realize(&self, b: &Builder<'_, '_>) -> Result<Realized, Error> {
        let mut out = Realized { mounts: Vec::new(), env: Vec::new(), _temps: Vec::new() };
        for plan in &self.plans {
            match plan {
                Plan::Bind { target, tree, source, readonly } => {
                    // A private copy: the step sees exactly the (ignore-filtered) tree, its
                    // symlinks cannot lead outside it, and its writes go nowhere.
                    let tmp = tempfile::tempdir_in(&b.opts.work_dir)?;
                    let copy_root = tmp.path().join("root");
                    std::fs::create_dir(&copy_root)?;
                    // The mount's top is 0755 as BuildKit's, not the caller's umask.
                    std::fs::set_permissions(&copy_root, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
                    let opts = CopyOpts { uid: 0, gid: 0, chmod: None, now: b.created as u32 };
                    let src = source.clone();
                    let is_file = match tree {
                        BindTree::Context => copy_into(&copy_root, b.context, &src, &opts)?,
                        BindTree::Dir(t) => copy_into(&copy_root, t, &src, &opts)?,
                        BindTree::Layers(layers) => {
                            let root = b.root(layers)?;
                            let t = SourceTree::open(root.path(), None, "the mount's source")?;
                            copy_into(&copy_root, &t, &src, &opts)?
                        }
                    };
                    let path = if is_file { copy_root.join(src.rsplit('/').next().unwrap_or(&src)) } else { copy_root };
                    out.mounts.push((target.clone(), MountSource::Bind { path, readonly: *readonly }));
                    out._temps.push(tmp);
                }
                Plan::Cache { target, dir, readonly, mode, uid, gid } => {
                    if !dir.is_dir() {
                        let parent = dir.parent().expect("cache dirs have a parent");
                        std::fs::create_dir_all(parent)?;
                        let tmp = tempfile::tempdir_in(parent)?;
                        set_attrs(tmp.path(), *mode, *uid, *gid)?;
                        std::fs::rename(tmp.keep(), dir)?;
                    }
                    out.mounts.push((target.clone(), MountSource::Bind { path: dir.clone(), readonly: *readonly }));
                }
                Plan::Tmpfs { target, size } => out.mounts.push((target.clone(), MountSource::Tmpfs { size: *size })),
                Plan::Secret { target, env, bytes, mode, uid, gid } => {
                    if let Some(target) = target {
                        let tmp = tempfile::tempdir_in(&b.opts.work_dir)?;
                        let file = tmp.path().join("secret");
                        std::fs::write(&file, bytes)?;
                        set_attrs(&file, *mode, *uid, *gid)?;
                        out.mounts.push((target.clone(), MountSource::Bind { path: file, readonly: true }));
                        out._temps.push(tmp);
                    }
                    if let Some(var) = env {
                        out.env.push((var.clone(), String::from_utf8_lossy(bytes).into_owned()));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Copies `src` of `tree` into `dir` (a directory's contents, or the one file); true for a file.
fn copy_into(dir: &Path, tree: &SourceTree, src: &str, opts: &CopyOpts) -> Result<bool, Error> {
    let rel = src;
    let Some(top) = tree.followed(rel)? else {
        return Err(Error::SourceNotFound { path: src.to_string(), tree: tree.what.clone(), dir: tree.dir.clone() });
    };
    let is_file = top.kind == crate::context::Kind::File;
    copy::copy_sources(dir, tree, &[rel.to_string()], "/", opts)?;
    Ok(is_file)
}

fn set_attrs(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_as_docker_does() {
        assert_eq!(parse_secret("id=tok,src=/run/t").unwrap(), ("tok".into(), SecretSource::File("/run/t".into())));
        assert_eq!(parse_secret("id=tok,env=TOKEN").unwrap(), ("tok".into(), SecretSource::Env("TOKEN".into())));
        assert_eq!(parse_secret("id=TOKEN").unwrap(), ("TOKEN".into(), SecretSource::Env("TOKEN".into())));
        assert_eq!(parse_secret("type=file,id=a,source=x").unwrap(), ("a".into(), SecretSource::File("x".into())));
        assert!(parse_secret("src=/x").unwrap_err().contains("id= is required"));
        assert!(parse_secret("id=a,src=x,env=Y").unwrap_err().contains("not both"));
        assert!(parse_secret("id=a,colour=red").unwrap_err().contains("unknown key"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("10kb"), Some(10 << 10));
        assert_eq!(parse_size("lots"), None);
    }
}
