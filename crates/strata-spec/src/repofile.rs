//! dnf `.repo` files: INI with dnf's quirks (indented continuation lines, list values split
//! on commas and white space, `1`/`yes`/`true` booleans).
//!
//! Written by hand: the INI crates on crates.io do not support continuation lines, which
//! every multi-mirror `baseurl` uses.

use crate::repo::{Expire, RepoEntry};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RepoFileError {
    #[error("cannot read repo files in {dir}: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Syntax { file: PathBuf, line: usize, message: String },
}

/// Every repo defined by `*.repo` files in `dir`, in file-name order. A missing folder holds
/// no repos (a machine without dnf is common); an unreadable one is an error.
pub fn read_reposdir(dir: &Path) -> Result<Vec<RepoEntry>, RepoFileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(RepoFileError::Dir { dir: dir.into(), source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "repo"))
        .collect();
    files.sort();
    let mut repos = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|source| RepoFileError::Dir { dir: f.clone(), source })?;
        repos.extend(parse_repo_file(&f, &text)?);
    }
    Ok(repos)
}

pub(crate) fn parse_repo_file(file: &Path, text: &str) -> Result<Vec<RepoEntry>, RepoFileError> {
    let err = |line: usize, message: String| RepoFileError::Syntax { file: file.into(), line, message };
    // First gather (section, key, value) with continuation lines folded in.
    type Keys = Vec<(usize, String, String)>;
    let mut sections: Vec<(usize, String, Keys)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            let Some((_, _, keys)) = sections.last_mut() else {
                return Err(err(lineno, "continuation line before any section".into()));
            };
            let Some((_, _, value)) = keys.last_mut() else {
                return Err(err(lineno, "continuation line before any key".into()));
            };
            value.push('\n');
            value.push_str(trimmed);
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| err(lineno, format!("section header `{trimmed}` lacks `]`")))?;
            sections.push((lineno, name.trim().to_string(), Vec::new()));
            continue;
        }
        let (k, v) = trimmed
            .split_once('=')
            .ok_or_else(|| err(lineno, format!("expected `key=value`, found `{trimmed}`")))?;
        let Some((_, _, keys)) = sections.last_mut() else {
            return Err(err(lineno, "key before any [section]".into()));
        };
        keys.push((lineno, k.trim().to_string(), v.trim().to_string()));
    }

    let mut repos = Vec::new();
    for (_, id, keys) in sections {
        if id == "main" {
            continue;
        }
        let mut r = RepoEntry { id, ..Default::default() };
        for (line, key, value) in keys {
            let list = || -> Vec<String> {
                value
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            };
            let boolean = || match value.to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => Ok(true),
                "0" | "no" | "false" | "off" => Ok(false),
                _ => Err(err(line, format!("`{key}` must be a boolean, found `{value}`"))),
            };
            let int = || {
                value
                    .parse::<i32>()
                    .map_err(|_| err(line, format!("`{key}` must be a number, found `{value}`")))
            };
            match key.as_str() {
                "name" => r.name = Some(value.clone()),
                "baseurl" => r.baseurl = list(),
                "mirrorlist" => r.mirrorlist = Some(value.clone()),
                "metalink" => r.metalink = Some(value.clone()),
                "enabled" => r.enabled = Some(boolean()?),
                "gpgcheck" => r.gpgcheck = Some(boolean()?),
                "gpgkey" => r.gpgkey = list(),
                "priority" => r.priority = Some(int()?),
                "cost" => r.cost = Some(int()?),
                "exclude" | "excludepkgs" => r.exclude = list(),
                "metadata_expire" => {
                    r.metadata_expire = Some(Expire::parse(&value).map_err(|m| err(line, m))?)
                }
                // dnf knows dozens more (skip_if_unavailable, countme, type, ...) that do not
                // change what a resolve sees.
                _ => {}
            }
        }
        repos.push(r);
    }
    Ok(repos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_fedora_style_file() {
        let text = "\
[main]
gpgcheck=1

# the release
[fedora]
name=Fedora $releasever - $basearch
baseurl=https://a.example/fedora/$releasever/
  https://b.example/fedora/$releasever/
metalink=https://mirrors.example/metalink?repo=fedora-$releasever&arch=$basearch
enabled=1
countme=1
metadata_expire=7d
gpgcheck=yes
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch
excludepkgs=kernel*, glibc-langpack-*
priority=50

[updates-testing]
enabled=0
mirrorlist=https://m.example/list
";
        let repos = parse_repo_file(Path::new("f.repo"), text).unwrap();
        assert_eq!(repos.len(), 2);
        let f = &repos[0];
        assert_eq!(f.id, "fedora");
        assert_eq!(f.baseurl.len(), 2);
        assert_eq!(f.exclude, ["kernel*", "glibc-langpack-*"]);
        assert_eq!(f.priority, Some(50));
        assert_eq!(f.gpgcheck, Some(true));
        assert_eq!(f.metadata_expire, Some(Expire::After(std::time::Duration::from_secs(7 * 86400))));
        assert_eq!(repos[1].enabled, Some(false));
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = parse_repo_file(Path::new("x.repo"), "[a]\nenabled=maybe\n").unwrap_err();
        assert_eq!(e.to_string(), "x.repo:2: `enabled` must be a boolean, found `maybe`");
        let e = parse_repo_file(Path::new("x.repo"), "baseurl=x\n").unwrap_err();
        assert!(e.to_string().starts_with("x.repo:1:"));
    }

    #[test]
    fn missing_dir_is_empty() {
        assert!(read_reposdir(Path::new("/nonexistent/strata")).unwrap().is_empty());
    }
}
