//! The transaction: order, conflicts, `%pretrans`, then per package `%triggerprein`,
//! `%pre`, files, `%filetriggerin` (priority ≥ 10000), `%post`, `%triggerin`, the other
//! `%filetriggerin`, then `%posttrans` and `%transfiletriggerin`, as rpm 4.18's
//! `rpmPackageInstall` runs them. After each package, the image's rpm macro files are read
//! again if it placed any ([`Macros`]): `%_install_langs`, `%_excludedocs` and
//! `%_netsharedpath` then apply to the packages after it.

use crate::macros::{Macros, MACRO_DIRS};
use crate::rootfs::{Attrs, RootFs};
use crate::scripts::{ScriptInvocation, ScriptRunner};
use crate::triggers::Classic;
use crate::users::IdMap;
use crate::{find_conflicts, install_order, Error};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use strata_package::{parse_caps_text, ClassicKind, FileEntry, FileKind, FileTrigger, Package, Scriptlet, ScriptletKind, TriggerKind};
use strata_rpmdb::FileState;

/// rpm's `TRIGGER_PRIORITY_BOUND`: file triggers at or above it run before `%post`.
const UPPER_PRIORITY: u32 = 10_000;

#[derive(Clone, Debug, Default)]
pub struct InstallOptions {
    /// Leave out `%doc` files (rpm's `--nodocs`); the image's `%_excludedocs` can only add
    /// to it.
    pub no_docs: bool,
    /// Keep only files of these languages (plus language-neutral ones); `None` keeps all,
    /// or what the image's `%_install_langs` says once a package defined it. Set, it wins
    /// over the image's macro, as rpm's `--define` wins over macro files.
    pub langs: Option<Vec<String>>,
}

/// What decides whether a file is installed, for one package: the options merged with
/// the image's macros as they stand when the package is installed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Filter {
    no_docs: bool,
    langs: Option<Vec<String>>,
    netshared: Vec<String>,
}

impl Filter {
    fn new(opts: &InstallOptions, macros: &Macros) -> Filter {
        Filter { no_docs: opts.no_docs || macros.exclude_docs(), langs: opts.langs.clone().or_else(|| macros.install_langs()), netshared: macros.netshared_paths() }
    }

    /// rpm 4.18's `skipFiles`: net-shared paths, then docs, then languages.
    fn state(&self, f: &FileEntry) -> FileState {
        if self.netshared.iter().any(|p| f.path.strip_prefix(p.as_str()).is_some_and(|r| r.is_empty() || r.starts_with('/'))) {
            return FileState::NetShared;
        }
        // rpm's --nodocs: a file flagged both %doc and %license is a license, and stays.
        if self.no_docs && f.flags.is_doc() && !f.flags.has(strata_package::FileFlags::LICENSE) {
            return FileState::NotInstalled;
        }
        match &self.langs {
            Some(langs) if !f.lang.is_empty() && !f.lang.split('|').any(|l| langs.iter().any(|k| k == l || k == "all")) => FileState::NotInstalled,
            _ => FileState::Normal,
        }
    }
}

/// What installing one package left behind.
#[derive(Debug)]
pub struct InstalledPackage {
    /// Index into the caller's package list.
    pub index: usize,
    pub nevra: String,
    /// One state per header file, for the rpmdb.
    pub file_states: Vec<FileState>,
}

/// An entry placed from a payload, with the stamp it had right after placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub package: usize,
    pub mtime: u32,
    pub is_dir: bool,
    /// `(inode, ctime sec, ctime nsec)` after placement; a later change means a scriptlet
    /// (or a later package) touched the entry.
    pub stamp: (u64, i64, i64),
}

