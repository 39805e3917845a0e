//! The metadata cache: repomd.xml per repo, and per repomd checksum the parsed indexes.
//!
//! Layout under the cache root:
//! `repos/<id>-<hash of the repo's URLs>/repomd.xml` (+ `base`, the base URL it came from)
//! and `repos/<id>-<hash>/<repomd sha256>/{primary,filelists}.idx`. An unchanged
//! repomd.xml therefore costs one small read (local repos) or nothing at all (remote repos
//! within `metadata_expire`), and every index is reused by every later run and image.

use crate::blob::write_atomic;
use crate::decompress::Compression;
use crate::fetch::{join_url, Fetcher};
use crate::filelists::FileIndex;
use crate::index::{PkgId, RepoIndex};
use crate::limits::{Budget, MAX_COMPRESSED, MAX_SMALL_FILE};
use crate::mirrors::resolve_mirrors;
use crate::repomd::{digest_hex, RepoData, Repomd};
use crate::RepoError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// Where a repository's metadata comes from, as the spec describes it.
#[derive(Debug, Clone, Default)]
pub struct RepoSource {
    pub id: String,
    /// Absolute URLs (http, https, file) or absolute paths.
    pub baseurls: Vec<String>,
    pub mirrorlist: Option<String>,
    pub metalink: Option<String>,
    /// How long a fetched repomd.xml is trusted; `None` = dnf's default of 48 hours.
    pub metadata_expire: Option<Duration>,
}

const DEFAULT_EXPIRE: Duration = Duration::from_secs(48 * 3600);

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Check repomd.xml now even if the cached copy has not expired.
    pub refresh: bool,
}

pub struct MetadataCache {
    root: PathBuf,
    fetcher: Arc<Fetcher>,
}

/// A repository whose primary index is loaded; filelists follow on demand.
pub struct LoadedRepo {
    pub id: String,
    /// The base URL actually used (after mirror selection).
    pub baseurl: String,
    /// `sha256:<hex>` of the repomd.xml bytes.
    pub repomd_checksum: String,
    pub revision: Option<String>,
    pub index: RepoIndex,
    filelists: FilelistsSource,
    loaded_filelists: OnceLock<Result<Option<FileIndex>, RepoError>>,
}

enum FilelistsSource {
    None,
    InMemory(Vec<u8>),
    Remote { data: RepoData, cache_file: PathBuf, fetcher: Arc<Fetcher> },
}

impl MetadataCache {
    pub fn new(root: PathBuf) -> Self {
        MetadataCache { root, fetcher: Arc::new(Fetcher::new()) }
    }

