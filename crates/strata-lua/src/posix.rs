//! The `posix` table rpm 4.18 gives Lua scriptlets (its `lposix.c`): the same function
//! names, arguments, selectors and results — numbers pushed as Lua floats where rpm pushes
//! `lua_Number`s, `nil, "path: message", errno` on failure — over the C library, because
//! the scriptlet's process is already confined (chrooted into the image), exactly as rpm's
//! own process is under `--root`.

use mlua::{Lua, LuaString, MultiValue, Result as LuaResult, Table, Value};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set in a child made by `posix.fork`: only there may `posix.exec`, `os.exit` and
/// `posix.redirect2null` run (rpm's `_rpmlua_have_forked`).
pub(crate) static HAVE_FORKED: AtomicBool = AtomicBool::new(false);

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub(crate) fn strerror(e: i32) -> String {
    // SAFETY: strerror returns a valid C string; the process has one thread.
    unsafe { CStr::from_ptr(libc::strerror(e)) }.to_string_lossy().into_owned()
}

pub(crate) fn cstring(s: &LuaString) -> LuaResult<CString> {
    CString::new(s.as_bytes().to_vec()).map_err(|_| mlua::Error::runtime("string contains a NUL byte"))
}

/// `nil, [info: ]strerror(errno), errno`.
pub(crate) fn push_error(lua: &Lua, info: Option<&[u8]>, e: i32) -> LuaResult<MultiValue> {
    let msg = match info {
        Some(i) => format!("{}: {}", String::from_utf8_lossy(i), strerror(e)),
        None => strerror(e),
    };
    Ok(MultiValue::from_vec(vec![Value::Nil, Value::String(lua.create_string(msg)?), Value::Number(f64::from(e))]))
}

/// The number, or [`push_error`] when the call returned -1.
fn push_result(lua: &Lua, rc: i64, info: Option<&[u8]>) -> LuaResult<MultiValue> {
    if rc == -1 {
        return push_error(lua, info, errno());
    }
    Ok(MultiValue::from_vec(vec![Value::Number(rc as f64)]))
}

fn num(v: impl Into<f64>) -> Value {
    Value::Number(v.into())
}

/// rpm's `doselection`: no selector gives a table of every field; a selector one field.
fn select(lua: &Lua, selector: Option<LuaString>, names: &[&str], field: impl Fn(usize) -> LuaResult<Value>) -> LuaResult<Value> {
    match selector {
        None => {
            let t = lua.create_table()?;
            for (i, n) in names.iter().enumerate() {
                t.set(*n, field(i)?)?;
            }
            Ok(Value::Table(t))
        }
        Some(s) => {
            let s = s.to_string_lossy();
            let i = names.iter().position(|n| *n == s).ok_or_else(|| mlua::Error::runtime(format!("bad argument #2 (invalid option '{s}')")))?;
            field(i)
        }
    }
}

fn text(lua: &Lua, s: &[u8]) -> LuaResult<Value> {
    Ok(Value::String(lua.create_string(s)?))
}

/// An owner or group by number or name (looked up through the C library, which in the
/// confined process reads the image's passwd and group, as rpm's chroot does); `-1`
/// (leave unchanged) for nil or an unknown name.
fn id_of(v: &Value, by_name: impl Fn(&CStr) -> Option<u32>) -> LuaResult<u32> {
    match v {
        Value::Nil => Ok(u32::MAX),
        Value::Integer(i) => Ok(*i as u32),
        Value::Number(n) => Ok(*n as u32),
        Value::String(s) => Ok(by_name(&cstring(s)?).unwrap_or(u32::MAX)),
        other => Err(mlua::Error::runtime(format!("string or number expected, got {}", other.type_name()))),
    }
}

fn uid_of(v: &Value) -> LuaResult<libc::uid_t> {
    // SAFETY: one thread; the entry is read at once.
    id_of(v, |name| unsafe { libc::getpwnam(name.as_ptr()).as_ref().map(|p| p.pw_uid) })
}

fn gid_of(v: &Value) -> LuaResult<libc::gid_t> {
    // SAFETY: as in uid_of.
    id_of(v, |name| unsafe { libc::getgrnam(name.as_ptr()).as_ref().map(|g| g.gr_gid) })
}

