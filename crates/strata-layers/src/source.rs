//! The source package a binary package was built from, by name.

/// `openssl-3.0.20-1~deb12u2.src.rpm` → `openssl`. A package without a source RPM (or with
/// one that does not parse) is its own source: `fallback` (its name) is returned.
pub fn source_name(sourcerpm: &str, fallback: &str) -> String {
    let stem = sourcerpm
        .strip_suffix(".src.rpm")
        .or_else(|| sourcerpm.strip_suffix(".nosrc.rpm"))
        .unwrap_or("");
    // name-version-release: the name may itself contain dashes, version and release not.
    let mut parts = stem.rsplitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(r), Some(v), Some(n)) if !r.is_empty() && !v.is_empty() && !n.is_empty() => n.to_string(),
        _ => fallback.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::source_name;

    #[test]
    fn takes_the_name_before_version_and_release() {
        assert_eq!(source_name("openssl-3.0.20-1~deb12u2.src.rpm", "libssl3"), "openssl");
        assert_eq!(source_name("python-django-3.2.25-1.src.rpm", "python3-django"), "python-django");
        assert_eq!(source_name("nosrc-pkg-1-2.nosrc.rpm", "x"), "nosrc-pkg");
        assert_eq!(source_name("", "bash"), "bash");
        assert_eq!(source_name("garbage.src.rpm", "bash"), "bash");
        assert_eq!(source_name("a-1.src.rpm", "bash"), "bash");
    }
}
