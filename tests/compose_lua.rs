//! Lua scriptlets (`-p <lua>`) through the real binary, against rpm 4.18 itself: fixture
//! packages built with rpmbuild, composed by strata and installed by `rpm --root DIR -i`
//! (same packages, one transaction, rpm orders both), and the two roots compared — paths,
//! types, modes, owners, link targets, contents —, `rpm -qa` equal, `rpm -Va` clean. Plus
//! rpm's failure rules (a failing Lua `%post` warns, `%pre`/`%pretrans` fail the package)
//! and a hostile scriptlet that tries to reach the host from inside the image root.
//! Needs root (the sandbox), rpmbuild, createrepo_c, rpm and umoci.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fixture package: `pkg`'s preamble lines, then scriptlet sections. Its files' mtimes
/// are clamped to the build time, as distribution builds are: strata clamps layer mtimes
/// to the build time, and `rpm -Va` would otherwise see the difference.
fn lua_pkg(name: &str, preamble: &[&str], sections: &str) -> FixturePkg {
    let mut lines: Vec<&str> = vec!["%define clamp_mtime_to_source_date_epoch 1"];
    lines.extend_from_slice(preamble);
    lines.push(sections);
    pkg(name, "1", &lines)
}

/// `filesystem`'s shape: a Lua %pretrans that lays out the empty root (nothing to exec
/// there yet), with directories, usr-merge symlinks and a file.
const FS_SECTIONS: &str = r#"
%pretrans -p <lua>
-- As filesystem.spec does: mkdir where missing (strata's sandbox has made /etc, /proc,
-- /dev and /sys as mountpoints; they go again after the run when left empty).
for _, d in ipairs({"/usr", "/usr/bin", "/usr/lib", "/usr/share", "/etc", "/var", "/var/lib", "/var/log"}) do
  if not posix.stat(d) then assert(posix.mkdir(d)) end
end
assert(posix.symlink("usr/bin", "/bin"))
assert(posix.symlink("usr/lib", "/lib"))
assert(posix.chmod("/var/log", "0750"))
local f = assert(io.open("/etc/fs-release", "w"))
f:write("fs pretrans arg ", tostring(arg[2]), " of type ", math.type(arg[2]), " in ", posix.getcwd(), "\n")
f:close()
"#;