/// `rwxr-xr-x` with `s`/`S` for setuid and setgid (rpm's `modechopper`).
pub(crate) fn mode_string(mode: u32) -> String {
    let bits = [(0o400, 'r'), (0o200, 'w'), (0o100, 'x'), (0o040, 'r'), (0o020, 'w'), (0o010, 'x'), (0o004, 'r'), (0o002, 'w'), (0o001, 'x')];
    let mut s: Vec<char> = bits.iter().map(|(b, c)| if mode & b != 0 { *c } else { '-' }).collect();
    if mode & 0o4000 != 0 {
        s[2] = if mode & 0o100 != 0 { 's' } else { 'S' };
    }
    if mode & 0o2000 != 0 {
        s[5] = if mode & 0o010 != 0 { 's' } else { 'S' };
    }
    s.into_iter().collect()
}

/// rpm's `mode_munch`, quirks included: `0644`, `rwxr-xr-x` (other letters leave their
/// bit alone) or `u+x,go-w`, where `=` sets the whole mode to the clause's bits and a
/// clause without bits (`o=`) changes nothing; `None` for what rpm calls a bad mode.
pub(crate) fn mode_munch(mode: u32, spec: &str) -> Option<u32> {
    let p = spec.as_bytes();
    let mut m = mode;
    let mut i = 0;
    loop {
        match p.get(i) {
            Some(b'r' | b'-') => return Some(rwxrwxrwx(m, &p[i..])),
            Some(b'0'..=b'7') => return u32::from_str_radix(std::str::from_utf8(&p[i..]).ok()?, 8).ok(),
            _ => {}
        }
        let mut who = 0u32;
        while let Some(c) = p.get(i) {
            who |= match c {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o1007,
                b'a' => 0o7777,
                b' ' => 0,
                _ => break,
            };
            i += 1;
        }
        if who == 0 {
            who = 0o7777;
        }
        let op = match p.get(i) {
            Some(c @ (b'+' | b'-' | b'=')) => *c,
            Some(b' ') => 0,
            _ => return None,
        };
        i += 1;
        let mut bits = 0u32;
        while let Some(c) = p.get(i) {
            bits |= match c {
                b'r' => 0o444,
                b'w' => 0o222,
                b'x' => 0o111,
                b's' => 0o6000,
                b' ' => 0,
                _ => break,
            };
            i += 1;
        }
        let end = p.get(i).copied().unwrap_or(0);
        if !matches!(end, 0 | b' ' | b',') {
            return None;
        }
        i += 1;
        if bits != 0 {
            m = match op {
                b'+' => m | (bits & who),
                b'-' => m & !(bits & who),
                b'=' => bits & who,
                _ => return None,
            };
        }
        if end != b',' {
            return Some(m);
        }
    }
}

/// The `rwxrwxrwx` form: setuid/setgid cleared, then each of the nine letters sets its
/// bit, `-` clears it, `s` in an execute place sets setuid or setgid.
fn rwxrwxrwx(mode: u32, p: &[u8]) -> u32 {
    let bits = [0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001];
    let letters = b"rwxrwxrwx";
    let mut m = mode & !0o6000;
    for (i, bit) in bits.iter().enumerate() {
        match p.get(i) {
            Some(c) if *c == letters[i] => m |= bit,
            Some(b'-') => m &= !bit,
            Some(b's') if i == 2 => m |= 0o4000 | 0o100,
            Some(b's') if i == 5 => m |= 0o2000 | 0o010,
            _ => {}
        }
    }
    m
}

fn file_type(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "regular",
        libc::S_IFLNK => "link",
        libc::S_IFDIR => "directory",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        _ => "?",
    }
}

