//! Arch policy: which package arches an image of a given arch may install.
//!
//! No multilib: an x86_64 image gets x86_64 and noarch packages, never i686 ones, as a
//! container image of one arch should. `src`/`nosrc` packages are never installable.

/// Installable arches for `target`, best first (`noarch` last).
pub fn compatible_arches(target: &str) -> Vec<&str> {
    let family: &[&'static str] = match target {
        "x86_64" => &["x86_64"],
        "i686" => &["i686", "i586", "i486", "i386"],
        "i586" => &["i586", "i486", "i386"],
        "i486" => &["i486", "i386"],
        "i386" => &["i386"],
        "aarch64" => &["aarch64"],
        "armv7hl" => &["armv7hl", "armv6hl"],
        "ppc64le" => &["ppc64le"],
        "s390x" => &["s390x"],
        "riscv64" => &["riscv64"],
        _ => &[],
    };
    let mut out: Vec<&str> = if family.is_empty() { vec![target] } else { family.to_vec() };
    out.push("noarch");
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

/// dnf's `$basearch` for an arch.
pub fn basearch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" | "athlon" => "i386",
        "armv7hl" | "armv7hnl" | "armv6hl" => "armhfp",
        other => other,
    }
}

/// The machine's arch in rpm's naming.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i686",
        "powerpc64" => "ppc64le",
        "arm" => "armv7hl",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_multilib() {
        assert_eq!(arch_rank("x86_64", "x86_64"), Some(0));
        assert_eq!(arch_rank("x86_64", "noarch"), Some(1));
        assert_eq!(arch_rank("x86_64", "i686"), None);
        assert_eq!(arch_rank("x86_64", "src"), None);
        assert_eq!(arch_rank("i686", "i386"), Some(3));
        assert_eq!(arch_rank("i686", "x86_64"), None);
        assert_eq!(arch_rank("mips64", "mips64"), Some(0));
        assert_eq!(arch_rank("mips64", "noarch"), Some(1));
        assert_eq!(compatible_arches("aarch64"), ["aarch64", "noarch"]);
    }

    #[test]
    fn basearch_mapping() {
        assert_eq!(basearch("i686"), "i386");
        assert_eq!(basearch("armv7hl"), "armhfp");
        assert_eq!(basearch("x86_64"), "x86_64");
        assert!(!host_arch().is_empty());
    }
}
