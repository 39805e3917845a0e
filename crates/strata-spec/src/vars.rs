//! dnf variables in repo URLs: `$basearch`, `$arch`, `$releasever` (also `${name}`).

/// The values variables expand to for one target arch.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub arch: String,
    pub basearch: String,
    pub releasever: Option<String>,
    /// Extra variables (dnf's /etc/dnf/vars equivalents), looked up after the built-ins.
    pub extra: Vec<(String, String)>,
}

impl Vars {
    /// Variables for `arch` with dnf's `$basearch` mapping (i686 → i386, armv7hl → armhfp).
    pub fn for_arch(arch: &str) -> Vars {
        let basearch = strata_rpm::arch::basearch(arch);
        Vars { arch: arch.into(), basearch: basearch.into(), ..Default::default() }
    }

    fn get(&self, name: &str) -> Result<Option<&str>, String> {
        Ok(match name {
            "arch" => Some(&self.arch),
            "basearch" => Some(&self.basearch),
            "releasever" => Some(self.releasever.as_deref().ok_or_else(|| {
                "uses $releasever but no release version is known: pass --releasever".to_string()
            })?),
            other => self.extra.iter().find(|(k, _)| k == other).map(|(_, v)| v.as_str()),
        })
    }
}

/// Expands `$name` and `${name}`; an unknown variable is left as written (dnf does the same),
/// a known one without a value is an error.
pub fn substitute(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&after[..len], len)
        };
        match (name.is_empty(), vars.get(name)?) {
            (false, Some(value)) => out.push_str(value),
            _ => out.push_str(&rest[pos..pos + 1 + consumed]),
        }
        rest = &rest[pos + 1 + consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_variables() {
        let mut v = Vars::for_arch("i686");
        v.releasever = Some("9".into());
        assert_eq!(
            substitute("https://m/$releasever/os/$basearch/${arch}/x", &v).unwrap(),
            "https://m/9/os/i386/i686/x"
        );
        assert_eq!(substitute("a/$unknown/b$", &v).unwrap(), "a/$unknown/b$");
        v.extra.push(("contentdir".into(), "pub".into()));
        assert_eq!(substitute("/$contentdir/", &v).unwrap(), "/pub/");
    }

    #[test]
    fn missing_releasever_is_an_error() {
        let e = substitute("x/$releasever", &Vars::for_arch("x86_64")).unwrap_err();
        assert!(e.contains("--releasever"));
    }
}