/// Flushes C stdio (print and io.write use it) so a fork or exec does not duplicate or
/// lose buffered output.
pub(crate) fn flush_stdio() {
    // SAFETY: fflush(NULL) flushes every stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// A NULL-terminated argv of `program` and the string arguments after it.
pub(crate) fn argv(first: &CString, rest: &[LuaString]) -> LuaResult<Vec<CString>> {
    let mut v = vec![first.clone()];
    for a in rest {
        v.push(cstring(a)?);
    }
    Ok(v)
}

pub(crate) fn register(lua: &Lua) -> LuaResult<Table> {
    let t = lua.create_table()?;
    macro_rules! path_call {
        ($name:literal, $call:expr) => {
            t.set(
                $name,
                lua.create_function(|lua, path: LuaString| {
                    let c = cstring(&path)?;
                    // SAFETY: a valid C string; one thread.
                    let rc = unsafe { $call(c.as_ptr()) };
                    push_result(lua, rc as i64, Some(&path.as_bytes()))
                })?,
            )?;
        };
    }
    path_call!("mkdir", |p| libc::mkdir(p, 0o777));
    path_call!("chdir", |p| libc::chdir(p));
    path_call!("rmdir", |p| libc::rmdir(p));
    path_call!("unlink", |p| libc::unlink(p));
    path_call!("mkfifo", |p| libc::mkfifo(p, 0o777));
    t.set(
        "link",
        lua.create_function(|lua, (old, new): (LuaString, LuaString)| {
            let (o, n) = (cstring(&old)?, cstring(&new)?);
            push_result(lua, unsafe { libc::link(o.as_ptr(), n.as_ptr()) } as i64, None)
        })?,
    )?;
    t.set(
        "symlink",
        lua.create_function(|lua, (old, new): (LuaString, LuaString)| {
            let (o, n) = (cstring(&old)?, cstring(&new)?);
            push_result(lua, unsafe { libc::symlink(o.as_ptr(), n.as_ptr()) } as i64, None)
        })?,
    )?;
    t.set(
        "readlink",
        lua.create_function(|lua, path: LuaString| {
            let c = cstring(&path)?;
            let mut buf = [0u8; 512];
            let n = unsafe { libc::readlink(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return push_error(lua, Some(&path.as_bytes()), errno());
            }
            Ok(MultiValue::from_vec(vec![text(lua, &buf[..n as usize])?]))
        })?,
    )?;
    t.set(
        "access",
        lua.create_function(|lua, (path, mode): (LuaString, Option<String>)| {
            let mut m = libc::F_OK;
            for ch in mode.as_deref().unwrap_or("f").chars() {
                m |= match ch {
                    ' ' | 'f' => libc::F_OK,
                    'r' => libc::R_OK,
                    'w' => libc::W_OK,
                    'x' => libc::X_OK,
                    other => return Err(mlua::Error::runtime(format!("bad argument #2 to 'access' (unknown mode option `{other}')"))),
                };
            }
            let c = cstring(&path)?;
            push_result(lua, unsafe { libc::access(c.as_ptr(), m) } as i64, Some(&path.as_bytes()))
        })?,
    )?;
    t.set(
        "chmod",
        lua.create_function(|lua, (path, mode): (LuaString, String)| {
            let c = cstring(&path)?;
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
                return push_error(lua, Some(&path.as_bytes()), errno());
            }
            let m = mode_munch(st.st_mode, &mode).ok_or_else(|| mlua::Error::runtime("bad argument #2 to 'chmod' (bad mode)"))?;
            push_result(lua, unsafe { libc::chmod(c.as_ptr(), m) } as i64, Some(&path.as_bytes()))
        })?,
    )?;
    t.set(
        "chown",
        lua.create_function(|lua, (path, uid, gid): (LuaString, Value, Value)| {
            let c = cstring(&path)?;
            let (u, g) = (uid_of(&uid)?, gid_of(&gid)?);
            push_result(lua, unsafe { libc::chown(c.as_ptr(), u, g) } as i64, Some(&path.as_bytes()))
        })?,
    )?;
    t.set(
        "utime",
        lua.create_function(|lua, (path, mtime, atime): (LuaString, Option<f64>, Option<f64>)| {
            let now = unsafe { libc::time(std::ptr::null_mut()) } as f64;
            let times = libc::utimbuf { actime: atime.unwrap_or(now) as libc::time_t, modtime: mtime.unwrap_or(now) as libc::time_t };
            let c = cstring(&path)?;
            push_result(lua, unsafe { libc::utime(c.as_ptr(), &times) } as i64, Some(&path.as_bytes()))
        })?,
    )?;
    t.set(
        "stat",
        lua.create_function(|lua, (path, selector): (LuaString, Option<LuaString>)| {
            let c = cstring(&path)?;
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::lstat(c.as_ptr(), &mut st) } == -1 {
                return push_error(lua, Some(&path.as_bytes()), errno());
            }
            let names = ["mode", "ino", "dev", "nlink", "uid", "gid", "size", "atime", "mtime", "ctime", "type", "_mode"];
            let v = select(lua, selector, &names, |i| {
                Ok(match i {
                    0 => text(lua, mode_string(st.st_mode).as_bytes())?,
                    1 => num(st.st_ino as f64),
                    2 => num(st.st_dev as f64),
                    3 => num(st.st_nlink as f64),
                    4 => num(st.st_uid),
                    5 => num(st.st_gid),
                    6 => num(st.st_size as f64),
                    7 => num(st.st_atime as f64),
                    8 => num(st.st_mtime as f64),
                    9 => num(st.st_ctime as f64),
                    10 => text(lua, file_type(st.st_mode).as_bytes())?,
                    _ => num(st.st_mode),
                })
            })?;
            Ok(MultiValue::from_vec(vec![v]))
        })?,
    )?;
    t.set(
        "dir",
        lua.create_function(|lua, path: Option<LuaString>| {
            let path = path.map(|p| p.as_bytes().to_vec()).unwrap_or_else(|| b".".to_vec());
            match std::fs::read_dir(std::ffi::OsStr::new(&String::from_utf8_lossy(&path).into_owned())) {
                Err(e) => push_error(lua, Some(&path), e.raw_os_error().unwrap_or(0)),
                Ok(rd) => {
                    // readdir order, with . and .. as the C library lists them.
                    let t = lua.create_table()?;
                    t.push(".")?;
                    t.push("..")?;
                    for e in rd.flatten() {
                        t.push(lua.create_string(std::os::unix::ffi::OsStrExt::as_bytes(e.file_name().as_os_str()))?)?;
                    }
                    Ok(MultiValue::from_vec(vec![Value::Table(t)]))
                }
            }
        })?,
    )?;
    t.set(
        "files",
        lua.create_function(|lua, path: Option<LuaString>| {
            let path = path.map(|p| p.as_bytes().to_vec()).unwrap_or_else(|| b".".to_vec());
            match std::fs::read_dir(String::from_utf8_lossy(&path).into_owned()) {
                Err(e) => push_error(lua, Some(&path), e.raw_os_error().unwrap_or(0)),
                Ok(rd) => {
                    let mut names: Vec<Vec<u8>> = vec![b".".to_vec(), b"..".to_vec()];
                    names.extend(rd.flatten().map(|e| std::os::unix::ffi::OsStrExt::as_bytes(e.file_name().as_os_str()).to_vec()));
                    let mut it = names.into_iter();
                    let f = lua.create_function_mut(move |lua, ()| match it.next() {
                        Some(n) => text(lua, &n),
                        None => Ok(Value::Nil),
                    })?;
                    Ok(MultiValue::from_vec(vec![Value::Function(f)]))
                }
            }
        })?,
    )?;
    t.set(
        "getcwd",
        lua.create_function(|lua, ()| match std::env::current_dir() {
            Ok(d) => Ok(MultiValue::from_vec(vec![text(lua, std::os::unix::ffi::OsStrExt::as_bytes(d.as_os_str()))?])),
            Err(e) => push_error(lua, Some(b"."), e.raw_os_error().unwrap_or(0)),
        })?,
    )?;
    t.set(
        "errno",
        lua.create_function(|lua, ()| {
            let e = errno();
            Ok((lua.create_string(strerror(e))?, f64::from(e)))
        })?,
    )?;
    t.set(
        "fork",
        lua.create_function(|lua, ()| {
            flush_stdio();
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                HAVE_FORKED.store(true, Ordering::Relaxed);
            }
            push_result(lua, i64::from(pid), None)
        })?,
    )?;
    t.set(
        "exec",
        lua.create_function(|lua, (path, rest): (LuaString, mlua::Variadic<LuaString>)| {
            if !HAVE_FORKED.load(Ordering::Relaxed) {
                return Err(mlua::Error::runtime("exec not permitted in this context"));
            }
            let p = cstring(&path)?;
            let args = argv(&p, &rest)?;
            let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            flush_stdio();
            unsafe { libc::execvp(p.as_ptr(), ptrs.as_ptr()) };
            push_error(lua, Some(&path.as_bytes()), errno())
        })?,
    )?;
    t.set(
        "wait",
        lua.create_function(|lua, pid: Option<i64>| {
            let rc = unsafe { libc::waitpid(pid.unwrap_or(-1) as libc::pid_t, std::ptr::null_mut(), 0) };
            push_result(lua, i64::from(rc), None)
        })?,
    )?;
    t.set(
        "kill",
        lua.create_function(|lua, (pid, sig): (i64, Option<i64>)| {
            let rc = unsafe { libc::kill(pid as libc::pid_t, sig.unwrap_or(i64::from(libc::SIGTERM)) as libc::c_int) };
            push_result(lua, i64::from(rc), None)
        })?,
    )?;
    t.set("sleep", lua.create_function(|_, secs: i64| Ok(f64::from(unsafe { libc::sleep(secs.max(0) as u32) })))?)?;
    t.set(
        "getenv",
        lua.create_function(|lua, name: Option<LuaString>| match name {
            Some(n) => match std::env::var_os(String::from_utf8_lossy(&n.as_bytes()).as_ref() as &str) {
                Some(v) => text(lua, std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str())),
                None => Ok(Value::Nil),
            },
            None => {
                let t = lua.create_table()?;
                for (k, v) in std::env::vars_os() {
                    use std::os::unix::ffi::OsStrExt;
                    t.set(lua.create_string(k.as_bytes())?, lua.create_string(v.as_bytes())?)?;
                }
                Ok(Value::Table(t))
            }
        })?,
    )?;
    t.set(
        "setenv",
        lua.create_function(|lua, (name, value, over): (LuaString, LuaString, Value)| {
            let overwrite = matches!(over, Value::Nil) || !matches!(over, Value::Boolean(false));
            let (n, v) = (cstring(&name)?, cstring(&value)?);
            push_result(lua, i64::from(unsafe { libc::setenv(n.as_ptr(), v.as_ptr(), i32::from(overwrite)) }), Some(&name.as_bytes()))
        })?,
    )?;
    t.set(
        "unsetenv",
        lua.create_function(|_, name: LuaString| {
            let n = cstring(&name)?;
            unsafe { libc::unsetenv(n.as_ptr()) };
            Ok(())
        })?,
    )?;
    t.set(
        "putenv",
        lua.create_function(|lua, s: LuaString| {
            // putenv keeps the pointer: the string lives as long as the process.
            let c = cstring(&s)?.into_raw();
            push_result(lua, i64::from(unsafe { libc::putenv(c) }), Some(&s.as_bytes()))
        })?,
    )?;
    t.set(
        "umask",
        lua.create_function(|lua, spec: Option<String>| {
            let old = unsafe { libc::umask(0) };
            unsafe { libc::umask(old) };
            let mut mode = !old & 0o777;
            if let Some(spec) = spec {
                match mode_munch(mode, &spec) {
                    None => return Ok(Value::Nil),
                    Some(m) => {
                        mode = m & 0o777;
                        unsafe { libc::umask(!mode & 0o777) };
                    }
                }
            }
            text(lua, mode_string(mode).as_bytes())
        })?,
    )?;
    t.set(
        "uname",
        lua.create_function(|lua, format: Option<String>| {
            let mut u: libc::utsname = unsafe { std::mem::zeroed() };
            if unsafe { libc::uname(&mut u) } == -1 {
                return push_error(lua, None, errno());
            }
            let field = |f: &[libc::c_char]| unsafe { CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned();
            let mut out = String::new();
            let fmt = format.unwrap_or_else(|| "%s %n %r %v %m".into());
            let mut chars = fmt.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('m') => out.push_str(&field(&u.machine)),
                    Some('n') => out.push_str(&field(&u.nodename)),
                    Some('r') => out.push_str(&field(&u.release)),
                    Some('s') => out.push_str(&field(&u.sysname)),
                    Some('v') => out.push_str(&field(&u.version)),
                    other => return Err(mlua::Error::runtime(format!("bad argument #2 to 'uname' (unknown format option `{}')", other.unwrap_or(' ')))),
                }
            }
            Ok(MultiValue::from_vec(vec![text(lua, out.as_bytes())?]))
        })?,
    )?;
    t.set(
        "getprocessid",
        lua.create_function(|lua, selector: Option<LuaString>| {
            let names = ["egid", "euid", "gid", "uid", "pgrp", "pid", "ppid"];
            select(lua, selector, &names, |i| {
                Ok(num(unsafe {
                    match i {
                        0 => libc::getegid() as f64,
                        1 => libc::geteuid() as f64,
                        2 => libc::getgid() as f64,
                        3 => libc::getuid() as f64,
                        4 => libc::getpgrp() as f64,
                        5 => libc::getpid() as f64,
                        _ => libc::getppid() as f64,
                    }
                }))
            })
        })?,
    )?;
    t.set("ttyname", lua.create_function(|lua, fd: Option<i32>| cstr_value(lua, unsafe { libc::ttyname(fd.unwrap_or(0)) }))?)?;
    t.set("ctermid", lua.create_function(|lua, ()| text(lua, b"/dev/tty"))?)?;
    t.set("getlogin", lua.create_function(|lua, ()| cstr_value(lua, unsafe { libc::getlogin() }))?)?;
    t.set(
        "getpasswd",
        lua.create_function(|lua, (who, selector): (Value, Option<LuaString>)| {
            let p = unsafe {
                match &who {
                    Value::Nil => libc::getpwuid(libc::geteuid()),
                    Value::Integer(i) => libc::getpwuid(*i as libc::uid_t),
                    Value::Number(n) => libc::getpwuid(*n as libc::uid_t),
                    Value::String(s) => libc::getpwnam(cstring(s)?.as_ptr()),
                    other => return Err(mlua::Error::runtime(format!("bad argument #1 to 'getpasswd' (string or number expected, got {})", other.type_name()))),
                }
            };
            if p.is_null() {
                return Ok(Value::Nil);
            }
            let p = unsafe { &*p };
            let names = ["name", "uid", "gid", "dir", "shell", "gecos", "passwd"];
            select(lua, selector, &names, |i| match i {
                0 => cstr_value(lua, p.pw_name),
                1 => Ok(num(p.pw_uid)),
                2 => Ok(num(p.pw_gid)),
                3 => cstr_value(lua, p.pw_dir),
                4 => cstr_value(lua, p.pw_shell),
                5 => cstr_value(lua, p.pw_gecos),
                _ => cstr_value(lua, p.pw_passwd),
            })
        })?,
    )?;
    t.set(
        "getgroup",
        lua.create_function(|lua, who: Value| {
            let g = unsafe {
                match &who {
                    Value::Integer(i) => libc::getgrgid(*i as libc::gid_t),
                    Value::Number(n) => libc::getgrgid(*n as libc::gid_t),
                    Value::String(s) => libc::getgrnam(cstring(s)?.as_ptr()),
                    other => return Err(mlua::Error::runtime(format!("bad argument #1 to 'getgroup' (string or number expected, got {})", other.type_name()))),
                }
            };
            if g.is_null() {
                return Ok(Value::Nil);
            }
            let g = unsafe { &*g };
            let t = lua.create_table()?;
            t.set("name", cstr_value(lua, g.gr_name)?)?;
            t.set("gid", num(g.gr_gid))?;
            let mut i = 0;
            loop {
                let m = unsafe { *g.gr_mem.add(i) };
                if m.is_null() {
                    break;
                }
                t.set(i + 1, cstr_value(lua, m)?)?;
                i += 1;
            }
            Ok(Value::Table(t))
        })?,
    )?;
    t.set("setuid", lua.create_function(|lua, who: Value| push_result(lua, i64::from(unsafe { libc::setuid(uid_of(&who)?) }), None))?)?;
    t.set("setgid", lua.create_function(|lua, who: Value| push_result(lua, i64::from(unsafe { libc::setgid(gid_of(&who)?) }), None))?)?;
    t.set(
        "times",
        lua.create_function(|lua, selector: Option<LuaString>| {
            let mut tms: libc::tms = unsafe { std::mem::zeroed() };
            let elapsed = unsafe { libc::times(&mut tms) };
            // rpm divides clock ticks by CLOCKS_PER_SEC, as lposix always has.
            let per = 1_000_000f64;
            let names = ["utime", "stime", "cutime", "cstime", "elapsed"];
            select(lua, selector, &names, |i| {
                Ok(num(match i {
                    0 => tms.tms_utime as f64,
                    1 => tms.tms_stime as f64,
                    2 => tms.tms_cutime as f64,
                    3 => tms.tms_cstime as f64,
                    _ => elapsed as f64,
                } / per))
            })
        })?,
    )?;
    t.set(
        "pathconf",
        lua.create_function(|lua, (path, selector): (LuaString, Option<LuaString>)| {
            let c = cstring(&path)?;
            let keys = [libc::_PC_LINK_MAX, libc::_PC_MAX_CANON, libc::_PC_MAX_INPUT, libc::_PC_NAME_MAX, libc::_PC_PATH_MAX, libc::_PC_PIPE_BUF, libc::_PC_CHOWN_RESTRICTED, libc::_PC_NO_TRUNC, libc::_PC_VDISABLE];
            let names = ["link_max", "max_canon", "max_input", "name_max", "path_max", "pipe_buf", "chown_restricted", "no_trunc", "vdisable"];
            select(lua, selector, &names, |i| Ok(num(unsafe { libc::pathconf(c.as_ptr(), keys[i]) } as f64)))
        })?,
    )?;
    t.set(
        "sysconf",
        lua.create_function(|lua, selector: Option<LuaString>| {
            let keys = [libc::_SC_ARG_MAX, libc::_SC_CHILD_MAX, libc::_SC_CLK_TCK, libc::_SC_NGROUPS_MAX, libc::_SC_STREAM_MAX, libc::_SC_TZNAME_MAX, libc::_SC_OPEN_MAX, libc::_SC_JOB_CONTROL, libc::_SC_SAVED_IDS, libc::_SC_VERSION];
            let names = ["arg_max", "child_max", "clk_tck", "ngroups_max", "stream_max", "tzname_max", "open_max", "job_control", "saved_ids", "version"];
            select(lua, selector, &names, |i| Ok(num(unsafe { libc::sysconf(keys[i]) } as f64)))
        })?,
    )?;
    t.set(
        "mkstemp",
        lua.create_function(|lua, template: LuaString| {
            let c = cstring(&template)?.into_bytes_with_nul();
            let mut buf = c;
            let fd = unsafe { libc::mkstemp(buf.as_mut_ptr().cast()) };
            if fd < 0 {
                return push_error(lua, Some(&template.as_bytes()), errno());
            }
            unsafe { libc::close(fd) };
            buf.pop();
            // A file object of Lua's own io library, as rpm hands back a FILE*.
            let open: mlua::Function = lua.globals().get::<Table>("io")?.get("open")?;
            let file: Value = open.call((lua.create_string(&buf)?, "a+"))?;
            Ok(MultiValue::from_vec(vec![file, text(lua, &buf)?]))
        })?,
    )?;
    t.set(
        "redirect2null",
        lua.create_function(|lua, target: i32| {
            if !HAVE_FORKED.load(Ordering::Relaxed) {
                return Err(mlua::Error::runtime("redirect2null not permitted in this context"));
            }
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) };
            let mut r = fd;
            if fd >= 0 && fd != target {
                r = unsafe { libc::dup2(fd, target) };
                let e = errno();
                unsafe { libc::close(fd) };
                if r < 0 {
                    return push_error(lua, None, e);
                }
            }
            push_result(lua, i64::from(r), None)
        })?,
    )?;
    t.set("version", "posix library for Lua 5.4 / Nov 2003")?;
    Ok(t)
}