/// What one payload entry became on disk: enough to write the same entry into a layer
/// without looking at the root, and to tell whether the root still holds it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Absolute path.
    pub path: String,
    /// Index into the package's header file list.
    pub file: usize,
    pub kind: PlacedKind,
    /// Owner, permissions, mtime and capabilities as applied.
    pub attrs: Attrs,
    /// `(inode, ctime sec, ctime nsec)` once the whole package was placed (hardlinks made).
    pub stamp: (u64, i64, i64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlacedKind {
    /// A regular file with its content; `digest` is the header's (hex, `FILEDIGESTALGO`).
    File { size: u64, digest: String },
    /// Another name of the file at `target` (same package).
    Hardlink { target: String },
    Symlink { target: String },
    Dir,
    /// Device node, FIFO or socket: `mode` with its type bits.
    Special { mode: u32, rdev: u64 },
}

#[derive(Debug, Default)]
pub struct InstallReport {
    /// In install order (the rpmdb's order).
    pub packages: Vec<InstalledPackage>,
    /// Every payload path placed, by absolute path: the package that placed it last.
    pub placed: BTreeMap<String, Placed>,
    /// Per package (the caller's index), every entry it placed, in payload order.
    pub placements: Vec<Vec<Placement>>,
    /// Scriptlet output and warnings, in order: the build log.
    pub log: Vec<String>,
    pub warnings: Vec<String>,
    /// The image's rpm macros as its macro files stand after the last package.
    pub macros: Macros,
}

struct Txn<'a> {
    root: &'a Path,
    fs: RootFs,
    runner: Option<&'a dyn ScriptRunner>,
    ids: Option<IdMap>,
    report: InstallReport,
    /// Read again whenever a package places a macro file.
    macros: Macros,
}

/// Installs `packages` into `root` (an existing directory, normally empty). Scriptlets run
/// through `runner`; `None` skips them all.
pub fn install(root: &Path, packages: &[Package], opts: &InstallOptions, runner: Option<&dyn ScriptRunner>) -> Result<InstallReport, Error> {
    let files: Vec<Vec<FileEntry>> = packages.iter().map(Package::files).collect::<Result<_, _>>()?;
    let nevras: Vec<String> = packages.iter().map(Package::nevra).collect();
    let named: Vec<(String, Vec<FileEntry>)> = nevras.iter().cloned().zip(files.iter().cloned()).collect();
    let conflicts = find_conflicts(&named);
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }
    let order = install_order(packages);
    let mut t = Txn { root, fs: RootFs::open(root)?, runner, ids: None, report: InstallReport::default(), macros: Macros::new() };
    t.report.placements = vec![Vec::new(); packages.len()];

    for &i in &order {
        // rpm: a failed %pretrans (critical, like %pre) keeps its package out.
        if !t.scriptlet(&packages[i], &nevras[i], ScriptletKind::PreTrans)? {
            let failed = t.report.log.last().cloned().unwrap_or_default();
            return Err(Error::PreFailed { package: nevras[i].clone(), what: "%pretrans".into(), status: "non-zero exit".into(), output: failed });
        }
    }
    let triggers: Vec<Vec<FileTrigger>> = packages.iter().map(Package::file_triggers).collect();
    let classic = Classic::new(packages);
    let mut installed: Vec<usize> = Vec::new();
    for &i in &order {
        t.classic(&classic, packages, &nevras, i, ClassicKind::PreIn, &installed)?;
        if !t.scriptlet(&packages[i], &nevras[i], ScriptletKind::Pre)? {
            let failed = t.report.log.last().cloned().unwrap_or_default();
            return Err(Error::PreFailed { package: nevras[i].clone(), what: "%pre".into(), status: "non-zero exit".into(), output: failed });
        }
        let filter = Filter::new(opts, &t.macros);
        let states = t.place(i, &packages[i], &files[i], &filter)?;
        t.report.packages.push(InstalledPackage { index: i, nevra: nevras[i].clone(), file_states: states });
        installed.push(i);
        t.file_triggers_in(&nevras, &files, &triggers, i, &installed, true)?;
        t.scriptlet(&packages[i], &nevras[i], ScriptletKind::Post)?;
        t.classic(&classic, packages, &nevras, i, ClassicKind::In, &installed)?;
        t.file_triggers_in(&nevras, &files, &triggers, i, &installed, false)?;
        if t.report.placements[i].iter().any(|p| MACRO_DIRS.iter().any(|d| p.path.starts_with(d))) {
            t.reload_macros();
        }
    }
    for &i in &installed {
        t.scriptlet(&packages[i], &nevras[i], ScriptletKind::PostTrans)?;
    }
    let mut trans: Vec<(u32, usize, usize)> = Vec::new();
    for &q in &installed {
        for (k, trig) in triggers[q].iter().enumerate().filter(|(_, tr)| tr.kind == TriggerKind::TransIn) {
            trans.push((trig.priority, q, k));
        }
    }
    trans.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, q, k) in trans {
        let trig = &triggers[q][k];
        let matched: Vec<String> = installed.iter().flat_map(|&s| t.matching(s, &files[s], trig)).collect();
        if !matched.is_empty() {
            t.trigger(&nevras[q], "%transfiletriggerin", trig, &matched)?;
        }
    }
    t.report.macros = t.macros;
    Ok(t.report)
}