/// %pre/%post/%posttrans using posix.*, rpm.expand, rpm.vercmp, rpm.ver, a Lua file trigger.
const APP_SECTIONS: &str = r#"
%pre -p <lua>
local st = posix.stat("/etc/fs-release")
local conf = rpm.expand("%{_sysconfdir}/app.conf")
local f = assert(io.open(conf, "w"))
f:write("bindir=", rpm.expand("%{_bindir}"), " datadir=", rpm.expand("%{_datadir}"), "\n")
f:write("vercmp=", rpm.vercmp("1.0", "1.0.1"), ",", rpm.vercmp("2:1", "1:9"), ",", rpm.vercmp("1.0-1", "1.0-1"), "\n")
f:write("ver=", tostring(rpm.ver("3:4.5-6") > rpm.ver("3:4.5-5")), " ", rpm.ver("1.2-3").r, "\n")
f:write("fs-release ", st.type, " ", st.mode, " ", tostring(posix.access("/etc/fs-release", "r")), "\n")
f:close()
assert(posix.mkdir("/var/lib/app"))
assert(posix.chown("/var/lib/app", 1, 2))
assert(posix.chmod("/var/lib/app", "u=rwx,g=rx,o="))
local t = assert(io.open("/var/lib/app/tmp", "w")) t:write("x") t:close()
rpm.define("appdir /var/lib/app")
%post -p <lua>
assert(posix.unlink("/var/lib/app/tmp"))
assert(posix.symlink(rpm.expand("%{_datadir}") .. "/app/1", "/var/lib/app/current"))
assert(posix.readlink("/var/lib/app/current") == "/usr/share/app/1")
local f = assert(rpm.open("/var/lib/app/state", "w"))
-- rpm.open's write is (data[, size]): one string.
f:write("post " .. #arg .. " " .. arg[1] .. " " .. tostring(arg[2]) .. " " .. tostring(posix.stat("/var/lib/app/current", "type")) .. "\n")
f:close()
assert(posix.mkdir("/var/lib/app/gone"))
assert(posix.rmdir("/var/lib/app/gone"))
local ok, msg, errno = posix.mkdir("/var/lib/app")
assert(ok == nil and errno == 17, msg)
%posttrans -p <lua>
local f = assert(io.open("/var/lib/app/posttrans", "w"))
local names = {}
for n in posix.files("/usr/share/app") do names[#names + 1] = n end
table.sort(names)
f:write(table.concat(names, ","), "\n")
f:close()
%filetriggerin -p <lua> -- /usr/share
-- Sorted: the order rpm hands the files over in is the installer's business, not Lua's.
local files = {}
local n = rpm.next_file()
while n do files[#files + 1] = n n = rpm.next_file() end
table.sort(files)
local f = assert(io.open("/var/lib/app/triggered", "a"))
f:write(table.concat(files, "\n"), "\n")
f:close()
"#;

fn compose(spec: &Path, dir: &Path, env: &[(&str, &str)]) -> Output {
    let cache = dir.join("cache");
    let mut cmd = strata(&cache);
    cmd.arg("compose").arg(spec).arg("--store").arg(dir.join("store")).arg("--cache-dir").arg(&cache);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn spec(dir: &Path, repo: &Path, packages: &[&str]) -> PathBuf {
    write_json(&dir.join("spec.json"), &serde_json::json!({"repos": [{"id": "fixture", "baseurl": repo}], "images": {"lua": {"packages": packages}}}))
}

fn rpms(repo: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| repo.join("Packages").join(format!("{n}-1-1.noarch.rpm"))).collect()
}

/// `rpm --root DIR -i` of `files` in one transaction.
fn rpm_install(root: &Path, home: &Path, files: &[PathBuf]) -> Output {
    std::fs::create_dir_all(root).unwrap();
    run(Command::new("rpm").env("HOME", home).arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm", "-i"]).args(files))
}

fn rpm_va(root: &Path, home: &Path) -> Output {
    run(Command::new("rpm").env("HOME", home).arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm", "-Va"]))
}

/// Every entry but its time (scriptlets' files get the wall clock on both sides) and
/// the rpmdb's own files (the same data, in differently laid out bytes).
fn entries(root: &Path) -> BTreeMap<String, String> {
    tree(root)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("var/lib/rpm/") && !k.starts_with("var/lib/rpm-state"))
        .map(|(k, v)| (k, v.split(' ').filter(|w| !w.starts_with("t=")).collect::<Vec<_>>().join(" ")))
        .collect()
}

/// Composes `names` from `repo` and installs the same RPMs with rpm; returns both roots.
fn both(dir: &Path, repo: &Path, names: &[&str]) -> (PathBuf, PathBuf, Output) {
    let out = compose(&spec(dir, repo, names), dir, &[]);
    assert_ok("composing the Lua fixtures", &out);
    let ours = umoci_unpack(&dir.join("store"), "lua:latest", &dir.join("bundle"));
    let theirs = dir.join("rpmroot");
    let rpm = rpm_install(&theirs, &rpm_home(dir), &rpms(repo, names));
    (ours, theirs, rpm)
}

fn assert_same(dir: &Path, ours: &Path, theirs: &Path) {
    let home = rpm_home(dir);
    assert_same_tree("strata's root vs rpm --root's", &entries(ours), &entries(theirs));
    assert_eq!(rpm_qa(ours, &home), rpm_qa(theirs, &home), "rpm -qa");
    for root in [ours, theirs] {
        let va = rpm_va(root, &home);
        assert!(stdout(&va).trim().is_empty(), "rpm -Va in {}:\n{}{}", root.display(), stdout(&va), stderr(&va));
    }
}

#[test]
fn lua_pretrans_pre_post_posttrans_and_file_triggers_build_the_tree_rpm_builds() {
    require_tool("rpm");
    let dir = tempfile::tempdir().unwrap();
    let repo = build_fixture_repo(dir.path(), &[lua_pkg("fs", &[], FS_SECTIONS), lua_pkg("app", &["Requires(pre): fs"], APP_SECTIONS)]);
    let (ours, theirs, rpm) = both(dir.path(), &repo, &["fs", "app"]);
    assert_ok("rpm --root -i of the Lua fixtures", &rpm);
    assert_same(dir.path(), &ours, &theirs);
    // The scripts did run (not skipped), with rpm's arg table and macros.
    let release = std::fs::read_to_string(ours.join("etc/fs-release")).unwrap();
    assert_eq!(release, "fs pretrans arg 1 of type integer in /\n");
    let conf = std::fs::read_to_string(ours.join("etc/app.conf")).unwrap();
    assert!(conf.starts_with("bindir=/usr/bin datadir=/usr/share\nvercmp=-1,1,0\nver=true 3\n"), "{conf}");
    assert_eq!(std::fs::read_to_string(ours.join("var/lib/app/state")).unwrap(), "post 2 <lua> 1 link\n");
    assert!(std::fs::read_to_string(ours.join("var/lib/app/triggered")).unwrap().contains("/usr/share/app/1\n"));
    let log = std::fs::read_to_string(dir.path().join("cache/logs/lua.log")).unwrap_or_default();
    assert!(!log.contains("cannot run yet"), "{log}");
}

#[test]
fn a_failing_lua_post_warns_and_a_failing_pre_or_pretrans_fails_the_package() {
    require_tool("rpm");
    let dir = tempfile::tempdir().unwrap();
    let post_fails = "%post -p <lua>\nlocal f = io.open('/postfail-ran', 'w') f:write('ran\\n') f:close()\nerror('post failed on purpose')\n";
    let pre_fails = "%pre -p <lua>\nerror('pre failed on purpose')\n";
    let pretrans_fails = "%pretrans -p <lua>\nlocal x = nil\nreturn x.field\n";
    let repo = build_fixture_repo(
        dir.path(),
        &[lua_pkg("fs", &[], FS_SECTIONS), lua_pkg("postfail", &["Requires: fs"], post_fails), lua_pkg("prefail", &["Requires: fs"], pre_fails), lua_pkg("pretransfail", &[], pretrans_fails)],
    );
    // %post: rpm and strata both install the package and go on.
    let (ours, theirs, _) = both(dir.path(), &repo, &["fs", "postfail"]);
    assert_same(dir.path(), &ours, &theirs);
    assert_eq!(std::fs::read_to_string(ours.join("postfail-ran")).unwrap(), "ran\n");

    // %pre and %pretrans: rpm keeps the package out; strata fails the image, naming the
    // package, the scriptlet and Lua's message.
    for (name, what, message) in [("prefail", "%pre", "pre failed on purpose"), ("pretransfail", "%pretrans", "attempt to index a nil value")] {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let err = assert_fails(&format!("a failing Lua {what}"), &compose(&spec(&sub, &repo, &["fs", name]), &sub, &[]));
        assert!(err.contains(&format!("{name}-1-1.noarch")) && err.contains(what) && err.contains(message), "{err}");
        let root = sub.join("rpmroot");
        let rpm = rpm_install(&root, &rpm_home(&sub), &rpms(&repo, &["fs", name]));
        assert!(!rpm.status.success(), "rpm -i with a failing {what} succeeded");
        assert!(!rpm_qa(&root, &rpm_home(&sub)).iter().any(|p| p.starts_with(name)), "rpm installed {name}");
    }
}

#[test]
fn a_hostile_lua_scriptlet_changes_nothing_outside_the_image_root() {
    let dir = tempfile::tempdir().unwrap();
    let sentinel = dir.path().join("sentinel");
    std::fs::create_dir_all(&sentinel).unwrap();
    std::fs::write(sentinel.join("keep"), "host\n").unwrap();
    let s = sentinel.display().to_string();
    let hostile = format!(
        r#"
%pretrans -p <lua>
-- The root is empty: every way out is tried before anything is installed.
local seen = {{}}
local function try(what, ...) local r = {{pcall(...)}} seen[#seen + 1] = what .. "=" .. tostring(r[2]) end
try("dotdot", io.open, "/../../../../../../{s}/dotdot", "w")
try("abs", io.open, "{s}/abs", "w")
try("mkdir", posix.mkdir, "../../../../../../{s}/mkdir")
try("symlink", posix.symlink, "/../../../../../..{s}", "/escape")
try("through", io.open, "/escape/through", "w")
try("execute", os.execute, "/bin/sh -c 'touch {s}/execute'")
try("rpmexecute", rpm.execute, "/usr/bin/touch", "{s}/rpmexecute")
local e = io.open("/proc/1/environ") local env = e and e:read("a") or "" if e then e:close() end
local m = io.open("/proc/1/mountinfo") local mounts = m and m:read("a") or "" if m then m:close() end
local pid = posix.fork()
if pid == 0 then posix.exec("/bin/touch", "{s}/forked") os.exit(3) end
posix.wait(pid)
local out = assert(io.open("/hostile-seen", "w"))
out:write(table.concat(seen, "\n"), "\nenviron=[", env, "]\nsecret=", tostring(posix.getenv("STRATA_HOSTILE_SECRET")), "\n")
out:write("host-mounts=", tostring(mounts:find("{s}", 1, true) ~= nil), "\n")
out:close()
"#
    );
    let repo = build_fixture_repo(dir.path(), &[lua_pkg("hostile", &[], &hostile)]);
    let out = compose(&spec(dir.path(), &repo, &["hostile"]), dir.path(), &[("STRATA_HOSTILE_SECRET", "leaked-host-secret")]);
    assert_ok("composing the hostile package", &out);
    // The host is as it was.
    let left: Vec<String> = std::fs::read_dir(&sentinel).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["keep"], "the hostile scriptlet wrote outside the root");
    assert_eq!(std::fs::read_to_string(sentinel.join("keep")).unwrap(), "host\n");
    // And the script saw nothing of it.
    let root = umoci_unpack(&dir.path().join("store"), "lua:latest", &dir.path().join("bundle"));
    let seen = std::fs::read_to_string(root.join("hostile-seen")).unwrap();
    assert!(!seen.contains("leaked-host-secret"), "{seen}");
    assert!(seen.contains("environ=[]\n") && seen.contains("secret=nil\n") && seen.contains("host-mounts=false"), "{seen}");
    // What the escape attempts made, they made inside the image.
    assert!(root.join(s.trim_start_matches('/')).join("abs").exists() || seen.contains("abs=nil"), "{seen}");
}

/// `rpm.expand` sees the image's own macro files as they stand when the scriptlet runs:
/// a package installed earlier ships `macros.vendor`, a later one's Lua %post expands it.
/// rpm 4.18 reads no macro file of the root on `--root -i`, so its reference run gets the
/// same definition with `--define` (as the image's rpm, running inside, would read it).
#[test]
fn lua_rpm_expand_sees_the_images_macro_files() {
    require_tool("rpm");
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let vendor = "Name: vendor\nVersion: 1\nRelease: 1\nSummary: macros\nLicense: MIT\nBuildArch: noarch\n\
        %define clamp_mtime_to_source_date_epoch 1\n%description\nMacros.\n%install\n\
        mkdir -p %{buildroot}/usr/lib/rpm/macros.d\n\
        printf '%%%%_vendortag acme-42\\n%%%%_vendordir %%%%{_datadir}/acme\\n' > %{buildroot}/usr/lib/rpm/macros.d/macros.vendor\n\
        %files\n/usr/lib/rpm/macros.d/macros.vendor\n";
    let user = "Name: user\nVersion: 1\nRelease: 1\nSummary: uses them\nLicense: MIT\nBuildArch: noarch\n\
        Requires(post): vendor\n%description\nUser.\n%files\n\
        %post -p <lua>\nlocal f = assert(io.open(\"/usr/lib/rpm/vendortag\", \"w\"))\n\
        f:write(rpm.expand(\"%{_vendortag} %{_vendordir}\"), \"\\n\")\nf:close()\n";
    let files = [specs.join("vendor.spec"), specs.join("user.spec")];
    std::fs::write(&files[0], vendor).unwrap();
    std::fs::write(&files[1], user).unwrap();
    let repo = build_spec_files(dir.path(), &files);
    let out = compose(&spec(dir.path(), &repo, &["vendor", "user"]), dir.path(), &[]);
    assert_ok("composing the macro fixtures", &out);
    let ours = umoci_unpack(&dir.path().join("store"), "lua:latest", &dir.path().join("bundle"));
    assert_eq!(std::fs::read_to_string(ours.join("usr/lib/rpm/vendortag")).unwrap(), "acme-42 /usr/share/acme\n");

    let theirs = dir.path().join("rpmroot");
    std::fs::create_dir_all(&theirs).unwrap();
    let rpm = run(Command::new("rpm")
        .env("HOME", rpm_home(dir.path()))
        .arg("--root")
        .arg(&theirs)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_vendortag acme-42", "--define", "_vendordir %{_datadir}/acme", "-i"])
        .args(rpms(&repo, &["vendor", "user"])));
    assert_ok("rpm --root -i of the macro fixtures", &rpm);
    assert_same(dir.path(), &ours, &theirs);
}
