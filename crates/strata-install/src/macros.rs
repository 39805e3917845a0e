//! The image's own rpm macros: the macro files the packages installed so far put in the
//! root (`/usr/lib/rpm/macros`, `/usr/lib/rpm/macros.d/macros.*`, the platform file,
//! `/etc/rpm/macros.*`, `/etc/rpm/macros`), read in rpm 4.18's order (`lib/rpmrc.c`,
//! `macrofiles`), later definitions replacing earlier ones.
//!
//! Only what installation needs is interpreted: plain `%name body` definitions (with `\`
//! continuations and bodies whose braces span lines), and expansion of `%name`, `%{name}`,
//! `%{?name}`, `%{?name:text}`, `%{!?name:text}` and `%%`. Parametric macros are kept
//! as text; built-ins (`%(shell)`, `%{lua:}`, `%{expand:}`) are never run: a macro file of
//! the image must not execute anything on the build host. Input is bounded: files over
//! [`MAX_FILE`] (or not regular files) are skipped with a warning, at most [`MAX_FILES`]
//! files and [`MAX_TOTAL`] bytes are read, expansion stops at rpm's depth of 64 and at
//! [`MAX_EXPANSION`] bytes.

use crate::rootfs::RootFs;
use std::collections::HashMap;

/// Largest macro file read (rpm's own `/usr/lib/rpm/macros` is about 45 KiB).
pub const MAX_FILE: usize = 1 << 20;
/// Most bytes of macro files read for one table, and most files: a package cannot make
/// every later package's installation read without end.
pub const MAX_TOTAL: usize = 16 << 20;
pub const MAX_FILES: usize = 4096;
/// Largest expansion kept; a longer one is cut (and rpm would have refused it).
pub const MAX_EXPANSION: usize = 64 << 10;
/// rpm's `max_macro_depth`.
const MAX_DEPTH: usize = 64;
/// Macro references expanded for one call at most: bodies that reference each other
/// twice over grow exponentially without ever nesting deeper than [`MAX_DEPTH`].
const MAX_STEPS: usize = 100_000;

/// Folders whose files are macro files; a package placing anything below them makes the
/// installer read the table again.
pub const MACRO_DIRS: [&str; 2] = ["/usr/lib/rpm/", "/etc/rpm/"];

/// A macro table: name → body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Macros {
    defs: HashMap<String, String>,
}

impl Macros {
    /// An empty table (rpm's defaults are not assumed: an image without macro files has
    /// none, and every installation setting keeps its built-in default).
    pub fn new() -> Macros {
        Macros::default()
    }

