//! The macro table `rpm.expand`, `rpm.define`, `rpm.undefine`, `rpm.isdefined` and the
//! `macros` global work on: rpm's standard path macros, seeded with whatever the caller
//! knows of the image (its macro files), plus what the script defines.
//!
//! Expansion follows rpm's macro language for what scriptlets use: `%name`, `%{name}`,
//! `%{?name}`, `%{!?name}`, `%{?name:text}`, `%{!?name:text}`, `%{expand:...}`, `%%`.
//! An undefined macro is left as written, as rpm leaves it. Shell (`%(...)`) and
//! parametric expansion are refused with an error naming them, never silently dropped.

use std::collections::BTreeMap;

/// How deep macros may refer to macros before expansion stops (rpm's limit).
const MAX_DEPTH: usize = 64;

/// One defined macro.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macro {
    /// The body as defined: expanded only when used.
    pub body: String,
    /// Defined with an option list (`name(opts) body`).
    pub parametric: bool,
}

/// A stack of definitions per name, as rpm keeps them (`undefine` pops one).
#[derive(Clone, Debug, Default)]
pub struct Macros {
    table: BTreeMap<String, Vec<Macro>>,
}

/// rpm 4.18's built-in path macros on x86_64 Linux (`rpm --showrc` with a vendor-neutral
/// configuration), so that `rpm.expand("%{_sysconfdir}")` means the same in an image as
/// under `rpm --root`.
pub const STANDARD: &[(&str, &str)] = &[
    ("_usr", "/usr"),
    ("_var", "/var"),
    ("_prefix", "%{_usr}"),
    ("_exec_prefix", "%{_prefix}"),
    ("_bindir", "%{_exec_prefix}/bin"),
    ("_sbindir", "%{_exec_prefix}/sbin"),
    ("_libexecdir", "%{_exec_prefix}/libexec"),
    ("_datarootdir", "%{_prefix}/share"),
    ("_datadir", "%{_datarootdir}"),
    ("_sysconfdir", "/etc"),
    ("_sharedstatedir", "%{_var}/lib"),
    ("_localstatedir", "%{_var}"),
    ("_lib", "lib64"),
    ("_libdir", "%{_exec_prefix}/%{_lib}"),
    ("_includedir", "%{_prefix}/include"),
    ("_infodir", "%{_datarootdir}/info"),
    ("_mandir", "%{_datarootdir}/man"),
    ("_docdir", "%{_datadir}/doc"),
    ("_licensedir", "%{_datadir}/licenses"),
    ("_rundir", "/run"),
    ("_tmppath", "%{_var}/tmp"),
    ("_dbpath", "%{_var}/lib/rpm"),
    ("_initddir", "%{_sysconfdir}/rc.d/init.d"),
    ("_arch", "x86_64"),
    ("_target_cpu", "x86_64"),
    ("_target_os", "linux"),
    ("_host_cpu", "x86_64"),
    ("_host_os", "linux"),
    ("_vendor", "unknown"),
    ("_rpmconfigdir", "%{_usr}/lib/rpm"),
    ("nil", ""),
];

impl Macros {
    /// An empty table (nothing defined).
    pub fn empty() -> Macros {
        Macros::default()
    }

