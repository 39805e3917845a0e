//! The `rpm` table of rpm 4.18's `rpmlua.c`: `vercmp`, `ver`, `expand`, `define`,
//! `undefine`, `isdefined`, `load`, `execute`, `interactive`, `open` (file objects with
//! read/write/flush/seek/close/reopen), `redirect2null`, `splitargs`, `unsplitargs`,
//! `b64encode`, `b64decode`, `register`/`unregister`/`call` (hooks), and the `macros`
//! global; plus rpm's `print` (C stdio) and `os.exit` (only in a forked child).

use crate::macros::Macros;
use crate::posix::{argv, cstring, flush_stdio, push_error, HAVE_FORKED};
use mlua::{AnyUserData, Lua, LuaString, MetaMethod, MultiValue, Result as LuaResult, Table, UserData, UserDataMethods, Value, Variadic};
use std::cmp::Ordering as CmpOrdering;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::Ordering;

extern "C" {
    /// glibc's `stdout` stream, which Lua's `io.write` also writes to.
    static mut stdout: *mut libc::FILE;
}

fn err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::runtime(msg.into())
}

fn with_macros<R>(lua: &Lua, f: impl FnOnce(&mut Macros) -> R) -> LuaResult<R> {
    let mut m = lua.app_data_mut::<Macros>().ok_or_else(|| err("the macro table is missing"))?;
    Ok(f(&mut m))
}

/// An `rpm.ver` object.
#[derive(Clone, Debug)]
struct Ver {
    e: Option<String>,
    v: String,
    r: Option<String>,
}

impl Ver {
    /// rpm's `rpmverParse`: `[E:]V[-R]`; `None` for an empty string.
    fn parse(s: &str) -> Option<Ver> {
        if s.is_empty() {
            return None;
        }
        let (e, rest) = match s.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (Some(e.to_string()), rest),
            _ => (None, s),
        };
        let (v, r) = match rest.rsplit_once('-') {
            Some((v, r)) => (v.to_string(), Some(r.to_string())),
            None => (rest.to_string(), None),
        };
        Some(Ver { e, v, r })
    }

    fn cmp(&self, o: &Ver) -> CmpOrdering {
        // rpmverCmp: a missing epoch is "0"; a missing release sorts before any.
        let opt = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (None, None) => CmpOrdering::Equal,
            (Some(_), None) => CmpOrdering::Greater,
            (None, Some(_)) => CmpOrdering::Less,
            (Some(a), Some(b)) => strata_rpm::rpmvercmp(a, b),
        };
        strata_rpm::rpmvercmp(self.e.as_deref().unwrap_or("0"), o.e.as_deref().unwrap_or("0"))
            .then_with(|| strata_rpm::rpmvercmp(&self.v, &o.v))
            .then_with(|| opt(&self.r, &o.r))
    }

    fn evr(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.e {
            s.push_str(e);
            s.push(':');
        }
        s.push_str(&self.v);
        if let Some(r) = &self.r {
            s.push('-');
            s.push_str(r);
        }
        s
    }
}

impl UserData for Ver {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |_, this, key: String| match key.as_str() {
            "e" => Ok(this.e.clone()),
            "v" => Ok(Some(this.v.clone())),
            "r" => Ok(this.r.clone()),
            _ => Err(err(format!("invalid attribute: {key}"))),
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.evr()));
        m.add_meta_method(MetaMethod::Eq, |_, this, o: mlua::UserDataRef<Ver>| Ok(this.cmp(&o) == CmpOrdering::Equal));
        m.add_meta_method(MetaMethod::Lt, |_, this, o: mlua::UserDataRef<Ver>| Ok(this.cmp(&o) == CmpOrdering::Less));
        m.add_meta_method(MetaMethod::Le, |_, this, o: mlua::UserDataRef<Ver>| Ok(this.cmp(&o) != CmpOrdering::Greater));
    }
}

/// An `rpm.fd` object: a plain file (rpm's `ufdio`); compressed modes are refused.
struct Fd {
    file: Option<std::fs::File>,
    path: String,
}