    /// The body of `name` as defined (unexpanded), if defined.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.defs.get(name).map(String::as_str)
    }

    /// Defines (or redefines) `name`.
    pub fn define(&mut self, name: &str, body: &str) {
        self.defs.insert(name.to_string(), body.to_string());
    }

    /// Every definition (name, unexpanded body), sorted by name.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self.defs.iter().map(|(k, b)| (k.clone(), b.clone())).collect();
        v.sort();
        v
    }

    /// Number of definitions.
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Reads the macro files of the root behind `fs`, in rpm's order for `arch`; returns
    /// the table and warnings about files that were not read.
    pub fn load(fs: &RootFs, arch: &str) -> (Macros, Vec<String>) {
        let mut files: Vec<String> = vec!["/usr/lib/rpm/macros".into()];
        files.extend(listed(fs, "/usr/lib/rpm/macros.d", "macros."));
        files.push(format!("/usr/lib/rpm/platform/{arch}-linux/macros"));
        files.push("/usr/lib/rpm/redhat/macros".into());
        files.extend(listed(fs, "/etc/rpm", "macros."));
        files.push("/etc/rpm/macros".into());
        files.push(format!("/etc/rpm/{arch}-linux/macros"));
        let mut m = Macros::new();
        let mut warnings = Vec::new();
        let mut total = 0;
        for (n, f) in files.iter().enumerate() {
            if n >= MAX_FILES || total >= MAX_TOTAL {
                warnings.push(format!("rpm macro files from {f} on not read: more than {MAX_FILES} files or {MAX_TOTAL} bytes"));
                break;
            }
            match fs.read_bounded(f, MAX_FILE) {
                Ok(Some(bytes)) => {
                    total += bytes.len();
                    m.parse(&String::from_utf8_lossy(&bytes));
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!("rpm macro file {f} not read: {e}")),
            }
        }
        (m, warnings)
    }

    /// Adds the definitions of one macro file's text.
    pub fn parse(&mut self, text: &str) {
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix('%') else { continue };
            let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if name_len == 0 {
                continue;
            }
            let name = &rest[..name_len];
            let mut body = rest[name_len..].to_string();
            // Continuations: a trailing backslash, or braces still open.
            while body.len() < MAX_FILE && (body.ends_with('\\') || depth(&body) > 0) {
                let Some(next) = lines.next() else { break };
                if body.ends_with('\\') {
                    body.pop();
                }
                body.push('\n');
                body.push_str(next);
            }
            let body = match body.strip_prefix('(') {
                // Parametric: `%name(opts) body` — kept with its option string.
                Some(p) => p.split_once(')').map(|(_, b)| b).unwrap_or("").trim().to_string(),
                None => body.trim().to_string(),
            };
            self.defs.insert(name.to_string(), body);
        }
    }

    /// `text` with macros expanded; undefined ones stay as written (rpm's behaviour).
    pub fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut steps = 0;
        self.expand_into(text, 0, &mut steps, &mut out);
        out
    }

    /// An expanded macro, `None` when undefined or expanding to nothing.
    pub fn expanded(&self, name: &str) -> Option<String> {
        let v = self.expand(self.get(name)?);
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    fn expand_into(&self, text: &str, level: usize, steps: &mut usize, out: &mut String) {
        let mut rest = text;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            *steps += 1;
            if out.len() > MAX_EXPANSION || *steps > MAX_STEPS {
                return;
            }
            if let Some(r) = rest.strip_prefix('%') {
                out.push('%');
                rest = r;
                continue;
            }
            let (inner, braced, after) = if let Some(r) = rest.strip_prefix('{') {
                match closing(r) {
                    Some(end) => (&r[..end], true, &r[end + 1..]),
                    None => {
                        out.push('%');
                        continue;
                    }
                }
            } else {
                let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                (&rest[..n], false, &rest[n..])
            };
            let original = &text[text.len() - rest.len() - 1..text.len() - after.len()];
            rest = after;
            let (negate, cond, name_and_alt) = match inner.strip_prefix("!?") {
                Some(r) => (true, true, r),
                None => match inner.strip_prefix('?') {
                    Some(r) => (false, true, r),
                    None => (false, false, inner),
                },
            };
            let (name, alt) = match name_and_alt.split_once(':') {
                Some((n, a)) if braced => (n, Some(a)),
                _ => (name_and_alt, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(original);
                continue;
            }
            let def = self.defs.get(name);
            if cond {
                match (def.is_some() != negate, alt) {
                    (true, Some(a)) => self.recurse(a, level, steps, out),
                    (true, None) if !negate => self.recurse(def.expect("defined"), level, steps, out),
                    _ => {}
                }
                continue;
            }
            match def {
                Some(body) => self.recurse(body, level, steps, out),
                None => out.push_str(original),
            }
        }
        out.push_str(rest);
    }

    fn recurse(&self, body: &str, level: usize, steps: &mut usize, out: &mut String) {
        if level < MAX_DEPTH {
            self.expand_into(body, level + 1, steps, out);
        }
    }

    /// `%_install_langs`: the languages to install, `None` for all (unset, or `all` listed).
    pub fn install_langs(&self) -> Option<Vec<String>> {
        let v = self.expanded("_install_langs")?;
        let langs: Vec<String> = v.split(':').map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
        (!langs.iter().any(|l| l == "all") && !langs.is_empty()).then_some(langs)
    }

    /// `%_netsharedpath`: path prefixes whose files are not installed.
    pub fn netshared_paths(&self) -> Vec<String> {
        match self.expanded("_netsharedpath") {
            Some(v) if !v.starts_with('%') => v.split(':').map(|p| p.trim().trim_end_matches('/').to_string()).filter(|p| !p.is_empty()).collect(),
            _ => Vec::new(),
        }
    }

    /// `%_excludedocs` as rpm's `rpmExpandNumeric` reads it (a number, or y/Y).
    pub fn exclude_docs(&self) -> bool {
        match self.expanded("_excludedocs") {
            Some(v) => v.starts_with(['y', 'Y']) || v.parse::<i64>().is_ok_and(|n| n != 0),
            None => false,
        }
    }

    /// `%_dbpath`, when it expands to a plain absolute path without `..` (anything else
    /// is ignored, and the caller's default stands).
    pub fn dbpath(&self) -> Option<String> {
        let v = self.expanded("_dbpath")?;
        (v.starts_with('/') && !v.contains('%') && !v.split('/').any(|c| c == "..")).then(|| v.trim_end_matches('/').to_string()).filter(|v| !v.is_empty())
    }
}

