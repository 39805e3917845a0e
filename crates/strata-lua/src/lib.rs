//! `strata-lua`: rpm's embedded Lua, for `-p <lua>` scriptlets (`%pretrans`, `%pre`,
//! `%post`, `%posttrans`, triggers and file triggers) — Lua 5.4 (vendored through `mlua`,
//! no system Lua) with the API rpm 4.18 gives its scriptlets:
//!
//! - `posix.*` as rpm's `lposix.c` has it ([`posix`]): `mkdir`, `symlink`, `stat`,
//!   `readlink`, `access`, `chmod`, `chown`, `unlink`, `rmdir`, `utime`, `getenv`,
//!   `setenv`, `fork`/`exec`/`wait`, `dir`, `files`, `umask`, `uname`, ...;
//! - `rpm.*` as `rpmlua.c` has it ([`rpmlib`]): `vercmp` and `ver` (strata-rpm's
//!   `rpmvercmp`), `expand`/`define`/`undefine`/`isdefined` over a [`Macros`] table
//!   (rpm's standard path macros, seeded by the caller with the image's), `execute`,
//!   `interactive`, `open`, `next_file` for file triggers, the `macros` global;
//! - the standard libraries as `luaL_openlibs` loads them, with rpm's `print` and an
//!   `os.exit` that only a `posix.fork` child may call;
//! - the chunk run as rpm runs it: named `%post(NEVRA)`, prefixed with
//!   `local opt, arg = ...;` and the `tonumber` of the instance counts, so `arg` is
//!   `{"<lua>", 1[, 0]}` with numbers, cwd `/`.
//!
//! This crate does no confining: [`run`] acts on the process it is called in. strata
//! calls it only in a process that has confined itself inside the image root
//! (`strata-pipeline`'s Lua path, through `strata_sandbox::run_in_process`), so `/`
//! here is the image's `/`, as under `rpm --root`.

mod macros;
mod posix;
mod rpmlib;

pub use macros::{Macro, Macros, STANDARD};
use mlua::{Lua, Table, Value};

/// One Lua scriptlet run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Scriptlet {
    /// rpm's description, the chunk name: `%post(foo-1.0-1.noarch)`.
    pub name: String,
    /// The Lua source.
    pub body: String,
    /// rpm's instance counts (one or two), as the installer passes them to shell scripts.
    pub args: Vec<String>,
    /// A file trigger's matching paths, for `rpm.next_file()`; `None` for other scriptlets.
    pub files: Option<Vec<String>>,
}

/// The text of a Lua error as rpm logs it: the message, not mlua's wrapping.
pub fn error_text(e: &mlua::Error) -> String {
    match e {
        // mlua appends a traceback to runtime errors; rpm prints the message alone.
        mlua::Error::RuntimeError(s) | mlua::Error::SyntaxError { message: s, .. } => s.split("\nstack traceback:").next().unwrap_or(s).to_string(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { context, cause } => format!("{context}: {}", error_text(cause)),
        other => other.to_string(),
    }
}

fn interpreter(files: Option<Vec<String>>, macros: Macros) -> mlua::Result<Lua> {
    // SAFETY: every standard library, debug included, as rpm's luaL_openlibs loads them;
    // the process is the sandbox, not strata's.
    let lua = unsafe { Lua::unsafe_new() };
    lua.set_app_data(macros);
    let posix = posix::register(&lua)?;
    lua.globals().set("posix", &posix)?;
    let rpm = rpmlib::register(&lua, files)?;
    lua.globals().set("rpm", &rpm)?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set("posix", posix)?;
    loaded.set("rpm", rpm)?;
    rpmlib::overrides(&lua)?;
    plain_errors(&lua)?;
    Ok(lua)
}

/// Errors raised by the Rust functions reach Lua as mlua's error objects, whose text has
/// mlua's wrapping and a traceback; rpm's C functions raise plain strings
/// (`exit not permitted in this context`), which scripts match with `pcall`. Every Rust
/// function of `posix`, `rpm` and `os.exit` is wrapped to raise the plain message.
fn plain_errors(lua: &Lua) -> mlua::Result<()> {
    let message = {
        let l = lua.clone();
        lua.create_function(move |_, v: Value| {
            Ok(match v {
                Value::Error(e) => Value::String(l.create_string(error_text(&e))?),
                other => other,
            })
        })?
    };
    let wrap: mlua::Function = lua
        .load(
            r#"local message = ...
return function(t, keys)
  for _, k in ipairs(keys) do
    local f = t[k]
    t[k] = function(...)
      local r = table.pack(pcall(f, ...))
      if r[1] then return table.unpack(r, 2, r.n) end
      error(message(r[2]), 0)
    end
  end
end"#,
        )
        .set_name("=strata")
        .call(message)?;
    let g = lua.globals();
    for table in ["posix", "rpm"] {
        let t: Table = g.get(table)?;
        let keys: Vec<String> = t.pairs::<String, Value>().filter_map(Result::ok).filter(|(_, v)| matches!(v, Value::Function(_))).map(|(k, _)| k).collect();
        wrap.call::<()>((t, keys))?;
    }
    wrap.call::<()>((g.get::<Table>("os")?, vec!["exit"]))?;
    Ok(())
}

/// Runs `s` in this process. `Err` is the Lua error's text (rpm prints it as
/// `lua script failed: ...` and fails the scriptlet).
pub fn run(s: &Scriptlet, macros: Macros) -> Result<(), String> {
    let lua = interpreter(s.files.clone(), macros).map_err(|e| format!("cannot set up the Lua interpreter: {}", error_text(&e)))?;
    // rpm: "local opt, arg = ...;" then the numeric conversion of the counts, all on the
    // first line, so the script's own line numbers stay as written.
    let mut chunk = String::from("local opt, arg = ...;");
    if !s.args.is_empty() {
        chunk.push_str("arg[2] = tonumber(arg[2]);");
    }
    if s.args.len() > 1 {
        chunk.push_str("arg[3] = tonumber(arg[3]);");
    }
    chunk.push_str(&s.body);
    let start = std::process::id();
    let result = (|| -> mlua::Result<()> {
        let opt = lua.create_table()?;
        let arg = lua.create_sequence_from(std::iter::once("<lua>".to_string()).chain(s.args.iter().cloned()))?;
        std::env::set_current_dir("/").map_err(mlua::Error::external)?;
        lua.load(chunk.as_str()).set_name(s.name.as_str()).call::<Value>((opt, arg))?;
        Ok(())
    })();
    posix::flush_stdio();
    if std::process::id() != start {
        // A posix.fork child that neither exec'd nor exited: rpm ends it here.
        // SAFETY: ends this forked child at once.
        unsafe { libc::_exit(1) };
    }
    // SAFETY: a non-blocking check for children left running.
    if unsafe { libc::waitpid(0, std::ptr::null_mut(), libc::WNOHANG) } == 0 {
        eprintln!("warning: runaway fork() in Lua script");
    }
    result.map_err(|e| error_text(&e))
}

#[cfg(test)]
mod tests;
