//! `strata __lua-scriptlet` (hidden): the helper a compose starts for each Lua scriptlet.
//! It is dispatched before argument parsing and logging set-up, so that the process is
//! still single-threaded when it confines itself (see strata-pipeline's `lua` module).

use std::process::ExitCode;

/// Whether this process was started as the Lua helper.
pub fn is_helper() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == strata_pipeline::LUA_HELPER_SUBCOMMAND)
}

pub fn main() -> ExitCode {
    strata_pipeline::lua_helper_main()
}
