//! One image of a spec: what goes in (packages) and how it runs (OCI config).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// An image as the spec describes it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Names, `name op evr`, provides (`/usr/bin/python3`, `libssl.so.3()(64bit)`).
    pub packages: Vec<String>,
    /// Package-name globs never installed in this image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub install_weak_deps: bool,
    /// Target arch; the host's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Tag in the store; `latest` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Command>,
    #[serde(default, deserialize_with = "ports", skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<Port>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `false` drops files rpm marks `%doc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<bool>,
    /// Locales to keep (rpm's `%_install_langs`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub langs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scriptlets: Option<ScriptletPolicy>,
}

/// A command in exec form (`["/bin/sh", "-c", "x"]`) or shell form (`"x"`), as in Dockerfiles.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

impl Command {
    /// The argv the OCI config carries: shell form runs under `/bin/sh -c`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptletPolicy {
    Run,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Port {
    /// `80`, `80/tcp`, `53/udp`, `9899/sctp`.
    pub fn parse(s: &str) -> Result<Port, String> {
        let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return Err(format!("port `{s}`: protocol must be tcp, udp or sctp")),
        };
        let number = num
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("port `{s}` is not a port number (1-65535)"))?;
        Ok(Port { number, protocol })
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        write!(f, "{}/{}", self.number, proto)
    }
}

impl From<Port> for String {
    fn from(p: Port) -> String {
        p.to_string()
    }
}

/// `expose` accepts `"80"`, `80`, `"80/tcp"` or a list of those.
fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Num(u64),
        Text(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(One),
        Many(Vec<One>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(o) => vec![o],
        Raw::Many(v) => v,
    };
    let mut out: Vec<Port> = items
        .into_iter()
        .map(|o| match o {
            One::Num(n) => Port::parse(&n.to_string()),
            One::Text(t) => Port::parse(&t),
        })
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)?;
    out.sort();
    out.dedup();
    Ok(out)
}

impl ImageSpec {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.packages.is_empty() {
            return Err("`packages` is empty: list at least one package".into());
        }
        if let Some(p) = self.packages.iter().find(|p| p.trim().is_empty()) {
            return Err(format!("`packages` has an empty entry `{p}`"));
        }
        if let Some(tag) = &self.tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(format!("tag `{tag}` is not a valid OCI tag"));
            }
        }
        if let Some(arch) = self.arch.as_deref().filter(|a| !strata_rpm::arch::is_known(a)) {
            return Err(format!("arch `{arch}` is not an rpm arch (x86_64, aarch64, ppc64le, s390x, i686, ...)"));
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') {
                return Err(format!("env name `{k}` is not valid"));
            }
        }
        Ok(())
    }

    /// The host arch in rpm's naming, used when `arch` is absent.
    pub fn arch_or_host(&self) -> String {
        self.arch.clone().unwrap_or_else(|| strata_rpm::arch::host_arch().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(json: &str) -> Result<ImageSpec, String> {
        let i: ImageSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        i.validate()?;
        Ok(i)
    }

    #[test]
    fn expose_forms() {
        let p = |j: &str| image(&format!(r#"{{"packages": ["x"], "expose": {j}}}"#)).map(|i| i.expose);
        assert_eq!(p(r#""80""#).unwrap(), [Port { number: 80, protocol: Protocol::Tcp }]);
        assert_eq!(p("80").unwrap()[0].to_string(), "80/tcp");
        let many = p(r#"["53/udp", 80, "80/tcp"]"#).unwrap();
        assert_eq!(many.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["53/udp", "80/tcp"]);
        assert!(p(r#""http""#).unwrap_err().contains("`http`"));
        assert!(p(r#""80/icmp""#).unwrap_err().contains("protocol"));
    }

    #[test]
    fn commands() {
        let i = image(r#"{"packages": ["x"], "entrypoint": ["/usr/sbin/nginx", "-g", "daemon off;"], "cmd": "echo hi"}"#).unwrap();
        assert_eq!(i.entrypoint.unwrap().argv(), ["/usr/sbin/nginx", "-g", "daemon off;"]);
        assert_eq!(i.cmd.unwrap().argv(), ["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn validation() {
        assert!(image(r#"{"packages": []}"#).unwrap_err().contains("empty"));
        assert!(image(r#"{"packages": ["x"], "tag": "a:b"}"#).unwrap_err().contains("tag"));
        assert!(image(r#"{"packages": ["x"], "scriptlets": "sometimes"}"#).is_err());
        assert!(image(r#"{"packages": ["x"], "arch": "x86-64"}"#).unwrap_err().contains("x86-64"));
        assert!(image(r#"{"packages": ["x"], "arch": "aarch64"}"#).is_ok());
        assert_eq!(image(r#"{"packages": ["x"], "scriptlets": "skip"}"#).unwrap().scriptlets, Some(ScriptletPolicy::Skip));
    }
}
