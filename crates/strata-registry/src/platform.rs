//! Platforms (`os/arch[/variant]`) and how an index entry is matched against the one asked
//! for. Names are normalised as containerd does, so `linux/aarch64` finds `linux/arm64`
//! and `arm64/v8` equals plain `arm64`.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A platform as image indexes describe them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Builds and normalises a platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let (architecture, variant) = normalize_arch(
            &architecture.to_ascii_lowercase(),
            variant.map(str::to_ascii_lowercase).as_deref(),
        );
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// `linux/amd64`, what strata builds and pulls unless told otherwise.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    /// Parses `OS/ARCH[/VARIANT]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        match parts[..] {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform::new(os, arch, Some(v))),
            _ => Err(Error::InvalidPlatform(s.to_string())),
        }
    }

    /// Whether an index entry's platform is this one. A wanted platform without variant
    /// accepts any variant (as `docker pull --platform linux/arm` does).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let other = Platform::new(os, architecture, variant);
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl Default for Platform {
    fn default() -> Platform {
        Platform::linux_amd64()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform> {
        Platform::parse(s)
    }
}

/// containerd's `platforms.Normalize` for the architectures images are built for.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let v = |s: &str| Some(s.to_string());
    match (arch, variant) {
        ("i386" | "i686", _) => ("386".into(), None),
        ("x86_64" | "x86-64" | "amd64", None | Some("v1")) => ("amd64".into(), None),
        ("x86_64" | "x86-64" | "amd64", Some(var)) => ("amd64".into(), v(var)),
        ("aarch64" | "arm64", None | Some("8" | "v8" | "v8.0")) => ("arm64".into(), None),
        ("aarch64" | "arm64", Some(var)) => ("arm64".into(), v(var)),
        ("armhf", _) => ("arm".into(), v("v7")),
        ("armel", _) => ("arm".into(), v("v6")),
        ("arm", Some("5" | "6" | "7" | "8")) => ("arm".into(), variant.map(|x| format!("v{x}"))),
        (other, var) => (other.to_string(), var.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap(),
            Platform::linux_amd64()
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap(),
            Platform::linux_amd64()
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm/7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn matches_index_entries() {
        let amd64 = Platform::linux_amd64();
        assert!(amd64.matches("linux", "amd64", None));
        assert!(!amd64.matches("linux", "arm64", None));
        assert!(!amd64.matches("windows", "amd64", None));
        assert!(!amd64.matches("unknown", "unknown", None));
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        let arm = Platform::parse("linux/arm").unwrap();
        assert!(arm.matches("linux", "arm", Some("v6")));
        let armv7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(armv7.matches("linux", "arm", Some("v7")));
        assert!(!armv7.matches("linux", "arm", Some("v6")));
    }
}