    /// [`STANDARD`], then `seed` (the image's own macro files) over it.
    pub fn standard<I, K, V>(seed: I) -> Macros
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut m = Macros::default();
        for (k, v) in STANDARD {
            m.push(k, v, false);
        }
        for (k, v) in seed {
            m.table.insert(k.into(), vec![Macro { body: v.into(), parametric: false }]);
        }
        m
    }

    fn push(&mut self, name: &str, body: &str, parametric: bool) {
        self.table.entry(name.to_string()).or_default().push(Macro { body: body.to_string(), parametric });
    }

    pub fn get(&self, name: &str) -> Option<&Macro> {
        self.table.get(name).and_then(|v| v.last())
    }

    /// `rpm.define("name body")` / `rpm.define("name(opts) body")`: the body is kept as
    /// written (expanded at use), as `%define` does.
    pub fn define(&mut self, text: &str) -> Result<(), String> {
        let text = text.trim_start();
        let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
        let name = &text[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("macro name {name:?} is not a valid name (letters, digits and _, not starting with a digit)"));
        }
        let mut rest = &text[end..];
        let parametric = rest.starts_with('(');
        if parametric {
            let close = rest.find(')').ok_or_else(|| format!("macro {name}: unterminated option list"))?;
            rest = &rest[close + 1..];
        }
        let body = rest.trim_start_matches([' ', '\t']).trim_end_matches(['\n', '\r']);
        self.push(name, body, parametric);
        Ok(())
    }

    /// `rpm.undefine`: removes the newest definition (an older one shows again).
    pub fn undefine(&mut self, name: &str) {
        if let Some(stack) = self.table.get_mut(name) {
            stack.pop();
            if stack.is_empty() {
                self.table.remove(name);
            }
        }
    }

    /// `rpm.expand`.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        self.expand_into(text, &mut out, 0)?;
        Ok(out)
    }

    fn expand_into(&self, text: &str, out: &mut String, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("too many levels of recursion in macro expansion (over {MAX_DEPTH})"));
        }
        let mut rest = text;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                out.push('%');
                rest = tail;
            } else if after.starts_with('{') {
                let close = matching(after, '{', '}').ok_or_else(|| format!("unterminated {{: %{after}"))?;
                self.braced(&after[1..close], out, depth)?;
                rest = &after[close + 1..];
            } else if after.starts_with('(') {
                return Err("shell expansion %(...) is not supported in an image's Lua scriptlet".into());
            } else {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                let name = &after[..end];
                match self.get(name) {
                    Some(m) if !name.is_empty() => self.use_macro(name, m, out, depth)?,
                    _ => {
                        out.push('%');
                        out.push_str(name);
                    }
                }
                rest = &after[end..];
            }
        }
        out.push_str(rest);
        Ok(())
    }

    fn use_macro(&self, name: &str, m: &Macro, out: &mut String, depth: usize) -> Result<(), String> {
        if m.parametric {
            return Err(format!("parametric macro %{name} cannot be expanded by strata (only plain macros are)"));
        }
        self.expand_into(&m.body, out, depth + 1)
    }

    /// The inside of `%{...}`.
    fn braced(&self, inner: &str, out: &mut String, depth: usize) -> Result<(), String> {
        if let Some(body) = inner.strip_prefix("expand:") {
            let once = {
                let mut s = String::new();
                self.expand_into(body, &mut s, depth + 1)?;
                s
            };
            return self.expand_into(&once, out, depth + 1);
        }
        let (mut negate, mut test) = (false, false);
        let mut name = inner;
        loop {
            if let Some(n) = name.strip_prefix('!') {
                negate = !negate;
                name = n;
            } else if let Some(n) = name.strip_prefix('?') {
                test = true;
                name = n;
            } else {
                break;
            }
        }
        let (name, alt) = match name.find(':') {
            Some(i) => (&name[..i], Some(&name[i + 1..])),
            None => (name, None),
        };
        if name.contains(char::is_whitespace) {
            return Err(format!("%{{{inner}}}: macros with arguments are not supported in an image's Lua scriptlet"));
        }
        let defined = self.get(name);
        if test {
            match (defined.is_some() != negate, alt) {
                (true, Some(alt)) => self.expand_into(alt, out, depth + 1)?,
                (true, None) => {
                    if let Some(m) = defined {
                        self.use_macro(name, m, out, depth)?;
                    }
                }
                (false, _) => {}
            }
            return Ok(());
        }
        match defined {
            Some(m) => self.use_macro(name, m, out, depth),
            None => {
                out.push_str("%{");
                out.push_str(inner);
                out.push('}');
                Ok(())
            }
        }
    }
}

/// Index of the bracket closing the one `s` starts with.
fn matching(s: &str, open: char, close: char) -> Option<usize> {
    let mut level = 0usize;
    for (i, c) in s.char_indices() {
        if c == open {
            level += 1;
        } else if c == close {
            level -= 1;
            if level == 0 {
                return Some(i);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_paths_expand_as_rpm_does() {
        let m = Macros::standard(Vec::<(String, String)>::new());
        assert_eq!(m.expand("%{_bindir}:%_sysconfdir:%{_libdir}").unwrap(), "/usr/bin:/etc:/usr/lib64");
        assert_eq!(m.expand("%{_localstatedir}/lib %{_datadir}").unwrap(), "/var/lib /usr/share");
        assert_eq!(m.expand("100%% %{undefined} %undefined").unwrap(), "100% %{undefined} %undefined");
    }

    #[test]
    fn seeded_and_defined_macros_override_in_a_stack() {
        let mut m = Macros::standard([("_prefix", "/opt")]);
        assert_eq!(m.expand("%{_bindir}").unwrap(), "/opt/bin");
        m.define("mine %{_prefix}/x").unwrap();
        assert_eq!(m.expand("%{mine}").unwrap(), "/opt/x");
        m.define("mine two").unwrap();
        assert_eq!(m.expand("%mine").unwrap(), "two");
        m.undefine("mine");
        assert_eq!(m.expand("%mine").unwrap(), "/opt/x");
        m.undefine("mine");
        assert_eq!(m.expand("%mine").unwrap(), "%mine");
    }

    #[test]
    fn conditionals_and_expand() {
        let mut m = Macros::empty();
        m.define("yes 1").unwrap();
        assert_eq!(m.expand("%{?yes:a}%{!?yes:b}%{?no:c}%{!?no:d}%{?yes}%{?no}").unwrap(), "ad1");
        m.define("indirect %%{yes}").unwrap();
        assert_eq!(m.expand("%{expand:%{indirect}}").unwrap(), "1");
    }

    #[test]
    fn loops_and_unsupported_forms_are_errors() {
        let mut m = Macros::empty();
        m.define("a %{a}").unwrap();
        assert!(m.expand("%{a}").unwrap_err().contains("recursion"));
        assert!(m.expand("%(echo hi)").unwrap_err().contains("shell"));
        assert!(m.define("1bad x").is_err());
        m.define("p(x) %{-x}").unwrap();
        assert!(m.get("p").unwrap().parametric);
        assert!(m.expand("%p").unwrap_err().contains("parametric"));
    }
}