    /// `$STRATA_CACHE_DIR`, else `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
    pub fn default_root() -> PathBuf {
        if let Some(d) = std::env::var_os("STRATA_CACHE_DIR").filter(|d| !d.is_empty()) {
            return d.into();
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("strata");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/tmp".into());
        home.join(".cache").join("strata")
    }

    fn repo_dir(&self, src: &RepoSource) -> PathBuf {
        let key = format!("{:?}\n{:?}\n{:?}", src.baseurls, src.mirrorlist, src.metalink);
        let hash = &hex::encode(xxhash_rust::xxh3::xxh3_64(key.as_bytes()).to_be_bytes())[..12];
        let id: String = src
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        self.root.join("repos").join(format!("{id}-{hash}"))
    }

    pub fn load(&self, src: &RepoSource, opts: &LoadOptions) -> Result<LoadedRepo, RepoError> {
        let dir = self.repo_dir(src);
        let (base, repomd_bytes) = self.repomd(src, &dir, opts)?;
        let repomd = Repomd::parse(&repomd_bytes).map_err(|detail| RepoError::Corrupt {
            repo: src.id.clone(),
            file: join_url(&base, "repodata/repomd.xml"),
            detail,
        })?;
        let sha = digest_hex("sha256", &repomd_bytes).expect("sha256 is supported");
        let gen_dir = dir.join(&sha);
        let primary_idx = gen_dir.join("primary.idx");

        let index = match RepoIndex::open(&primary_idx) {
            Ok(index) => {
                tracing::debug!(repo = %src.id, "primary index from cache");
                index
            }
            Err(e) => {
                if primary_idx.exists() {
                    tracing::warn!(repo = %src.id, "rebuilding damaged cache file: {e}");
                }
                let data = repomd.get("primary").ok_or_else(|| RepoError::NoMetadata {
                    repo: src.id.clone(),
                    detail: format!("{} lists no primary metadata", join_url(&base, "repodata/repomd.xml")),
                })?;
                let bytes = self.fetch_verified(&src.id, &base, data)?;
                let url = join_url(&base, &data.location);
                let budget = Budget::for_file(bytes.len() as u64, data.open_size)
                    .map_err(|detail| RepoError::TooLarge { repo: src.id.clone(), file: url.clone(), detail })?;
                let builder = parse_primary(&bytes, &data.location, budget).map_err(|detail| RepoError::Corrupt {
                    repo: src.id.clone(),
                    file: url,
                    detail,
                })?;
                drop(bytes);
                builder.write_file(&primary_idx)?
            }
        };
        let filelists = match repomd.get("filelists") {
            Some(data) => FilelistsSource::Remote {
                data: data.clone(),
                cache_file: gen_dir.join("filelists.idx"),
                fetcher: self.fetcher.clone(),
            },
            None => FilelistsSource::None,
        };
        Ok(LoadedRepo {
            id: src.id.clone(),
            baseurl: base,
            repomd_checksum: format!("sha256:{sha}"),
            revision: repomd.revision.clone(),
            index,
            filelists,
            loaded_filelists: OnceLock::new(),
        })
    }

    /// The repomd.xml to use and the base URL it belongs to.
    fn repomd(&self, src: &RepoSource, dir: &Path, opts: &LoadOptions) -> Result<(String, Vec<u8>), RepoError> {
        let local = src.mirrorlist.is_none() && src.metalink.is_none() && src.baseurls.iter().all(|u| is_local(u));
        let cached = dir.join("repomd.xml");
        let cached_base = dir.join("base");
        if !local && !opts.refresh {
            let max_age = src.metadata_expire.unwrap_or(DEFAULT_EXPIRE);
            let fresh = std::fs::metadata(&cached)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < max_age);
            if fresh {
                if let (Ok(bytes), Ok(base)) = (std::fs::read(&cached), std::fs::read_to_string(&cached_base)) {
                    tracing::debug!(repo = %src.id, "repomd.xml from cache (not expired)");
                    return Ok((base, bytes));
                }
            }
        }
        let mirrors = resolve_mirrors(
            &self.fetcher,
            &src.id,
            &src.baseurls,
            src.mirrorlist.as_deref(),
            src.metalink.as_deref(),
        )?;
        // The error reported when every mirror fails: a mirror that answered with bad data
        // says more than one that could not be reached.
        let mut last_err: Option<RepoError> = None;
        let note = |e: RepoError, last: &mut Option<RepoError>| {
            let keep_old = matches!(e, RepoError::Unreachable { .. })
                && last.as_ref().is_some_and(|o| !matches!(o, RepoError::Unreachable { .. }));
            if !keep_old {
                *last = Some(e);
            }
        };
        for base in &mirrors.baseurls {
            let url = join_url(base, "repodata/repomd.xml");
            let bytes = match self.fetcher.get_limited(&src.id, &url, MAX_SMALL_FILE) {
                Ok(b) => b,
                Err(e) => {
                    note(e, &mut last_err);
                    continue;
                }
            };
            if let Some(size) = mirrors.repomd_size.filter(|s| *s != bytes.len() as u64) {
                let e = RepoError::Corrupt {
                    repo: src.id.clone(),
                    file: url,
                    detail: format!("{} bytes, the metalink says {size}", bytes.len()),
                };
                note(e, &mut last_err);
                continue;
            }
            if let Some(e) = metalink_mismatch(&src.id, &url, &bytes, &mirrors.repomd_hashes) {
                note(e, &mut last_err);
                continue;
            }
            if !local {
                let write = || -> std::io::Result<()> {
                    write_atomic(&cached, &bytes)?;
                    write_atomic(&cached_base, base.as_bytes())
                };
                write().map_err(|e| RepoError::cache(dir, e))?;
            }
            return Ok((base.clone(), bytes));
        }
        Err(last_err.unwrap_or_else(|| RepoError::NoMetadata {
            repo: src.id.clone(),
            detail: "no baseurl, mirrorlist or metalink to fetch from".into(),
        }))
    }

    /// Downloads one metadata file and checks its size and checksum against repomd.xml.
    fn fetch_verified(&self, repo: &str, base: &str, data: &RepoData) -> Result<Vec<u8>, RepoError> {
        fetch_verified(&self.fetcher, repo, base, data)
    }
}

