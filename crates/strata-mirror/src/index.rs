//! The mirror's listings: `index.json` (what tools read; also the record of which manifest
//! digests are published, so a repeat publish skips them) and `index.html` (what a person
//! browsing the mirror sees). Both list every image, version and arch with the archive's
//! size and sha256, the manifest digest, the image id and the image's RPM. Links are
//! relative to the mirror's root, or absolute under `--base-url`.
//!
//! Both are written last, after every file they name is in place, so they never name a file
//! that does not exist.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const INDEX_JSON: &str = "index.json";
pub const INDEX_HTML: &str = "index.html";
const FORMAT: u32 = 1;

/// index.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Index {
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// By the image's folder name in the mirror.
    pub images: BTreeMap<String, ImageEntry>,
    /// The yum repository of image RPMs.
    pub repository: Repository,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageEntry {
    /// The image's name in the store it was published from.
    pub image: String,
    /// By version (the RPM's version), then by RPM arch.
    pub versions: BTreeMap<String, BTreeMap<String, Published>>,
}

/// One published image: a version of an image for one arch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Published {
    pub tag: String,
    /// The manifest digest (what a registry serves, what `--digests` shows).
    pub manifest: String,
    /// The config digest (`docker images` ID).
    pub image_id: String,
    pub archive: FileRef,
    pub checksum: FileRef,
    pub rpm: RpmRef,
    /// When this manifest was first published here (RFC 3339, UTC).
    pub published: String,
}

/// A file of the mirror.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRef {
    /// Relative to the mirror's root.
    pub path: String,
    /// Where to fetch it: `path` under the base URL, or `path` itself.
    pub href: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpmRef {
    #[serde(flatten)]
    pub file: FileRef,
    /// `name-version-release.arch`.
    pub nevra: String,
    pub provides: Vec<String>,
    pub requires: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Repository {
    /// The folder dnf's baseurl names.
    pub path: String,
    pub href: String,
    /// The RPM files the repository metadata lists.
    pub packages: Vec<String>,
}

impl Index {
    /// Reads index.json; absent, it is an empty index.
    pub fn parse(bytes: Option<&[u8]>, path: &std::path::Path) -> Result<Index, Error> {
        let Some(bytes) = bytes else { return Ok(Index { format: FORMAT, ..Default::default() }) };
        let index: Index = serde_json::from_slice(bytes).map_err(|e| {
            Error::Invalid(format!(
                "{} is not a strata mirror index ({e})\n  hint: a folder another tool publishes into cannot be shared; give strata a folder of its own, or remove the file to publish afresh",
                path.display()
            ))
        })?;
        if index.format != FORMAT {
            return Err(Error::Invalid(format!("{} has format {}, this strata writes {FORMAT}\n  hint: publish with the strata that wrote it", path.display(), index.format)));
        }
        Ok(index)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("the index serializes");
        v.push(b'\n');
        v
    }

    /// Every published entry, as (folder name, version, arch, entry).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str, &Published)> {
        self.images.iter().flat_map(|(name, img)| img.versions.iter().flat_map(move |(v, arches)| arches.iter().map(move |(a, p)| (name.as_str(), v.as_str(), a.as_str(), p))))
    }

    /// Where a path of the mirror is fetched from.
    pub fn href(base_url: Option<&str>, path: &str) -> String {
        let encoded = encode_path(path);
        match base_url {
            Some(base) => format!("{}/{encoded}", base.trim_end_matches('/')),
            None => encoded,
        }
    }

    /// index.html.
    pub fn to_html(&self) -> String {
        let mut o = String::new();
        o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Container images</title>\n");
        o.push_str("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}code{font-size:.85em}</style>\n");
        o.push_str("</head>\n<body>\n<h1>Container images</h1>\n");
        o.push_str("<p>Each archive loads with <code>docker load -i FILE</code> or <code>podman load -i FILE</code>; each folder's CHECKSUM lists the archives' SHA-256 (<code>sha256sum -c CHECKSUM</code>).</p>\n");
        o.push_str("<table>\n<thead><tr><th>Image</th><th>Version</th><th>Arch</th><th>Archive</th><th>Size</th><th>SHA-256</th><th>Manifest digest</th><th>Image ID</th><th>RPM</th></tr></thead>\n<tbody>\n");
        for (name, img) in &self.images {
            let mut versions: Vec<(&String, &BTreeMap<String, Published>)> = img.versions.iter().collect();
            // Newest first, by rpm's version order.
            versions.sort_by(|a, b| strata_rpm::evr::rpmvercmp(b.0, a.0));
            for (version, arches) in versions {
                for (arch, p) in arches {
                    o.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a> (<a href=\"{}\">CHECKSUM</a>)</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td><a href=\"{}\">{}</a></td></tr>\n",
                        esc(name),
                        esc(version),
                        esc(arch),
                        esc(&p.archive.href),
                        esc(p.archive.path.rsplit('/').next().unwrap_or_default()),
                        esc(&p.checksum.href),
                        human_size(p.archive.size),
                        esc(&p.archive.sha256),
                        esc(&p.manifest),
                        esc(&p.image_id),
                        esc(&p.rpm.file.href),
                        esc(&p.rpm.nevra),
                    ));
                }
            }
        }
        o.push_str("</tbody>\n</table>\n");
        let repo = &self.repository;
        o.push_str(&format!(
            "<h2>RPM repository</h2>\n<p>The images as RPMs (<code>dnf install docker-image-NAME</code>) are in <a href=\"{}\">{}</a>, {} package{}:</p>\n<pre>[strata-images]\nname=strata container images\nbaseurl={}\nenabled=1\n</pre>\n",
            esc(&repo.href),
            esc(&repo.path),
            repo.packages.len(),
            if repo.packages.len() == 1 { "" } else { "s" },
            // dnf needs an absolute baseurl: without --base-url, the reader fills it in.
            if self.base_url.is_some() { esc(&repo.href) } else { format!("URL-OF-THIS-PAGE/{}", esc(&repo.path)) },
        ));
        o.push_str("</body>\n</html>\n");
        o
    }
}

