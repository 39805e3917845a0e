//! The RPM's identity, derived from the image alone so that the same image always gives the
//! same package: name, version, release, arch, where the archive lands, and what it provides.

use strata_rpmdb::Nevra;

/// Where installed image archives live; one directory per image name, one file per tag.
pub const IMAGE_DIR: &str = "/usr/share/strata/images";

/// `container-image-<name>`, the name's `/` and `:` (registry port) turned into `-`.
pub fn default_package_name(image_name: &str) -> String {
    format!("container-image-{}", rpm_name_part(image_name))
}

/// `docker-image-<name>`, the seed's package name (`--name-style docker-image`), spelled as
/// [`default_package_name`] spells the name.
pub fn docker_image_name(image_name: &str) -> String {
    format!("docker-image-{}", rpm_name_part(image_name))
}

/// The image name as it can stand in an RPM name: `/` and `:` (registry port) turned into `-`.
fn rpm_name_part(image_name: &str) -> String {
    image_name.chars().map(|c| if c.is_ascii_alphanumeric() || "._+".contains(c) { c } else { '-' }).collect()
}

/// rpm's `%{_isa}` name for an arch (`x86_64` → `x86-64`), the form rpmbuild gives the
/// `NAME(ARCH)` Provides every arch-specific package carries; an arch rpm has no ISA for
/// (noarch, or one rpm does not know) stays as it is.
pub fn isa(arch: &str) -> String {
    match arch {
        "x86_64" | "amd64" | "ia32e" => "x86-64",
        "i386" | "i486" | "i586" | "i686" | "athlon" | "geode" => "x86-32",
        "aarch64" => "aarch-64",
        "armv7hl" | "armv7hnl" => "armv7hl-32",
        "armv6hl" => "armv6hl-32",
        "ppc64" | "ppc64p7" | "ppc64le" => "ppc-64",
        "ppc" => "ppc-32",
        "s390x" => "s390-64",
        "s390" => "s390-32",
        "riscv64" => "riscv-64",
        "loongarch64" => "loongarch-64",
        "mips64" | "mips64el" => "mips-64",
        "mips" | "mipsel" => "mips-32",
        other => other,
    }
    .to_string()
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
/// - `docker-image-NAME = V-R`, `docker-image-NAME(ISA) = V-R` and `docker-image-id =
///   0:sha256:…` — the seed's vocabulary for the same image (NAME spelled as in the package
///   name, ISA as rpm's `%{_isa}`, the id in full as in `container-image-id`). The id's
///   epoch is written out: without it createrepo_c reads `sha256` as an epoch that is not a
///   number and leaves the Provides out of the repository's metadata; with it, dnf matches
///   `docker-image-id = sha256:…` (a missing epoch is 0);
/// - `bundled(rpm(PKG)) = [E:]V-R` per package inside, Fedora's convention for bundled
///   content, so `dnf repoquery --whatprovides 'bundled(rpm(openssl))'` finds every image
///   shipping it.
#[allow(clippy::too_many_arguments)]
pub fn provides(image_name: &str, tag: &str, version: &str, release: &str, arch: &str, image_id: &str, manifest: &str, packages: &[Nevra]) -> Vec<Provide> {
    let evr = format!("{version}-{release}");
    let docker = docker_image_name(image_name);
    let mut out = vec![
        Provide { name: format!("container-image({image_name})"), evr: Some(evr.clone()) },
        Provide { name: format!("container-image({image_name}:{tag})"), evr: None },
        Provide { name: format!("container-image-id({image_id})"), evr: None },
        Provide { name: format!("container-image-manifest({manifest})"), evr: None },
        Provide { name: docker.clone(), evr: Some(evr.clone()) },
        Provide { name: format!("{docker}({})", isa(arch)), evr: Some(evr) },
        Provide { name: "docker-image-id".to_string(), evr: Some(format!("0:{image_id}")) },
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
        let p: Vec<String> = provides("team/web", "latest", "0", "1.abc", "x86_64", "sha256:aa", "sha256:bb", &pkgs).iter().map(ToString::to_string).collect();
        assert_eq!(
            p,
            [
                "container-image(team/web) = 0-1.abc",
                "container-image(team/web:latest)",
                "container-image-id(sha256:aa)",
                "container-image-manifest(sha256:bb)",
                "docker-image-team-web = 0-1.abc",
                "docker-image-team-web(x86-64) = 0-1.abc",
                "docker-image-id = 0:sha256:aa",
                "bundled(rpm(openssl)) = 1:3.0-2",
            ]
        );
    }

    #[test]
    fn seed_names_and_isas() {
        assert_eq!(docker_image_name("registry.local:5000/web"), "docker-image-registry.local-5000-web");
        assert_eq!(isa("x86_64"), "x86-64");
        assert_eq!(isa("aarch64"), "aarch-64");
        assert_eq!(isa("noarch"), "noarch");
    }
}
