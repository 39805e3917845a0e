//! strata's repository metadata against createrepo_c's for the same RPMs: the corpus's
//! whole base repository (real dependencies of every kind, file lists with directories and
//! ghosts, changelogs) indexed by both, every primary, filelists and other entry compared
//! field by field after parsing; dnf reads strata's repository and answers as from
//! createrepo_c's; the same RPMs give the same bytes again, and a changed set replaces the
//! metadata, repomd.xml last, the old files removed.

use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_mirror::repodata::{self, HashCache};
use strata_mirror::tree::Tree;

fn corpus_packages() -> PathBuf {
    strata_corpus::repo("base").join("Packages")
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok && std::env::var_os("CI").is_some() {
        panic!("{tool} is needed on CI");
    }
    ok
}

/// The repodata file of a kind, as repomd.xml names it.
fn meta(repo: &Path, kind: &str) -> String {
    let repomd = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    let at = repomd.find(&format!("<data type=\"{kind}\">")).unwrap_or_else(|| panic!("no {kind} in {repomd}"));
    let href = repomd[at..].split("<location href=\"").nth(1).unwrap().split('"').next().unwrap();
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(repo.join(href)).unwrap());
    let mut s = String::new();
    gz.read_to_string(&mut s).unwrap();
    s
}

/// Every `<package>` of a metadata file as lines "path attr=value… text", keyed by
/// "name arch pkgid-or-checksum"; `skip` names attributes left out ("time@file").
fn parse(xml: &str, skip: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut key = String::new();
    let mut pending: Option<String> = None;
    loop {
        let ev = r.read_event().unwrap();
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let mut attrs: Vec<String> = e
                    .attributes()
                    .map(|a| a.unwrap())
                    .filter(|a| !skip.contains(&format!("{name}@{}", String::from_utf8_lossy(a.key.as_ref())).as_str()))
                    .map(|a| format!("{}={}", String::from_utf8_lossy(a.key.as_ref()), a.unescape_value().unwrap()))
                    .collect();
                attrs.sort();
                if name == "package" {
                    lines.clear();
                    key = attrs.join(" ");
                }
                if let Some(p) = pending.take() {
                    lines.push(p);
                }
                stack.push(name.clone());
                let line = format!("{} {}", stack.join("/"), attrs.join(" "));
                if matches!(ev, Event::Empty(_)) {
                    lines.push(line);
                    stack.pop();
                } else {
                    pending = Some(line);
                }
            }
            Event::Text(t) => {
                let text = t.decode().unwrap().into_owned();
                let text = quick_xml::escape::unescape(&text).unwrap().into_owned();
                if let Some(p) = pending.as_mut() {
                    p.push_str(&format!(" «{text}»"));
                }
            }
            Event::GeneralRef(g) => {
                let name = String::from_utf8_lossy(&g).into_owned();
                let ch = quick_xml::escape::unescape(&format!("&{name};")).unwrap().into_owned();
                if let Some(p) = pending.as_mut() {
                    p.push_str(&ch);
                }
            }
            Event::End(e) => {
                if let Some(p) = pending.take() {
                    lines.push(p);
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.pop();
                if name == "package" {
                    let mut k = key.clone();
                    if let Some(sum) = lines.iter().find(|l| l.contains("package/checksum ")) {
                        k = format!("{k} {sum}");
                    }
                    if let Some(n) = lines.iter().find(|l| l.contains("package/name ")) {
                        k = format!("{n} {k}");
                    }
                    out.insert(k, std::mem::take(&mut lines));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn assert_same(kind: &str, ours: &str, theirs: &str, skip: &[&str]) {
    let (a, b) = (parse(ours, skip), parse(theirs, skip));
    assert!(a.len() > 100 && a.values().all(|l| l.len() >= 2), "{kind}: parsed {} packages", a.len());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{kind}: the same packages");
    let mut differing = 0;
    for (k, la) in &a {
        let lb = &b[k];
        if la != lb {
            differing += 1;
            if differing <= 3 {
                let only_a: Vec<&String> = la.iter().filter(|l| !lb.contains(l)).collect();
                let only_b: Vec<&String> = lb.iter().filter(|l| !la.contains(l)).collect();
                eprintln!("{kind} {k}:\n  strata only: {only_a:#?}\n  createrepo_c only: {only_b:#?}");
            }
        }
    }
    assert_eq!(differing, 0, "{kind}: {differing} of {} packages differ from createrepo_c's (first ones above)", a.len());
}

fn dnf(repo: &Path, cache: &Path, args: &[&str]) -> String {
    let o = Command::new("dnf")
        .args(["-q", "--setopt=reposdir=/nonexistent", "--disablerepo=*", "--releasever", "12"])
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .arg("--installroot")
        .arg(cache.join("root"))
        .arg("--repofrompath")
        .arg(format!("r,file://{}", repo.display()))
        .args(["--enablerepo=r", "--nogpgcheck"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "dnf {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn metadata_equals_createrepo_c_and_dnf_reads_it() {
    if !have("createrepo_c") || !have("dnf") {
        eprintln!("skipped: createrepo_c and dnf are needed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let ours = mirror.join("rpms");
    let theirs = tmp.path().join("createrepo");
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(corpus_packages()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rpm") {
            std::fs::copy(&p, ours.join(p.file_name().unwrap())).unwrap();
            std::fs::copy(&p, theirs.join(p.file_name().unwrap())).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, strata_corpus::manifest().count("base"), "the corpus's base repository, every package");

    let tree = Tree::open(&mirror, &mut |_| {}).unwrap();
    let mut cache = HashCache::default();
    let first = repodata::update(&tree, "rpms", &mut cache).unwrap();
    assert_eq!(first.packages.len(), n);
    assert_eq!(first.written.last().map(String::as_str), Some("rpms/repodata/repomd.xml"), "repomd.xml last");
    let cr = Command::new("createrepo_c").args(["-q", "--no-database", "--changelog-limit", &repodata::CHANGELOG_LIMIT.to_string()]).arg(&theirs).output().unwrap();
    assert!(cr.status.success(), "{}", String::from_utf8_lossy(&cr.stderr));

    // createrepo_c's `time file` is the file's mtime; strata's is the build time.
    assert_same("primary", &meta(&ours, "primary"), &meta(&theirs, "primary"), &["time@file"]);
    assert_same("filelists", &meta(&ours, "filelists"), &meta(&theirs, "filelists"), &[]);
    assert_same("other", &meta(&ours, "other"), &meta(&theirs, "other"), &[]);

    // dnf reads it (checksums in repomd.xml verified) and answers the same as from
    // createrepo_c's repository.
    let q = ["repoquery", "--qf", "%{name}-%{evr}.%{arch} %{size} %{installsize} %{buildtime} %{sourcerpm} %{license}"];
    let a = dnf(&ours, &tmp.path().join("c1"), &q);
    let b = dnf(&theirs, &tmp.path().join("c2"), &q);
    assert_eq!(a.lines().count(), n, "{a}");
    assert_eq!(a, b);
    for what in ["--requires", "--provides", "--recommends", "--conflicts", "--list"] {
        let a = dnf(&ours, &tmp.path().join("c1"), &["repoquery", what, "bash", "nginx-light", "libc6"]);
        let b = dnf(&theirs, &tmp.path().join("c2"), &["repoquery", what, "bash", "nginx-light", "libc6"]);
        assert_eq!(a, b, "dnf repoquery {what}");
    }

    // The same RPMs: nothing written. One RPM fewer: new metadata, repomd.xml last, the
    // replaced files removed, nothing else touched.
    let again = repodata::update(&tree, "rpms", &mut cache).unwrap();
    assert!(again.written.is_empty() && again.removed.is_empty(), "{again:?}");
    std::fs::write(ours.join("repodata/not-ours.txt"), "x").unwrap();
    std::fs::remove_file(ours.join(&first.packages[0])).unwrap();
    let third = repodata::update(&tree, "rpms", &mut cache).unwrap();
    assert_eq!(third.packages.len(), n - 1);
    assert_eq!(third.written.len(), 4, "{third:?}");
    assert_eq!(third.removed.len(), 3, "{third:?}");
    assert!(third.removed.iter().all(|r| first.written.contains(r)), "{third:?}");
    let mut left: Vec<String> = std::fs::read_dir(ours.join("repodata")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left.len(), 5, "3 metadata files, repomd.xml and the foreign file: {left:?}");
    assert!(left.contains(&"not-ours.txt".to_string()));
}