impl Txn<'_> {
    /// `%filetriggerin` after package `i` was placed, as rpm 4.18 runs them: first the
    /// triggers of installed packages that `i`'s files set off, then `i`'s own triggers on
    /// the files installed so far (its own included), each group by priority (higher
    /// first), then install order, then trigger number. `upper`: the priorities at or
    /// above 10000 (before `%post`), else the rest (after `%triggerin`).
    fn file_triggers_in(&mut self, nevras: &[String], files: &[Vec<FileEntry>], triggers: &[Vec<FileTrigger>], i: usize, installed: &[usize], upper: bool) -> Result<(), Error> {
        for immediate in [false, true] {
            let mut runs: Vec<(u32, usize, usize, Vec<String>)> = Vec::new();
            for &q in installed.iter().filter(|&&q| (q == i) == immediate) {
                for (k, trig) in triggers[q].iter().enumerate().filter(|(_, tr)| tr.kind == TriggerKind::In && (tr.priority >= UPPER_PRIORITY) == upper) {
                    let sources: &[usize] = if immediate { installed } else { std::slice::from_ref(&i) };
                    let matched: Vec<String> = sources.iter().flat_map(|&s| self.matching(s, &files[s], trig)).collect();
                    if !matched.is_empty() {
                        runs.push((trig.priority, q, k, matched));
                    }
                }
            }
            let position = |q: usize| installed.iter().position(|&x| x == q);
            runs.sort_by(|a, b| b.0.cmp(&a.0).then(position(a.1).cmp(&position(b.1))).then(a.2.cmp(&b.2)));
            for (_, q, k, matched) in runs {
                self.trigger(&nevras[q], "%filetriggerin", &triggers[q][k], &matched)?;
            }
        }
        Ok(())
    }

    /// The image's macro files, read again (a package just placed one).
    fn reload_macros(&mut self) {
        let (macros, warnings) = Macros::load(&self.fs, std::env::consts::ARCH);
        self.macros = macros;
        self.report.warnings.extend(warnings);
    }

    /// The classic triggers `kind` fires around installing package `i` (`db`: installed so far).
    fn classic(&mut self, classic: &Classic, packages: &[Package], nevras: &[String], i: usize, kind: ClassicKind, db: &[usize]) -> Result<(), Error> {
        for run in classic.runs(i, kind, db) {
            self.classic_script(&packages[run.owner], &nevras[run.owner], kind, run.index, run.args)?;
        }
        Ok(())
    }

    /// How the runner is asked to run `script`; a Lua one gets the image's macros as they
    /// stand now (rpm.expand), copied because the runner may re-read them after it.
    fn invocation<'s>(&self, package: &'s str, what: &'s str, script: &'s Scriptlet, args: Vec<String>, stdin: Vec<u8>) -> ScriptInvocation<'s> {
        let macros = if script.is_lua() { self.macros.pairs() } else { Vec::new() };
        ScriptInvocation { package, what, program: &script.program, body: &script.body, args, stdin, macros }
    }

    /// Runs classic trigger script `index` of package `owner` with rpm's two arguments.
    fn classic_script(&mut self, pkg: &Package, nevra: &str, kind: ClassicKind, index: usize, args: [usize; 2]) -> Result<(), Error> {
        let Some(runner) = self.runner else { return Ok(()) };
        let Some(script) = pkg.classic_trigger_script(index) else { return Ok(()) };
        // Lua (`<lua>`) goes to the runner like any program, as for the other scriptlets.
        let inv = self.invocation(nevra, kind.label(), &script, args.iter().map(usize::to_string).collect(), Vec::new());
        // A failing trigger only warns, in rpm too (`runScript`'s warn_only).
        if !self.run(runner, &inv)? {
            self.report.warnings.push(format!("{nevra}: {} failed; continuing as rpm does (see the build log)", kind.label()));
        }
        Ok(())
    }

    fn ids(&mut self) -> Result<&IdMap, Error> {
        if self.ids.is_none() {
            let passwd = self.fs.read("/etc/passwd")?;
            let group = self.fs.read("/etc/group")?;
            self.ids = Some(IdMap::from_files(passwd.as_deref(), group.as_deref()));
        }
        Ok(self.ids.as_ref().expect("just set"))
    }

    /// Installed files of package `index` under any of the trigger's prefixes, by their
    /// header paths in header order (rpm matches the paths packages name).
    fn matching(&self, index: usize, files: &[FileEntry], trig: &FileTrigger) -> Vec<String> {
        let mut found: Vec<usize> = self.report.placements[index]
            .iter()
            .filter(|p| self.report.placed.get(&p.path).is_some_and(|last| last.package == index))
            .map(|p| p.file)
            .filter(|&k| trig.prefixes.iter().any(|p| files[k].path.starts_with(p.as_str())))
            .collect();
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|k| files[k].path.clone()).collect()
    }

    /// Runs one scriptlet; `Ok(false)` when it failed (the caller applies rpm's rule).
    fn scriptlet(&mut self, pkg: &Package, nevra: &str, kind: ScriptletKind) -> Result<bool, Error> {
        let Some(script) = pkg.scriptlet(kind) else { return Ok(true) };
        let Some(runner) = self.runner else { return Ok(true) };
        // Lua (`<lua>`) goes to the runner like any program: it interprets it confined.
        let inv = self.invocation(nevra, kind.label(), &script, vec!["1".into()], Vec::new());
        let ok = self.run(runner, &inv)?;
        if !ok && kind != ScriptletKind::Pre && kind != ScriptletKind::PreTrans {
            self.report.warnings.push(format!("{nevra}: {} failed; continuing as rpm does (see the build log)", kind.label()));
            return Ok(true);
        }
        Ok(ok)
    }

    fn trigger(&mut self, nevra: &str, what: &str, trig: &FileTrigger, files: &[String]) -> Result<(), Error> {
        let Some(runner) = self.runner else { return Ok(()) };
        let mut stdin = files.join("\n").into_bytes();
        stdin.push(b'\n');
        // rpm 4.18 runs file triggers with `$1` = 0 and no `$2` (runHandleTriggersInPkg).
        let inv = self.invocation(nevra, what, &trig.script, vec!["0".into()], stdin);
        if !self.run(runner, &inv)? {
            self.report.warnings.push(format!("{nevra}: {what} failed; continuing as rpm does (see the build log)"));
        }
        Ok(())
    }

    fn run(&mut self, runner: &dyn ScriptRunner, inv: &ScriptInvocation<'_>) -> Result<bool, Error> {
        let outcome = runner.run(self.root, inv).map_err(|e| Error::Scriptlet(format!("{}: cannot run {}: {e}", inv.package, inv.what)))?;
        let mut line = format!("{} {}: {}", inv.package, inv.what, outcome.status);
        if !outcome.output.trim().is_empty() {
            line.push('\n');
            line.push_str(outcome.output.trim_end());
        }
        self.report.log.push(line);
        // A scriptlet may have added users or replaced directories.
        self.ids = None;
        self.fs.invalidate();
        Ok(outcome.success)
    }

    /// Writes one package's payload; returns its file states.
    fn place(&mut self, index: usize, pkg: &Package, files: &[FileEntry], filter: &Filter) -> Result<Vec<FileState>, Error> {
        let nevra = pkg.nevra();
        let fail = |message: String| Error::Install { package: nevra.clone(), message };
        let states: Vec<FileState> = files.iter().map(|f| filter.state(f)).collect();
        let mut seen = vec![false; files.len()];
        // Hardlink sets: the first written path of each (device, inode), and members that
        // arrived before their content.
        let mut link_head: HashMap<(u32, u32), String> = HashMap::new();
        let mut link_wait: HashMap<(u32, u32), Vec<(usize, Attrs)>> = HashMap::new();
        let mut payload = pkg.payload()?;
        while let Some((i, entry)) = payload.next_file()? {
            let i = i as usize;
            seen[i] = true;
            let f = &files[i];
            if states[i] != FileState::Normal || f.flags.is_ghost() {
                continue;
            }
            let attrs = self.attrs(f).map_err(&fail)?;
            let key = (f.device, f.inode);
            let io = |e: std::io::Error| fail(e.to_string());
            let kind = match f.kind {
                FileKind::Regular if entry.size == 0 && f.size > 0 => {
                    // A hardlink member whose content comes with another member.
                    match link_head.get(&key) {
                        Some(head) => {
                            self.fs.hardlink(&f.path, head).map_err(io)?;
                            Some(PlacedKind::Hardlink { target: head.clone() })
                        }
                        None => {
                            link_wait.entry(key).or_default().push((i, attrs.clone()));
                            None
                        }
                    }
                }
                FileKind::Regular => {
                    // One byte past the header's size is enough to refuse a longer entry
                    // without writing all of it.
                    let written = match self.fs.write_file(&f.path, &mut payload.content().take(f.size.saturating_add(1)), &attrs) {
                        Ok(n) => n,
                        // The half-written file stays: the caller discards the whole root.
                        Err(e) => match payload.digest_mismatch() {
                            Some(m) => return Err(Error::Digest { package: nevra.clone(), index, mismatch: m.clone() }),
                            None => return Err(io(e)),
                        },
                    };
                    if written != f.size {
                        return Err(fail(format!("{}: payload has {written} bytes, header says {}", f.path, f.size)));
                    }
                    let head = self.record(index, i, f, PlacedKind::File { size: f.size, digest: f.digest.clone() }, attrs.clone()).map_err(io)?;
                    for (w, wattrs) in link_wait.remove(&key).unwrap_or_default() {
                        self.fs.hardlink(&files[w].path, &head).map_err(io)?;
                        self.record(index, w, &files[w], PlacedKind::Hardlink { target: head.clone() }, wattrs).map_err(io)?;
                    }
                    link_head.insert(key, head);
                    None
                }
                FileKind::Symlink => {
                    let mut target = f.link_target.clone();
                    if target.is_empty() {
                        payload.content().read_to_string(&mut target).map_err(io)?;
                    }
                    self.fs.symlink(&f.path, &target, &attrs).map_err(io)?;
                    Some(PlacedKind::Symlink { target })
                }
                FileKind::Directory => {
                    self.fs.dir(&f.path, &attrs).map_err(io)?;
                    Some(PlacedKind::Dir)
                }
                _ => {
                    self.fs.special(&f.path, f.mode, u64::from(f.rdev), &attrs).map_err(io)?;
                    Some(PlacedKind::Special { mode: f.mode, rdev: u64::from(f.rdev) })
                }
            };
            if let Some(kind) = kind {
                self.record(index, i, f, kind, attrs).map_err(io)?;
            }
            if f.path == "/etc/passwd" || f.path == "/etc/group" {
                self.ids = None;
            }
        }
        if let Some((w, _)) = link_wait.values().flatten().next() {
            return Err(fail(format!("{}: hardlink without content in the payload", files[*w].path)));
        }
        // Stamps are taken once the package is complete: making a hardlink changes the
        // ctime of every name of the file.
        for k in 0..self.report.placements[index].len() {
            let path = self.report.placements[index][k].path.clone();
            let stamp = self.fs.stamp(&path)?;
            self.report.placements[index][k].stamp = stamp;
            if let Some(p) = self.report.placed.get_mut(&path).filter(|p| p.package == index) {
                p.stamp = stamp;
            }
        }
        for (i, f) in files.iter().enumerate() {
            if !seen[i] && !f.flags.is_ghost() && states[i] == FileState::Normal {
                return Err(fail(format!("{} is in the header but not in the payload (truncated or corrupt package)", f.path)));
            }
        }
        Ok(states)
    }

    /// Notes a placed entry under the path it landed at (a merged-/usr `/bin/x` is
    /// `/usr/bin/x`: one file, whichever name a package gave it); returns that path. Its
    /// stamp is filled in when the package is complete.
    fn record(&mut self, index: usize, file: usize, f: &FileEntry, kind: PlacedKind, attrs: Attrs) -> std::io::Result<String> {
        let stamp = (0, 0, 0);
        let path = self.fs.resolved(&f.path)?;
        self.report.placed.insert(path.clone(), Placed { package: index, mtime: f.mtime, is_dir: f.kind == FileKind::Directory, stamp });
        self.report.placements[index].push(Placement { path: path.clone(), file, kind, attrs, stamp });
        Ok(path)
    }

    fn attrs(&mut self, f: &FileEntry) -> Result<Attrs, String> {
        let ids = self.ids().map_err(|e| e.to_string())?;
        let (uid, gid) = (ids.uid(&f.user), ids.gid(&f.group));
        let (perms, warnings) = fallback_to_root(f, uid.is_some(), gid.is_some());
        self.report.warnings.extend(warnings);
        let caps = if f.caps.is_empty() { None } else { parse_caps_text(&f.caps).map_err(|e| format!("{}: {e}", f.path))? };
        Ok(Attrs { uid: uid.unwrap_or(0), gid: gid.unwrap_or(0), perms, mtime: f.mtime, caps })
    }
}