fn cstr_value(lua: &Lua, p: *const libc::c_char) -> LuaResult<Value> {
    if p.is_null() {
        return Ok(Value::Nil);
    }
    // SAFETY: a NUL-terminated string from the C library.
    text(lua, unsafe { CStr::from_ptr(p) }.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_chopped_and_munched_as_rpm_does() {
        assert_eq!(mode_string(0o755), "rwxr-xr-x");
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(mode_string(0o2644), "rw-r-Sr--");
        assert_eq!(mode_munch(0o644, "0755"), Some(0o755));
        assert_eq!(mode_munch(0o4644, "rwxr-x---"), Some(0o750));
        assert_eq!(mode_munch(0o644, "u+x,go-r"), Some(0o700));
        assert_eq!(mode_munch(0o644, "a=r"), Some(0o444));
        assert_eq!(mode_munch(0o644, "+x"), Some(0o755));
        assert_eq!(mode_munch(0o644, "u*x"), None);
        assert_eq!(mode_munch(0o644, "rwq------"), Some(0o600));
        // rpm's `=` replaces the whole mode; an empty clause changes nothing.
        assert_eq!(mode_munch(0o40755, "u=rwx,g=rx,o="), Some(0o050));
        assert_eq!(mode_munch(0o644, "u+t"), None);
    }
}
