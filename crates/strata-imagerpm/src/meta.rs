//! The RPM's identity, derived from the image alone so that the same image always gives the
//! same package: name, version, release, arch, where the archive lands, and what it provides.

use strata_rpmdb::Nevra;

/// Where installed image archives live; one directory per image name, one file per tag.
pub const IMAGE_DIR: &str = "/usr/share/strata/images";

/// `container-image-<name>`, the name's `/` and `:` (registry port) turned into `-`.
pub fn default_package_name(image_name: &str) -> String {
    let mut out = String::from("container-image-");
    for c in image_name.chars() {
        out.push(if c.is_ascii_alphanumeric() || "._+".contains(c) { c } else { '-' });
    }
    out
}

/// Characters rpm accepts in a version or release (no `-`, which separates them).
pub fn is_rpm_version(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._+~^".contains(c))
}

/// The image's `org.opencontainers.image.version` label, else its tag when the tag looks
/// like a version (`1.2`, `2024.1`), else `0`: tags such as `latest` say nothing about order.
pub fn default_version(tag: &str, version_label: Option<&str>) -> String {
    if let Some(v) = version_label.filter(|v| is_rpm_version(v)) {
        return v.to_string();
    }
    if tag.starts_with(|c: char| c.is_ascii_digit()) && is_rpm_version(tag) {
        return tag.to_string();
    }
    "0".to_string()
}

/// `<created as YYYYMMDDhhmmss>.<first 12 hex of the image id>`: a rebuild with newer
/// packages is newer (composed images are created at their newest package's build time), and
/// two different images never share a release.
pub fn default_release(created_secs: Option<u64>, image_id_hex: &str) -> String {
    let stamp = match created_secs {
        Some(secs) => strata_oci::config::rfc3339(secs).chars().filter(char::is_ascii_digit).collect(),
        None => "0".to_string(),
    };
    format!("{stamp}.{}", &image_id_hex[..image_id_hex.len().min(12)])
}

/// The archive's path once installed: `IMAGE_DIR/<name>/<tag>.tar`.
pub fn archive_path(image_name: &str, tag: &str) -> String {
    format!("{IMAGE_DIR}/{image_name}/{tag}.tar")
}

/// The JSON record installed beside the archive: `IMAGE_DIR/<name>/<tag>.json`.
pub fn record_path(image_name: &str, tag: &str) -> String {
    format!("{IMAGE_DIR}/{image_name}/{tag}.json")
}

/// One capability the package provides, with an optional `= EVR`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provide {
    pub name: String,
    pub evr: Option<String>,
}

impl std::fmt::Display for Provide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.evr {
            Some(evr) => write!(f, "{} = {evr}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What the image RPM provides:
/// - `container-image(NAME) = V-R` — the image by name, versioned for `Requires: … >=`;
/// - `container-image(NAME:TAG)` — the exact tag;
/// - `container-image-id(sha256:…)` — the image id (config digest, `docker images` ID);
/// - `container-image-manifest(sha256:…)` — the manifest digest a registry serves;
/// - `bundled(rpm(PKG)) = [E:]V-R` per package inside, Fedora's convention for bundled
///   content, so `dnf repoquery --whatprovides 'bundled(rpm(openssl))'` finds every image
///   shipping it.
pub fn provides(image_name: &str, tag: &str, version: &str, release: &str, image_id: &str, manifest: &str, packages: &[Nevra]) -> Vec<Provide> {
    let mut out = vec![
        Provide { name: format!("container-image({image_name})"), evr: Some(format!("{version}-{release}")) },
        Provide { name: format!("container-image({image_name}:{tag})"), evr: None },
        Provide { name: format!("container-image-id({image_id})"), evr: None },
        Provide { name: format!("container-image-manifest({manifest})"), evr: None },
    ];
    for p in packages {
        let epoch = p.epoch.map(|e| format!("{e}:")).unwrap_or_default();
        out.push(Provide { name: format!("bundled(rpm({}))", p.name), evr: Some(format!("{epoch}{}-{}", p.version, p.release)) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rpm_names() {
        assert_eq!(default_package_name("web"), "container-image-web");
        assert_eq!(default_package_name("registry.local:5000/team/web"), "container-image-registry.local-5000-team-web");
    }

    #[test]
    fn versions_come_from_the_label_then_a_numeric_tag() {
        assert_eq!(default_version("latest", None), "0");
        assert_eq!(default_version("1.2.3", None), "1.2.3");
        assert_eq!(default_version("1.2-rc1", None), "0", "a '-' cannot be in a version");
        assert_eq!(default_version("latest", Some("4.1")), "4.1");
        assert_eq!(default_version("2.0", Some("not a version")), "2.0");
    }

    #[test]
    fn releases_order_by_creation_and_differ_by_image() {
        let a = default_release(Some(1_700_000_000), "0123456789abcdef");
        assert_eq!(a, "20231114221320.0123456789ab");
        let later = default_release(Some(1_700_000_001), "ffff");
        assert_ne!(a, default_release(Some(1_700_000_000), "fedcba9876543210"));
        assert!(is_rpm_version(&a));
        // rpmvercmp compares the leading numeric segment first.
        assert!(later.split('.').next().unwrap() > a.split('.').next().unwrap());
        assert_eq!(default_release(None, "abc"), "0.abc");
    }

    #[test]
    fn provides_name_the_image_its_id_and_its_packages() {
        let pkgs = [Nevra { name: "openssl".into(), epoch: Some(1), version: "3.0".into(), release: "2".into(), arch: Some("x86_64".into()) }];
        let p: Vec<String> = provides("web", "latest", "0", "1.abc", "sha256:aa", "sha256:bb", &pkgs).iter().map(ToString::to_string).collect();
        assert_eq!(
            p,
            [
                "container-image(web) = 0-1.abc",
                "container-image(web:latest)",
                "container-image-id(sha256:aa)",
                "container-image-manifest(sha256:bb)",
                "bundled(rpm(openssl)) = 1:3.0-2",
            ]
        );
    }
}