fn fetch_verified(f: &Fetcher, repo: &str, base: &str, data: &RepoData) -> Result<Vec<u8>, RepoError> {
    let url = join_url(base, &data.location);
    // Never more than repomd.xml declares: a hostile mirror cannot make us hold more.
    let bytes = f.get_limited(repo, &url, data.size.unwrap_or(MAX_COMPRESSED)).map_err(|e| match (e, data.size) {
        (RepoError::TooLarge { repo, file, .. }, Some(size)) => RepoError::TooLarge {
            repo,
            file,
            detail: format!("more than {size} bytes, but repomd.xml says {size}; not reading further"),
        },
        (e, _) => e,
    })?;
    if let Some(size) = data.size.filter(|s| *s != bytes.len() as u64) {
        return Err(RepoError::Corrupt {
            repo: repo.into(),
            file: url,
            detail: format!("{} bytes, repomd.xml says {size} (truncated download?)", bytes.len()),
        });
    }
    let actual = digest_hex(&data.checksum_type, &bytes)
        .map_err(|detail| RepoError::Corrupt { repo: repo.into(), file: url.clone(), detail })?;
    if actual != data.checksum {
        return Err(RepoError::ChecksumMismatch {
            repo: repo.into(),
            file: url,
            kind: data.checksum_type.clone(),
            expected: data.checksum.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn metalink_mismatch(repo: &str, url: &str, bytes: &[u8], hashes: &[(String, String)]) -> Option<RepoError> {
    // The strongest hash the metalink offers that we can compute decides.
    let preferred = ["sha512", "sha384", "sha256", "sha224", "sha1", "md5"];
    let (kind, expected) = preferred
        .iter()
        .find_map(|k| hashes.iter().find(|(t, _)| t == k))?;
    let actual = digest_hex(kind, bytes).ok()?;
    (actual != expected.to_ascii_lowercase()).then(|| RepoError::ChecksumMismatch {
        repo: repo.into(),
        file: url.into(),
        kind: kind.clone(),
        expected: expected.clone(),
        actual,
    })
}

fn is_local(url: &str) -> bool {
    url.starts_with('/') || url.starts_with("file://")
}

fn parse_primary(compressed: &[u8], name: &str, budget: Budget) -> Result<crate::index::IndexBuilder, String> {
    let compression = Compression::detect(name, compressed)?;
    crate::decompress::on_thread(compression, compressed, |reader| crate::primary::parse(reader, budget))?
}

impl std::fmt::Debug for LoadedRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedRepo")
            .field("id", &self.id)
            .field("baseurl", &self.baseurl)
            .field("repomd_checksum", &self.repomd_checksum)
            .field("packages", &self.index.len())
            .finish()
    }
}

impl LoadedRepo {
    /// A repo built from an index in memory (tests, tools); filelists given as XML.
    pub fn in_memory(id: &str, index: RepoIndex, filelists_xml: Option<Vec<u8>>) -> LoadedRepo {
        LoadedRepo {
            id: id.to_string(),
            baseurl: String::new(),
            repomd_checksum: String::new(),
            revision: None,
            index,
            filelists: filelists_xml.map_or(FilelistsSource::None, FilelistsSource::InMemory),
            loaded_filelists: OnceLock::new(),
        }
    }

    /// Whether createrepo's primary file rule covers `path` (`bin/` anywhere, `/etc/...`,
    /// `/usr/lib/sendmail`): then primary's file list alone answers who owns it.
    pub fn primary_covers(path: &str) -> bool {
        path.contains("bin/") || path.starts_with("/etc/") || path == "/usr/lib/sendmail"
    }

    /// Owners of `path` per the full filelists, loaded (and cached) on first use. A repo
    /// without filelists owns no paths beyond primary's.
    pub fn file_owners_full(&self, path: &str) -> Result<Vec<PkgId>, RepoError> {
        let loaded = self.loaded_filelists.get_or_init(|| self.load_filelists());
        match loaded {
            Ok(Some(fi)) => Ok(fi.owners(path)),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e.clone()),
        }
    }

    fn load_filelists(&self) -> Result<Option<FileIndex>, RepoError> {
        let corrupt = |file: String, detail: String| RepoError::Corrupt { repo: self.id.clone(), file, detail };
        match &self.filelists {
            FilelistsSource::None => Ok(None),
            FilelistsSource::InMemory(xml) => {
                FileIndex::build(&xml[..], Budget::undeclared(), &self.index)
                    .map(Some)
                    .map_err(|d| corrupt("filelists.xml".into(), d))
            }
            FilelistsSource::Remote { data, cache_file, fetcher } => {
                if let Ok(fi) = FileIndex::open(cache_file) {
                    return Ok(Some(fi));
                }
                tracing::info!(repo = %self.id, "loading filelists for a file dependency");
                let bytes = fetch_verified(fetcher, &self.id, &self.baseurl, data)?;
                let url = join_url(&self.baseurl, &data.location);
                let budget = Budget::for_file(bytes.len() as u64, data.open_size).map_err(|detail| {
                    RepoError::TooLarge { repo: self.id.clone(), file: url.clone(), detail }
                })?;
                let reader = Compression::detect(&data.location, &bytes)
                    .and_then(|c| c.reader(&bytes[..]))
                    .map_err(|d| corrupt(url.clone(), d))?;
                let fi = FileIndex::build(reader, budget, &self.index).map_err(|d| corrupt(url, d))?;
                write_atomic(cache_file, fi.bytes()).map_err(|e| RepoError::cache(cache_file, e))?;
                Ok(Some(fi))
            }
        }
    }

    /// Where package `id` is downloaded from: its `xml:base` or the repo's base URL, joined
    /// with its location.
    pub fn package_url(&self, id: PkgId) -> String {
        let p = self.index.package(id);
        join_url(p.location_base().unwrap_or(&self.baseurl), p.location())
    }
}
