//! Arch policy: which package arches an image of a given arch may install.
//!
//! No multilib: an x86_64 image gets x86_64 and noarch packages, never i686 ones, as a
//! container image of one arch should. `src`/`nosrc` packages are never installable.
//! Within a family the lists follow rpm's `arch_compat` table (rpmrc), best first.

/// Installable arches for `target`, best first (`noarch` last). An arch this table does
/// not know installs only itself and noarch.
pub fn compatible_arches(target: &str) -> Vec<&str> {
    let family: &[&'static str] = match target {
        "x86_64" => &["x86_64"],
        "i686" => &["i686", "i586", "i486", "i386"],
        "i586" => &["i586", "i486", "i386"],
        "i486" => &["i486", "i386"],
        "i386" => &["i386"],
        "aarch64" => &["aarch64"],
        // Hard-float only: soft-float (armv5tel...) binaries do not run on an armhfp root.
        "armv7hnl" => &["armv7hnl", "armv7hl", "armv6hl"],
        "armv7hl" => &["armv7hl", "armv6hl"],
        "armv6hl" => &["armv6hl"],
        "ppc64le" => &["ppc64le"],
        "ppc64" => &["ppc64"],
        "s390x" => &["s390x"],
        "riscv64" => &["riscv64"],
        "loongarch64" => &["loongarch64"],
        _ => &[],
    };
    let mut out: Vec<&str> = if family.is_empty() {
        vec![target]
    } else {
        family.to_vec()
    };
    if target != "noarch" {
        out.push("noarch");
    }
    out
}

/// Position of `arch` in [`compatible_arches`]`(target)`: 0 is best; `None` means a
/// package of that arch cannot go into a `target` image.
pub fn arch_rank(target: &str, arch: &str) -> Option<usize> {
    if arch == "src" || arch == "nosrc" {
        return None;
    }
    if arch == target {
        return Some(0);
    }
    compatible_arches(target).iter().position(|a| *a == arch)
}

/// dnf's `$basearch` for an arch (dnf's `_BASEARCH_MAP`).
pub fn basearch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" | "athlon" | "geode" | "pentium3" | "pentium4" => "i386",
        "x86_64" | "amd64" | "ia32e" => "x86_64",
        "armv7hl" | "armv7hnl" | "armv6hl" => "armhfp",
        "armv5tel" | "armv5tejl" | "armv6l" | "armv7l" => "arm",
        "ppc64p7" => "ppc64",
        other => other,
    }
}

/// An rpm arch as an OCI platform names it (Go's GOARCH).
pub fn oci_arch(rpm_arch: &str) -> &str {
    match rpm_arch {
        "x86_64" | "amd64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i486" | "i586" | "i686" => "386",
        "armv6hl" | "armv7hl" | "armv7l" => "arm",
        "mips64el" => "mips64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// An OCI platform's architecture (and variant) as rpm names it.
pub fn from_oci_arch<'a>(oci_arch: &'a str, variant: Option<&str>) -> &'a str {
    match (oci_arch, variant) {
        ("amd64", _) => "x86_64",
        ("arm64", _) => "aarch64",
        ("386", _) => "i686",
        ("arm", Some("v6")) => "armv6hl",
        ("arm", _) => "armv7hl",
        ("mips64le", _) => "mips64el",
        ("loong64", _) => "loongarch64",
        (other, _) => other,
    }
}

/// The machine's arch in rpm's naming.
pub fn host_arch() -> &'static str {
    rpm_arch_name(std::env::consts::ARCH, cfg!(target_endian = "big"))
}