/// HTML-escaped text (also safe inside a double- or single-quoted attribute): XML's
/// attribute escaping, which drops control characters, plus the single quote.
pub fn esc(s: &str) -> String {
    crate::repodata::attr(s).replace('\'', "&#39;")
}

/// A mirror path as a URL path: everything but unreserved characters and `/` escaped.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn human_size(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / MIB)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

/// Checks `--base-url`: an http(s) or ftp URL with nothing that could break out of an HTML
/// attribute or a JSON reader's expectations.
pub fn check_base_url(url: &str) -> Result<String, Error> {
    let ok_scheme = ["http://", "https://", "ftp://"].iter().any(|s| url.starts_with(s) && url.len() > s.len());
    if !ok_scheme || url.chars().any(|c| c.is_control() || c.is_whitespace() || "\"'<>\\`".contains(c)) || url.contains(['?', '#']) {
        return Err(Error::Invalid(format!(
            "--base-url {url:?} is not a plain http(s) or ftp URL of a folder\n  hint: e.g. --base-url https://mirror.example.org/images (no query, fragment, quotes or spaces)"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_or_under_the_base_and_escaped() {
        assert_eq!(Index::href(None, "web/1.0^git/web-1.0^git.x86_64.tar.xz"), "web/1.0%5Egit/web-1.0%5Egit.x86_64.tar.xz");
        assert_eq!(Index::href(Some("https://m.example/img/"), "rpms/"), "https://m.example/img/rpms/");
        assert_eq!(esc("<a href='x'>&\"</a>\u{1b}"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(check_base_url("https://m.example/img/").unwrap(), "https://m.example/img");
        for bad in ["javascript:alert(1)", "https://x/\"onload=", "file:///etc", "https://", "http://a b", "https://x/?q"] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }
}
