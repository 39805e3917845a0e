//! The interpreter unconfined on a temporary directory (absolute paths: rpm's chunk
//! starts in `/`). Confinement is tested end to end in the workspace's tests/compose_lua.rs.

use super::*;

fn scriptlet(body: &str, args: &[&str]) -> Scriptlet {
    Scriptlet { name: "%post(t-1-1.noarch)".into(), body: body.into(), args: args.iter().map(|s| s.to_string()).collect(), files: None }
}

fn std_macros() -> Macros {
    Macros::standard(Vec::<(String, String)>::new())
}

#[test]
fn a_filesystem_like_pretrans_makes_dirs_links_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let body = format!(
        r#"
local root = "{d}"
assert(posix.mkdir(root .. "/usr"))
assert(posix.mkdir(root .. "/usr/bin"))
assert(posix.symlink("usr/bin", root .. "/bin"))
local f = assert(io.open(root .. "/etc-release", "w"))
f:write("release ", arg[2], "\n")
f:close()
assert(posix.chmod(root .. "/etc-release", "0600"))
local ok, msg, e = posix.mkdir(root .. "/usr")
assert(ok == nil and e == 17 and msg:find("File exists"), msg)
"#
    );
    run(&scriptlet(&body, &["1"]), std_macros()).unwrap();
    let p = dir.path();
    assert!(p.join("usr/bin").is_dir());
    assert_eq!(std::fs::read_link(p.join("bin")).unwrap().to_str(), Some("usr/bin"));
    assert_eq!(std::fs::read_to_string(p.join("etc-release")).unwrap(), "release 1\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(p.join("etc-release")).unwrap().permissions().mode() & 0o7777, 0o600);
}

#[test]
fn rpm_api_answers_as_rpm_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let body = format!(
        r#"
local t = {{}}
t[#t+1] = tostring(#arg) .. " " .. arg[1] .. " " .. math.type(arg[2]) .. " " .. arg[2] .. " " .. arg[3]
t[#t+1] = rpm.expand("%{{_bindir}} %{{_sysconfdir}} %{{?nothing:x}}%{{!?nothing:y}}")
rpm.define("mine %{{_datadir}}/mine")
t[#t+1] = rpm.expand("%mine") .. " " .. tostring(rpm.isdefined("mine")) .. " " .. macros.mine
t[#t+1] = rpm.vercmp("1.0", "1.1") .. rpm.vercmp("2:1", "3") .. rpm.vercmp("1.0-1", "1.0-1")
local v = rpm.ver("1:2.3-4")
t[#t+1] = v.e .. "|" .. v.v .. "|" .. v.r .. "|" .. tostring(v) .. "|" .. tostring(v < rpm.ver("1:2.4"))
t[#t+1] = posix.stat("{out_dir}", "type") .. " " .. posix.stat("{out_dir}").mode
t[#t+1] = tostring(rpm.execute("/bin/true")) .. " " .. select(2, rpm.execute("/bin/false"))
t[#t+1] = tostring(select(2, pcall(os.exit, 0)))
t[#t+1] = tostring(select(2, pcall(posix.exec, "/bin/true")))
local f = rpm.open("{out}", "w")
f:write(table.concat(t, "\n") .. "\n")
f:close()
"#,
        out_dir = dir.path().display(),
        out = out.display()
    );
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    if let Err(e) = run(&scriptlet(&body, &["2", "0"]), std_macros()) {
        panic!("{e:?}");
    }
    let text = std::fs::read_to_string(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "3 <lua> integer 2 0");
    assert_eq!(lines[1], "/usr/bin /etc y");
    assert_eq!(lines[2], "/usr/share/mine true /usr/share/mine");
    assert_eq!(lines[3], "-110");
    assert_eq!(lines[4], "1|2.3|4|1:2.3-4|true");
    assert_eq!(lines[5], "directory rwxr-xr-x");
    assert_eq!(lines[6], "0.0 exit code");
    assert!(lines[7].contains("exit not permitted in this context"), "{}", lines[7]);
    assert!(lines[8].contains("exec not permitted in this context"), "{}", lines[8]);
}

#[test]
fn a_lua_error_fails_with_rpms_message() {
    let e = run(&scriptlet("local x = 1\nerror('boom')\n", &["1"]), std_macros()).unwrap_err();
    assert_eq!(e, r#"[string "%post(t-1-1.noarch)"]:2: boom"#);
    let e = run(&scriptlet("this is not lua", &["1"]), std_macros()).unwrap_err();
    assert!(e.contains("syntax error") || e.contains("near"), "{e}");
    let e = run(&scriptlet("rpm.expand('%(id)')", &["1"]), std_macros()).unwrap_err();
    assert!(e.contains("error expanding macro: shell expansion"), "{e}");
}

#[test]
fn file_triggers_read_their_files_with_next_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("files");
    let body = format!(
        r#"
local f = io.open("{}", "w")
local n = rpm.next_file()
while n do f:write(n, ";") n = rpm.next_file() end
f:close()
"#,
        out.display()
    );
    let mut s = scriptlet(&body, &["1", "0"]);
    s.files = Some(vec!["/usr/lib/a".into(), "/usr/lib/b".into()]);
    run(&s, std_macros()).unwrap();
    assert_eq!(std::fs::read_to_string(out).unwrap(), "/usr/lib/a;/usr/lib/b;");
}
