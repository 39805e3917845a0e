//! Owner and group names → ids through the image's own `/etc/passwd` and `/etc/group`,
//! read at the moment each package is installed (after its `%pre` may have added a user),
//! as rpm does. Unknown names fall back to root with a warning, also as rpm does (and, as
//! rpm does, the setuid or setgid bit goes with them: `install::fallback_to_root`).

use std::collections::HashMap;

#[derive(Default, Debug)]
pub struct IdMap {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

fn parse(text: &[u8]) -> HashMap<String, u32> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            // The first entry wins, as getpwnam's linear scan does.
            Some((name.to_string(), id))
        })
        .fold(HashMap::new(), |mut m, (n, id)| {
            m.entry(n).or_insert(id);
            m
        })
}

impl IdMap {
    pub fn from_files(passwd: Option<&[u8]>, group: Option<&[u8]>) -> IdMap {
        IdMap { users: passwd.map(parse).unwrap_or_default(), groups: group.map(parse).unwrap_or_default() }
    }

    /// `None` when the name is unknown; root (0) always resolves.
    pub fn uid(&self, name: &str) -> Option<u32> {
        self.users.get(name).copied().or((name == "root").then_some(0))
    }

    pub fn gid(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied().or((name == "root").then_some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_names_and_keeps_first_entry() {
        let m = IdMap::from_files(
            Some(b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nwww-data:x:99:99::/:/bin/false\n"),
            Some(b"root:x:0:\nshadow:x:42:\n"),
        );
        assert_eq!(m.uid("www-data"), Some(33));
        assert_eq!(m.gid("shadow"), Some(42));
        assert_eq!(m.uid("redis"), None);
        assert_eq!(IdMap::default().uid("root"), Some(0));
    }
}