/// Rust's `target_arch` names to rpm's; a separate function so every branch is testable.
fn rpm_arch_name(rust_arch: &'static str, big_endian: bool) -> &'static str {
    match rust_arch {
        "x86" => "i686",
        "powerpc64" if big_endian => "ppc64",
        "powerpc64" => "ppc64le",
        "powerpc" => "ppc",
        "arm" => "armv7hl",
        "loongarch64" => "loongarch64",
        other => other,
    }
}

/// Whether rpm knows `arch` as a package arch. Request parsing uses it to tell
/// `python3.11` (a name) from `python3.x86_64` (name and arch).
pub fn is_known(arch: &str) -> bool {
    matches!(
        arch,
        "noarch"
            | "src"
            | "nosrc"
            | "x86_64"
            | "amd64"
            | "ia32e"
            | "i386"
            | "i486"
            | "i586"
            | "i686"
            | "athlon"
            | "geode"
            | "pentium3"
            | "pentium4"
            | "aarch64"
            | "armv5tel"
            | "armv5tejl"
            | "armv6l"
            | "armv6hl"
            | "armv7l"
            | "armv7hl"
            | "armv7hnl"
            | "ppc"
            | "ppc64"
            | "ppc64le"
            | "ppc64p7"
            | "s390"
            | "s390x"
            | "riscv64"
            | "loongarch64"
            | "mips"
            | "mipsel"
            | "mips64"
            | "mips64el"
            | "sparc"
            | "sparcv9"
            | "sparc64"
            | "alpha"
            | "ia64"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_multilib() {
        assert_eq!(compatible_arches("x86_64"), ["x86_64", "noarch"]);
        assert_eq!(compatible_arches("aarch64"), ["aarch64", "noarch"]);
        assert_eq!(
            compatible_arches("i686"),
            ["i686", "i586", "i486", "i386", "noarch"]
        );
        assert_eq!(compatible_arches("ppc64le"), ["ppc64le", "noarch"]);
        assert_eq!(compatible_arches("s390x"), ["s390x", "noarch"]);
        assert_eq!(
            compatible_arches("armv7hl"),
            ["armv7hl", "armv6hl", "noarch"]
        );
        assert_eq!(compatible_arches("mips64"), ["mips64", "noarch"]);
        assert_eq!(compatible_arches("noarch"), ["noarch"]);
    }

    #[test]
    fn ranks() {
        assert_eq!(arch_rank("x86_64", "x86_64"), Some(0));
        assert_eq!(arch_rank("x86_64", "noarch"), Some(1));
        assert_eq!(arch_rank("x86_64", "i686"), None);
        assert_eq!(arch_rank("x86_64", "src"), None);
        assert_eq!(arch_rank("x86_64", "nosrc"), None);
        assert_eq!(arch_rank("src", "src"), None);
        assert_eq!(arch_rank("i686", "i386"), Some(3));
        assert_eq!(arch_rank("i686", "x86_64"), None);
        assert_eq!(arch_rank("armv7hl", "armv5tel"), None);
        assert_eq!(arch_rank("mips64", "mips64"), Some(0));
        assert_eq!(arch_rank("mips64", "noarch"), Some(1));
    }

    #[test]
    fn basearch_mapping() {
        assert_eq!(basearch("i686"), "i386");
        assert_eq!(basearch("athlon"), "i386");
        assert_eq!(basearch("amd64"), "x86_64");
        for rpm in ["x86_64", "aarch64", "i686", "armv7hl", "ppc64le", "s390x", "riscv64", "mips64el", "loongarch64"] {
            assert_eq!(from_oci_arch(oci_arch(rpm), None), rpm, "{rpm} round trip");
        }
        assert_eq!(from_oci_arch("arm", Some("v6")), "armv6hl");
        assert_eq!(basearch("armv7hl"), "armhfp");
        assert_eq!(basearch("armv7l"), "arm");
        assert_eq!(basearch("ppc64p7"), "ppc64");
        assert_eq!(basearch("ppc64le"), "ppc64le");
        assert_eq!(basearch("x86_64"), "x86_64");
        assert_eq!(basearch("aarch64"), "aarch64");
    }

    #[test]
    fn host_arch_names() {
        assert_eq!(rpm_arch_name("x86_64", false), "x86_64");
        assert_eq!(rpm_arch_name("aarch64", false), "aarch64");
        assert_eq!(rpm_arch_name("x86", false), "i686");
        assert_eq!(rpm_arch_name("powerpc64", false), "ppc64le");
        assert_eq!(rpm_arch_name("powerpc64", true), "ppc64");
        assert_eq!(rpm_arch_name("arm", false), "armv7hl");
        assert_eq!(rpm_arch_name("s390x", true), "s390x");
        assert!(is_known(host_arch()), "{}", host_arch());
    }

    #[test]
    fn known_arches() {
        assert!(is_known("x86_64") && is_known("noarch") && is_known("armv7hl"));
        assert!(!is_known("11") && !is_known("el9") && !is_known(""));
    }
}