/// rpm's rule (4.18 `rpmfilesStat`): an owner or group that does not exist in the image
/// becomes root, and the bit that would grant it — setuid for the user, setgid for the
/// group — is cleared, so a file meant to run as an unprivileged account never runs as
/// root. Returns the permissions to apply and rpm's warnings (with the path, and saying
/// when a bit was dropped).
fn fallback_to_root(f: &FileEntry, user_known: bool, group_known: bool) -> (u32, Vec<String>) {
    let mut perms = f.perms();
    let mut warnings = Vec::new();
    for (known, what, name, bit, label) in [(user_known, "user", &f.user, 0o4000, "setuid"), (group_known, "group", &f.group, 0o2000, "setgid")] {
        if known {
            continue;
        }
        let cleared = if perms & bit != 0 { format!("; {label} bit cleared") } else { String::new() };
        perms &= !bit;
        warnings.push(format!("{}: {what} {name} does not exist - using root{cleared}", f.path));
    }
    (perms, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_package::FileFlags;

    fn file(flags: u32, lang: &str) -> FileEntry {
        FileEntry {
            path: "/usr/share/x".into(),
            kind: FileKind::Regular,
            mode: 0o100644,
            size: 1,
            user: "root".into(),
            group: "root".into(),
            mtime: 0,
            flags: FileFlags(flags),
            digest: String::new(),
            link_target: String::new(),
            caps: String::new(),
            lang: lang.into(),
            device: 1,
            inode: 1,
            rdev: 0,
        }
    }

    #[test]
    fn unknown_owners_become_root_without_their_setid_bits() {
        let f = FileEntry { mode: 0o106750, user: "games".into(), group: "games".into(), ..file(0, "") };
        assert_eq!(fallback_to_root(&f, true, true), (0o6750, vec![]));
        let (perms, w) = fallback_to_root(&f, false, true);
        assert_eq!((perms, w.as_slice()), (0o2750, &["/usr/share/x: user games does not exist - using root; setuid bit cleared".to_string()][..]));
        let (perms, w) = fallback_to_root(&f, true, false);
        assert_eq!((perms, w.as_slice()), (0o4750, &["/usr/share/x: group games does not exist - using root; setgid bit cleared".to_string()][..]));
        assert_eq!(fallback_to_root(&f, false, false).0, 0o0750);
        // A directory's setgid bit (inherited group) goes the same way; sticky stays.
        let d = FileEntry { kind: FileKind::Directory, mode: 0o43775, ..f.clone() };
        assert_eq!(fallback_to_root(&d, true, false).0, 0o1775);
        let plain = FileEntry { mode: 0o100644, ..f };
        assert_eq!(fallback_to_root(&plain, false, true), (0o644, vec!["/usr/share/x: user games does not exist - using root".to_string()]));
    }

    fn keep(f: &FileEntry, opts: &InstallOptions) -> bool {
        Filter::new(opts, &Macros::new()).state(f) == FileState::Normal
    }

    #[test]
    fn docs_and_languages_are_filtered_as_rpm_does() {
        let nodocs = InstallOptions { no_docs: true, langs: None };
        assert!(!keep(&file(FileFlags::DOC, ""), &nodocs));
        assert!(keep(&file(FileFlags::DOC | FileFlags::LICENSE, ""), &nodocs), "%license stays");
        assert!(keep(&file(FileFlags::CONFIG, ""), &nodocs));
        let en = InstallOptions { no_docs: false, langs: Some(vec!["en".into(), "de".into()]) };
        assert!(keep(&file(0, ""), &en), "language-neutral files stay");
        assert!(keep(&file(0, "de"), &en));
        assert!(!keep(&file(0, "fr"), &en));
        assert!(keep(&file(0, "fr|de"), &en));
        let all = InstallOptions { no_docs: false, langs: Some(vec!["all".into()]) };
        assert!(keep(&file(0, "fr"), &all));
    }

    #[test]
    fn the_images_macros_apply_and_the_options_win() {
        let mut m = Macros::new();
        m.parse("%_install_langs fr\n%_netsharedpath /usr/share\n%_excludedocs 1\n");
        let none = Filter::new(&InstallOptions::default(), &m);
        assert_eq!(none.state(&file(0, "fr")), FileState::NetShared, "netshared first, as rpm");
        let f = |path: &str, flags, lang: &str| FileEntry { path: path.into(), ..file(flags, lang) };
        assert_eq!(none.state(&f("/usr/sharex", 0, "de")), FileState::NotInstalled, "%_install_langs fr");
        assert_eq!(none.state(&f("/etc/x", 0, "fr")), FileState::Normal);
        assert_eq!(none.state(&f("/etc/d", FileFlags::DOC, "")), FileState::NotInstalled, "%_excludedocs");
        let spec = Filter::new(&InstallOptions { no_docs: false, langs: Some(vec!["de".into()]) }, &m);
        assert_eq!(spec.state(&f("/etc/x", 0, "de")), FileState::Normal, "the spec's langs win over the image's");
    }
}
