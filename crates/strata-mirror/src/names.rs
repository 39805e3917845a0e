//! Image references as the mirror takes them, checked before anything is written: a name
//! becomes folder and file names, so nothing that could climb out of the mirror (`..`,
//! an absolute path), hide (a leading dot) or garble a listing (control characters) gets
//! through. A name with a repository path (`team/web`, `localhost:5000/web`) gets one
//! folder, its parts joined by `-` as the image's RPM name joins them (`team-web`).

use crate::Error;

/// A checked `NAME[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// As the store resolves it.
    pub reference: String,
    pub name: String,
    pub tag: String,
    /// The image's folder in the mirror (one path segment).
    pub folder: String,
}

fn refuse(reference: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "{reference:?} cannot be published: {why}\n  hint: name an image of the store as NAME[:TAG] (lowercase letters, digits and . _ - between them, parts separated by /)"
    ))
}

/// docker's path component: lowercase letters and digits, separated by one `.`, one or two
/// `_`, or any number of `-`.
fn is_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|c| !c.is_ascii_alphanumeric()).count();
        if run == 0 {
            // An uppercase letter.
            return false;
        }
        let sep = &s[i..i + run];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
        i += run;
    }
    true
}

/// A registry host (`localhost:5000`, `registry.example.org`) as a name's first part.
fn is_host(s: &str) -> bool {
    let (host, port) = s.split_once(':').map_or((s, None), |(h, p)| (h, Some(p)));
    !host.is_empty()
        && (host.contains('.') || port.is_some() || host == "localhost")
        && host.split('.').all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') && !l.starts_with('-') && !l.ends_with('-'))
        && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// docker's tag: a word character first, then word characters, `.` and `-`, 128 at most.
fn is_tag(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && (s.as_bytes()[0].is_ascii_alphanumeric() || s.starts_with('_')) && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// Checks `NAME[:TAG]` (tag `latest` when absent).
pub fn parse_reference(reference: &str) -> Result<Parsed, Error> {
    if let Some(c) = reference.chars().find(|c| c.is_control()) {
        return Err(refuse(reference, &format!("it has the control character U+{:04X}", c as u32)));
    }
    if reference.is_empty() {
        return Err(refuse(reference, "the name is empty"));
    }
    if reference.contains('@') {
        return Err(refuse(reference, "a digest names no version for the mirror's folders; name the image by NAME[:TAG]"));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match reference[last_slash..].rfind(':') {
        Some(i) => (&reference[..last_slash + i], &reference[last_slash + i + 1..]),
        None => (reference, "latest"),
    };
    if !is_tag(tag) {
        return Err(refuse(reference, &format!("{tag:?} is not a valid tag")));
    }
    let parts: Vec<&str> = name.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if *part == ".." || *part == "." {
            return Err(refuse(reference, "a name part may not be `.` or `..` (it would name a folder outside the image's own)"));
        }
        if part.is_empty() {
            return Err(refuse(reference, "a name part is empty (a leading, trailing or doubled /)"));
        }
        let host_ok = i == 0 && parts.len() > 1 && is_host(part);
        if !host_ok && !is_component(part) {
            return Err(refuse(reference, &format!("{part:?} is not a valid name part")));
        }
    }
    let folder: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._".contains(c) { c } else { '-' }).collect();
    Ok(Parsed { reference: format!("{name}:{tag}"), name: name.to_string(), tag: tag.to_string(), folder })
}

/// Two image names that would share one mirror folder.
pub fn collision(folder: &str, a: &str, b: &str) -> Error {
    Error::Invalid(format!(
        "{b} and {a} would both be published in the mirror folder {folder}/\n  hint: publish them to different mirrors, or tag one under another name"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_folder() {
        let p = parse_reference("web").unwrap();
        assert_eq!((p.reference.as_str(), p.tag.as_str(), p.folder.as_str()), ("web:latest", "latest", "web"));
        let p = parse_reference("team/web:1.2").unwrap();
        assert_eq!((p.name.as_str(), p.tag.as_str(), p.folder.as_str()), ("team/web", "1.2", "team-web"));
        let p = parse_reference("localhost:5000/a__b.c:v1").unwrap();
        assert_eq!((p.name.as_str(), p.tag.as_str(), p.folder.as_str()), ("localhost:5000/a__b.c", "v1", "localhost-5000-a__b.c"));
    }

    #[test]
    fn hostile_names_are_refused_saying_why() {
        for (bad, why) in [
            ("../etc", "`..`"),
            ("web/../../x", "`..`"),
            ("/web", "empty"),
            ("web/", "empty"),
            ("we\u{1b}[31mb", "U+001B"),
            ("web\n", "U+000A"),
            ("Web", "not a valid name part"),
            (".hidden", "not a valid name part"),
            ("web:../x", "is not a valid"),
            ("web:a/b", "is not a valid"),
            ("web:-x", "not a valid tag"),
            ("web@sha256:00", "digest"),
            ("", "empty"),
        ] {
            let e = parse_reference(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("hint:"), "{bad:?}: {e}");
        }
    }
}