fn open_options(mode: &str) -> Option<std::fs::OpenOptions> {
    let (flags, io) = mode.split_once('.').unwrap_or((mode, ""));
    if !matches!(io, "" | "ufdio" | "fdio") {
        return None;
    }
    let mut o = std::fs::OpenOptions::new();
    let plus = flags.contains('+');
    match flags.chars().next()? {
        'r' => o.read(true).write(plus),
        'w' => o.write(true).create(true).truncate(true).read(plus),
        'a' => o.append(true).create(true).read(plus),
        _ => return None,
    };
    Some(o)
}

impl Fd {
    fn file(&mut self) -> LuaResult<&mut std::fs::File> {
        let path = self.path.clone();
        self.file.as_mut().ok_or_else(|| err(format!("{path}: attempt to use a closed file")))
    }
}

impl UserData for Fd {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method_mut("read", |lua, this, left: Option<i64>| {
            let path = this.path.clone();
            let f = this.file()?;
            let mut buf = Vec::new();
            let r = match left {
                Some(n) if n >= 0 => f.take(n as u64).read_to_end(&mut buf),
                _ => f.read_to_end(&mut buf),
            };
            r.map_err(|e| err(format!("error reading {path}: {e}")))?;
            lua.create_string(&buf)
        });
        m.add_method_mut("write", |_, this, (data, size): (LuaString, Option<i64>)| {
            let path = this.path.clone();
            let bytes = data.as_bytes();
            let n = size.map_or(bytes.len(), |s| (s.max(0) as usize).min(bytes.len()));
            this.file()?.write_all(&bytes[..n]).map_err(|e| err(format!("error writing {path}: {e}")))?;
            Ok(n as i64)
        });
        m.add_method_mut("flush", |_, this, ()| Ok(if this.file()?.flush().is_ok() { 0 } else { -1 }));
        m.add_method_mut("close", |_, this, ()| Ok(if this.file.take().is_some() { 0 } else { -1 }));
        m.add_method_mut("seek", |_, this, (whence, offset): (Option<String>, Option<i64>)| {
            let path = this.path.clone();
            let off = offset.unwrap_or(0);
            let pos = match whence.as_deref().unwrap_or("cur") {
                "set" => SeekFrom::Start(off.max(0) as u64),
                "cur" => SeekFrom::Current(off),
                "end" => SeekFrom::End(off),
                other => return Err(err(format!("bad argument #1 to 'seek' (invalid option '{other}')"))),
            };
            let at = this.file()?.seek(pos).map_err(|e| err(format!("{path}: seek failed: {e}")))?;
            Ok(at as i64)
        });
        m.add_function("reopen", |_, (ud, mode): (AnyUserData, String)| {
            {
                let this = ud.borrow::<Fd>()?;
                if open_options(&mode).is_none() {
                    return Err(err(format!("{} stream reopen failed (invalid mode?)", this.path)));
                }
            }
            Ok(ud)
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.path.clone()));
    }
}

