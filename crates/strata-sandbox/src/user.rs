//! A Dockerfile `USER` resolved against the image root's own account files, the way
//! buildkit (moby's `GetExecUser`) resolves it, so a build sees the ids docker would give.

use crate::root::read_in_root;
use crate::Error;
use std::path::Path;

/// The identity a program runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, in `/etc/group` order.
    pub additional_gids: Vec<u32>,
    /// From the user's `/etc/passwd` entry, `/` without one: what `HOME` defaults to.
    pub home: String,
}

/// Docker accepts ids up to this (moby's `maxID`): above it, ids collide with `-1`.
const MAX_ID: u64 = (1 << 31) - 1;

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, mixed, or `""` for docker's
/// default) in `root`. `/etc/passwd` and `/etc/group` are read with the root as `/`, so a
/// symlink among them never reaches the host's files; either may be missing.
///
/// As docker does: a name must be in the file, a number need not be; `uid:gid` (numbers or
/// `root`) is taken as it is; a user found by name or number gets the groups that list it
/// as a member as supplementary groups, unless the spec names a group.
pub fn resolve_user(root: &Path, spec: &str) -> Result<ResolvedUser, Error> {
    if spec.is_empty() {
        // Docker's default user is "0": root's groups from /etc/group, or plain 0:0 when
        // the files cannot say (buildkit falls back the same way).
        return Ok(resolve(root, "0").unwrap_or(ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".into(),
        }));
    }
    resolve(root, spec)
}

fn resolve(root: &Path, spec: &str) -> Result<ResolvedUser, Error> {
    let error = |problem: String| Error::User {
        user: spec.to_string(),
        root: root.to_path_buf(),
        problem,
    };
    if spec.contains('\0') || spec.matches(':').count() > 1 {
        return Err(error(
            "not USER's form (name, uid, name:group or uid:gid)".into(),
        ));
    }
    let passwd = read_account_file(root, "etc/passwd").map_err(error)?;
    let users = parse_passwd(&passwd);
    let home_of = |uid: u32| {
        users
            .iter()
            .find(|u| u.uid == uid)
            .map_or_else(|| "/".to_string(), |u| u.home.clone())
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // buildkit's fast path: both numeric, nothing looked up but HOME (as runc then does).
    if let Some(g) = group_part {
        if let (Some(uid), Some(gid)) = (fast_id(user_part), fast_id(g)) {
            return Ok(ResolvedUser {
                uid,
                gid,
                additional_gids: Vec::new(),
                home: home_of(uid),
            });
        }
    }
    let numeric_user = parse_id(user_part);
    let matched = users.iter().find(|u| match numeric_user {
        Some(n) => u.uid == n,
        None => u.name == user_part,
    });
    let (uid, mut gid, name) = match (matched, numeric_user) {
        (Some(u), _) => (u.uid, u.gid, Some(u.name.as_str())),
        (None, Some(n)) => (n, 0, None),
        (None, None) if user_part.is_empty() => (0, 0, None),
        (None, None) => {
            return Err(error(format!(
                "no user {user_part:?} in the image's /etc/passwd"
            )))
        }
    };
    let mut additional_gids = Vec::new();
    if group_part.is_some() || name.is_some() {
        let group = read_account_file(root, "etc/group").map_err(error)?;
        let groups = parse_group(&group);
        match group_part.filter(|g| !g.is_empty()) {
            Some(g) => {
                let numeric = parse_id(g);
                let found = groups.iter().find(|e| match numeric {
                    Some(n) => e.gid == n,
                    None => e.name == g,
                });
                gid = match (found, numeric) {
                    (Some(e), _) => e.gid,
                    (None, Some(n)) => n,
                    (None, None) => {
                        return Err(error(format!("no group {g:?} in the image's /etc/group")))
                    }
                };
            }
            None => {
                let name = name.unwrap_or_default();
                additional_gids = groups
                    .iter()
                    .filter(|e| e.members.iter().any(|m| *m == name))
                    .map(|e| e.gid)
                    .collect();
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: home_of(uid),
    })
}

/// A decimal id in docker's range.
fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_ID)
        .map(|n| n as u32)
}

/// buildkit's `parseUID`: a number, or `root` for 0.
fn fast_id(s: &str) -> Option<u32> {
    if s == "root" {
        Some(0)
    } else {
        parse_id(s)
    }
}

fn read_account_file(root: &Path, rel: &str) -> Result<String, String> {
    match read_in_root(root, Path::new(rel)) {
        Ok(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(format!("read /{rel}: {e}")),
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Entries in file order; lines whose ids are not numbers are skipped (they name nobody
/// a program could run as).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?.to_string();
            let _password = f.next();
            let uid = parse_id(f.next()?)?;
            let gid = parse_id(f.next()?)?;
            let _gecos = f.next();
            let home = f.next().unwrap_or("").to_string();
            Some(PasswdEntry {
                name,
                uid,
                gid,
                home: if home.is_empty() { "/".into() } else { home },
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?.to_string();
            let _password = f.next();
            let gid = parse_id(f.next()?)?;
            let members = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            Some(GroupEntry { name, gid, members })
        })
        .collect()
}

/// The home of `uid` in the root's `/etc/passwd`, `/` without an entry: what runc gives a
/// program as `HOME` when it has none.
pub(crate) fn home_of(root: &Path, uid: u32) -> String {
    let passwd = read_account_file(root, "etc/passwd").unwrap_or_default();
    parse_passwd(&passwd)
        .into_iter()
        .find(|u| u.uid == uid)
        .map_or_else(|| "/".to_string(), |u| u.home)
}
