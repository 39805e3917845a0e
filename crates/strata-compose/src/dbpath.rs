//! Where the image's rpm expects its database: `%_dbpath` from the rpm macro files inside
//! the image (Fedora: `/usr/lib/sysimage/rpm`), else `/var/lib/rpm`.

use std::path::Path;

const MACRO_FILES: [&str; 3] = ["usr/lib/rpm/macros", "usr/lib/rpm/macros.d", "etc/rpm"];

pub fn image_dbpath(root: &Path) -> String {
    let mut files = Vec::new();
    for m in MACRO_FILES {
        let p = root.join(m);
        if p.is_file() {
            files.push(p);
        } else if let Ok(rd) = std::fs::read_dir(&p) {
            let mut more: Vec<_> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
            more.sort();
            files.extend(more);
        }
    }
    let mut dbpath = None;
    for f in files {
        // Only the image's own files: a symlink to the host is not followed.
        if f.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(true) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("%_dbpath") {
                if let Some(v) = words.next() {
                    dbpath = Some(v.to_string());
                }
            }
        }
    }
    let raw = dbpath.unwrap_or_else(|| format!("/{}", strata_rpmdb::DEFAULT_DBPATH));
    let expanded = raw.replace("%{_var}", "/var").replace("%{_usr}", "/usr").replace("%{_prefix}", "/usr");
    if expanded.starts_with('/') && !expanded.contains('%') && !expanded.split('/').any(|c| c == "..") {
        expanded
    } else {
        format!("/{}", strata_rpmdb::DEFAULT_DBPATH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fedora_style_macro_and_defaults() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(image_dbpath(d.path()), "/var/lib/rpm");
        std::fs::create_dir_all(d.path().join("usr/lib/rpm")).unwrap();
        std::fs::write(d.path().join("usr/lib/rpm/macros"), "%_var /var\n%_dbpath\t\t%{_usr}/lib/sysimage/rpm\n").unwrap();
        assert_eq!(image_dbpath(d.path()), "/usr/lib/sysimage/rpm");
        std::fs::create_dir_all(d.path().join("etc/rpm")).unwrap();
        std::fs::write(d.path().join("etc/rpm/macros.db"), "%_dbpath ../../escape\n").unwrap();
        assert_eq!(image_dbpath(d.path()), "/var/lib/rpm");
    }
}