/// Macro files `DIR/PREFIX*` in the root, sorted (rpm globs them).
fn listed(fs: &RootFs, dir: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs.list(dir).unwrap_or_default().into_iter().filter(|n| n.starts_with(prefix) && !n.ends_with('~') && !n.ends_with(".rpmnew") && !n.ends_with(".rpmsave")).collect();
    names.sort();
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

/// Open-brace depth of a definition body (what makes rpm read on).
fn depth(s: &str) -> i32 {
    let mut d = 0;
    let mut prev = '\0';
    for c in s.chars() {
        match c {
            '{' if prev == '%' || d > 0 => d += 1,
            '}' if d > 0 => d -= 1,
            _ => {}
        }
        prev = c;
    }
    d
}

/// Index of the `}` closing an opened `{` in `s`.
fn closing(s: &str) -> Option<usize> {
    let mut d = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => d += 1,
            '}' => {
                d -= 1;
                if d == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_continuations_comments_and_expands() {
        let mut m = Macros::new();
        m.parse("# comment %_x 1\n%_usr /usr\n%_var\t\t/var\n%_dbpath\t\t%{_usr}/lib/sysimage/rpm\n%_long one \\\n  two\n%_braced %{expand:\n a\n}\n%_langs en:de\n%_install_langs %{_langs}\n%p(a:) body %1\n");
        assert_eq!(m.get("_x"), None);
        assert_eq!(m.dbpath().as_deref(), Some("/usr/lib/sysimage/rpm"));
        assert_eq!(m.get("_long"), Some("one \n  two"));
        assert_eq!(m.get("_braced"), Some("%{expand:\n a\n}"));
        assert_eq!(m.install_langs(), Some(vec!["en".to_string(), "de".to_string()]));
        assert_eq!(m.get("p"), Some("body %1"));
        assert_eq!(m.expand("%%{_usr} %_var/x %{?_nope} %{?_usr:yes} %{!?_nope:no} %{_nope} %(rm -rf /)"), "%{_usr} /var/x  yes no %{_nope} %(rm -rf /)");
    }

    #[test]
    fn settings_follow_rpm_rules() {
        let mut m = Macros::new();
        assert_eq!((m.install_langs(), m.netshared_paths(), m.exclude_docs(), m.dbpath()), (None, vec![], false, None));
        m.parse("%_install_langs de:all\n%_netsharedpath /usr/share/doc:/srv/\n%_excludedocs 1\n%_dbpath ../../escape\n");
        assert_eq!(m.install_langs(), None, "`all` installs every language");
        assert_eq!(m.netshared_paths(), ["/usr/share/doc", "/srv"]);
        assert!(m.exclude_docs());
        assert_eq!(m.dbpath(), None, "a relative or escaping dbpath is ignored");
    }

    #[test]
    fn recursion_is_bounded() {
        let mut m = Macros::new();
        m.parse("%a %{b}%{b}\n%b %{a}%{a}\n%c x%{c}\n");
        let t = std::time::Instant::now();
        assert!(m.expand("%a").is_empty());
        assert!(m.expand("%c").len() <= MAX_EXPANSION + 1024);
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "bounded work");
    }

    #[test]
    fn reads_the_files_of_a_root_in_rpms_order() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        w("usr/lib/rpm/macros", "%_install_langs all\n%_a base\n");
        w("usr/lib/rpm/macros.d/macros.lang", "%_install_langs fr\n");
        w("etc/rpm/macros.zz", "%_a etc\n");
        w("etc/rpm/macros", "%_b final\n");
        let fs = RootFs::open(d.path()).unwrap();
        let (m, warnings) = Macros::load(&fs, "x86_64");
        assert!(warnings.is_empty());
        assert_eq!((m.install_langs(), m.get("_a"), m.get("_b")), (Some(vec!["fr".into()]), Some("etc"), Some("final")));
        // Hostile files: too large, a FIFO, a link to a device; each skipped with a warning.
        w("etc/rpm/macros.big", &"#".repeat(MAX_FILE + 1));
        rustix::fs::mknodat(rustix::fs::CWD, d.path().join("etc/rpm/macros.fifo"), rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o644), 0).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join("etc/rpm/macros.zero")).unwrap();
        let (m2, warnings) = Macros::load(&fs, "x86_64");
        assert_eq!(m2, m, "the readable files still count");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("macros.big") && w.contains("larger than")), "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("macros.fifo") && w.contains("not a regular file")), "{warnings:?}");
    }
}