fn base64_encode(data: &[u8], linelen: i64) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let block = |chunk: &[u8], out: &mut String| {
        for c in chunk.chunks(3) {
            let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
            for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                out.push(if i <= c.len() { T[((n >> shift) & 63) as usize] as char } else { '=' });
            }
        }
    };
    let groups = if linelen < 0 { 64 / 4 } else { linelen / 4 } as usize;
    let mut out = String::new();
    let mut rest = data;
    while !rest.is_empty() {
        let take = if groups > 0 && rest.len() > groups * 3 { groups * 3 } else { rest.len() };
        block(&rest[..take], &mut out);
        rest = &rest[take..];
        if groups > 0 {
            out.push('\n');
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

/// rpm's `splitQuoted` on spaces and tabs, with ASCII 0x1f as its quote character.
fn split_quoted(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut had = false;
    for c in s.chars() {
        if c == '\u{1f}' {
            quoted = !quoted;
            had = true;
        } else if !quoted && (c == ' ' || c == '\t') {
            if !cur.is_empty() || had {
                out.push(std::mem::take(&mut cur));
            }
            had = false;
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() || had {
        out.push(cur);
    }
    out
}

fn print(lua: &Lua, args: Variadic<Value>) -> LuaResult<()> {
    let tostring: mlua::Function = lua.globals().get("tostring")?;
    let mut line = Vec::new();
    for (i, v) in args.into_iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        let s: LuaString = tostring.call(v)?;
        line.extend_from_slice(&s.as_bytes());
    }
    line.push(b'\n');
    // SAFETY: glibc's stdout stream; one thread.
    unsafe { libc::fwrite(line.as_ptr().cast(), 1, line.len(), stdout) };
    Ok(())
}

/// `rpm.execute(path, args...)`: spawns and waits; `0`, or `nil, message, code`.
fn execute(lua: &Lua, (file, rest): (LuaString, Variadic<LuaString>)) -> LuaResult<MultiValue> {
    let p = cstring(&file)?;
    let args = argv(&p, &rest)?;
    let mut ptrs: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr() as *mut libc::c_char).collect();
    ptrs.push(std::ptr::null_mut());
    flush_stdio();
    extern "C" {
        static environ: *const *mut libc::c_char;
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: valid NUL-terminated argv; the environment of this process.
    let rc = unsafe { libc::posix_spawnp(&mut pid, p.as_ptr(), std::ptr::null(), std::ptr::null(), ptrs.as_ptr(), environ) };
    if rc != 0 {
        return push_error(lua, None, rc);
    }
    let mut status = 0;
    if unsafe { libc::waitpid(pid, &mut status, 0) } == -1 {
        return push_error(lua, None, crate::posix::errno());
    }
    if status != 0 {
        return Ok(MultiValue::from_vec(vec![Value::Nil, Value::String(lua.create_string("exit code")?), Value::Number(f64::from(status))]));
    }
    Ok(MultiValue::from_vec(vec![Value::Number(0.0)]))
}

/// rpm's `Interactive` prompt, for a terminal only (never the case in a sandbox).
fn interactive(lua: &Lua, (): ()) -> LuaResult<()> {
    // SAFETY: isatty on the standard descriptors.
    if unsafe { libc::isatty(0) == 0 || libc::isatty(1) == 0 } {
        return Err(err("not a tty"));
    }
    let stdin = std::io::stdin();
    println!("\nRPM Interactive Lua 5.4 Interpreter");
    loop {
        print!("> ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if stdin.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let code = match line.strip_prefix('=') {
            Some(expr) => format!("print({expr})"),
            None => line,
        };
        if let Err(e) = lua.load(code).set_name("<lua>").exec() {
            eprintln!("{}", crate::error_text(&e));
        }
    }
    println!();
    Ok(())
}

pub(crate) fn register(lua: &Lua, files: Option<Vec<String>>) -> LuaResult<Table> {
    let t = lua.create_table()?;
    t.set(
        "vercmp",
        lua.create_function(|_, (a, b): (String, String)| {
            let va = Ver::parse(&a).ok_or_else(|| err("bad argument #1 to 'vercmp' (invalid version )"))?;
            let vb = Ver::parse(&b).ok_or_else(|| err("bad argument #2 to 'vercmp' (invalid version )"))?;
            Ok(va.cmp(&vb) as i64)
        })?,
    )?;
    t.set(
        "ver",
        lua.create_function(|lua, args: Variadic<Option<String>>| {
            let ver = match args.len() {
                1 => args[0].as_deref().and_then(Ver::parse),
                3 => Some(Ver { e: args[0].clone(), v: args[1].clone().unwrap_or_default(), r: args[2].clone() }),
                n => return Err(err(format!("invalid number of arguments: {n}"))),
            };
            ver.map(|v| lua.create_userdata(v)).transpose()
        })?,
    )?;
    t.set(
        "expand",
        lua.create_function(|lua, s: String| with_macros(lua, |m| m.expand(&s))?.map_err(|e| err(format!("error expanding macro: {e}"))))?,
    )?;
    t.set(
        "define",
        lua.create_function(|lua, s: String| with_macros(lua, |m| m.define(&s))?.map_err(|e| err(format!("error defining macro: {e}"))))?,
    )?;
    t.set("undefine", lua.create_function(|lua, s: String| with_macros(lua, |m| m.undefine(&s)))?)?;
    t.set(
        "isdefined",
        lua.create_function(|lua, s: String| {
            with_macros(lua, |m| match m.get(&s) {
                Some(d) => (true, d.parametric),
                None => (false, false),
            })
        })?,
    )?;
    t.set(
        "load",
        lua.create_function(|lua, path: String| {
            let Ok(text) = std::fs::read_to_string(&path) else { return Ok(-1.0) };
            // A macro file: `%name body` lines, `\` continuing a line.
            let joined = text.replace("\\\n", "\n");
            with_macros(lua, |m| {
                for line in joined.lines() {
                    if let Some(def) = line.strip_prefix('%') {
                        let _ = m.define(def);
                    }
                }
            })?;
            Ok(0.0)
        })?,
    )?;
    t.set("execute", lua.create_function(execute)?)?;
    t.set("interactive", lua.create_function(interactive)?)?;
    t.set(
        "open",
        lua.create_function(|lua, (path, mode): (String, Option<String>)| {
            let mode = mode.unwrap_or_else(|| "r".into());
            let opts = open_options(&mode).ok_or_else(|| err(format!("{path} open failed: unsupported mode {mode:?} (plain files only)")))?;
            let file = opts.open(&path).map_err(|e| err(format!("{path} open failed: {}", crate::posix::strerror(e.raw_os_error().unwrap_or(0)))))?;
            lua.create_userdata(Fd { file: Some(file), path })
        })?,
    )?;
    t.set("redirect2null", lua.globals().get::<Table>("posix")?.get::<mlua::Function>("redirect2null")?)?;
    t.set(
        "splitargs",
        lua.create_function(|lua, s: String| lua.create_sequence_from(split_quoted(&s)))?,
    )?;
    t.set(
        "unsplitargs",
        lua.create_function(|_, t: Table| {
            let args: Vec<String> = t.sequence_values::<String>().collect::<LuaResult<_>>()?;
            Ok(args.iter().map(|a| format!("\u{1f}{a}\u{1f}")).collect::<Vec<_>>().join(" "))
        })?,
    )?;
    t.set(
        "b64encode",
        lua.create_function(|_, (s, linelen): (LuaString, Option<i64>)| Ok(base64_encode(&s.as_bytes(), linelen.unwrap_or(-1))))?,
    )?;
    t.set(
        "b64decode",
        lua.create_function(|lua, s: String| base64_decode(&s).map(|b| lua.create_string(b)).transpose())?,
    )?;
    // Hooks: functions registered by name in the registry, called with a table of args.
    let hooks = lua.create_table()?;
    lua.set_named_registry_value("strata_rpm_hooks", hooks)?;
    t.set(
        "register",
        lua.create_function(|lua, (name, f): (String, mlua::Function)| {
            let hooks: Table = lua.named_registry_value("strata_rpm_hooks")?;
            let list: Table = match hooks.get::<Option<Table>>(name.as_str())? {
                Some(l) => l,
                None => {
                    let l = lua.create_table()?;
                    hooks.set(name.as_str(), &l)?;
                    l
                }
            };
            let handle = lua.create_table()?;
            handle.set("f", f)?;
            list.push(&handle)?;
            Ok(handle)
        })?,
    )?;
    t.set(
        "unregister",
        lua.create_function(|lua, (name, handle): (String, Table)| {
            let hooks: Table = lua.named_registry_value("strata_rpm_hooks")?;
            if let Some(list) = hooks.get::<Option<Table>>(name.as_str())? {
                let kept: Vec<Table> = list.sequence_values::<Table>().filter_map(Result::ok).filter(|h| !h.equals(&handle).unwrap_or(false)).collect();
                hooks.set(name.as_str(), lua.create_sequence_from(kept)?)?;
            }
            Ok(())
        })?,
    )?;
    t.set(
        "call",
        lua.create_function(|lua, (name, args): (String, Variadic<Value>)| {
            let hooks: Table = lua.named_registry_value("strata_rpm_hooks")?;
            if let Some(list) = hooks.get::<Option<Table>>(name.as_str())? {
                let argt = lua.create_sequence_from(args)?;
                for h in list.sequence_values::<Table>() {
                    let f: mlua::Function = h?.get("f")?;
                    // rpm logs a failing hook and goes on.
                    if let Err(e) = f.call::<Value>(&argt) {
                        eprintln!("error: lua hook failed: {}", crate::error_text(&e));
                    }
                }
            }
            Ok(())
        })?,
    )?;
    if let Some(files) = files {
        let mut it = files.into_iter();
        t.set("next_file", lua.create_function_mut(move |_, ()| Ok(it.next()))?)?;
    }
    Ok(t)
}

/// The `macros` global: `macros.name` expands, `macros.name = body` defines, `= nil`
/// undefines, as rpm's `rpm.mc` object does.
struct MacroTable;

impl UserData for MacroTable {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, _, name: String| {
            with_macros(lua, |m| match m.get(&name) {
                None => Ok(None),
                Some(d) if d.parametric => Err(err(format!("parametric macro %{name} cannot be called by strata"))),
                Some(_) => m.expand(&format!("%{{{name}}}")).map(Some).map_err(|e| err(format!("error expanding macro: {e}"))),
            })?
        });
        m.add_meta_method(MetaMethod::NewIndex, |lua, _, (name, body): (String, Option<String>)| {
            with_macros(lua, |m| match body {
                None => {
                    m.undefine(&name);
                    Ok(())
                }
                Some(b) => m.define(&format!("{name} {b}")).map_err(|e| err(format!("error defining macro {name}: {e}"))),
            })?
        });
    }
}

/// rpm's overrides of the standard library: `print` through C stdio, `os.exit` refused
/// outside a forked child, and the `macros` global.
pub(crate) fn overrides(lua: &Lua) -> LuaResult<()> {
    let g = lua.globals();
    g.set("print", lua.create_function(print)?)?;
    let os: Table = g.get("os")?;
    os.set(
        "exit",
        lua.create_function(|_, code: Option<Value>| -> LuaResult<()> {
            if !HAVE_FORKED.load(Ordering::Relaxed) {
                return Err(err("exit not permitted in this context"));
            }
            let code = match code {
                Some(Value::Integer(i)) => i as i32,
                Some(Value::Number(n)) => n as i32,
                Some(Value::Boolean(false)) => 1,
                _ => 0,
            };
            flush_stdio();
            std::process::exit(code)
        })?,
    )?;
    g.set("macros", lua.create_userdata(MacroTable)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_rpmvercmp() {
        let c = |a: &str, b: &str| Ver::parse(a).unwrap().cmp(&Ver::parse(b).unwrap()) as i64;
        assert_eq!(c("1.0", "1.0"), 0);
        assert_eq!(c("1.0", "1.1"), -1);
        assert_eq!(c("1:1.0", "2.0"), 1);
        assert_eq!(c("1.0-1", "1.0"), 1);
        assert_eq!(c("1.0~rc1", "1.0"), -1);
        assert_eq!(Ver::parse("2:1.0-3").unwrap().evr(), "2:1.0-3");
        assert!(Ver::parse("").is_none());
    }

    #[test]
    fn base64_and_quoted_args_round_trip() {
        assert_eq!(base64_encode(b"hello", 0), "aGVsbG8=");
        assert_eq!(base64_encode(b"hello", -1), "aGVsbG8=\n");
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(split_quoted("a  b\t\u{1f}c d\u{1f}"), vec!["a", "b", "c d"]);
    }
}
