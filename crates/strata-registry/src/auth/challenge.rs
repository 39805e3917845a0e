//! `WWW-Authenticate` challenges (RFC 7235): `Bearer realm="...",service="...",scope="..."`
//! or `Basic realm="..."`, possibly several in one header.

use std::collections::BTreeMap;

/// One challenge: its scheme (lowercased) and parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }
}

/// Parses every challenge of a header value. Malformed parts are skipped rather than
/// failing the whole header: a registry's odd extension must not hide its Bearer challenge.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    while p.i < p.s.len() {
        let start = p.i;
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        let Some(scheme) = p.token() else {
            // Not a token where a scheme should be: skip one byte and resynchronise.
            p.i = start.max(p.i) + 1;
            continue;
        };
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip_ws();
            let before = p.i;
            let Some(name) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                // A token not followed by '=' is the next challenge's scheme.
                p.i = before;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.bare_value()
            };
            ch.params.insert(name.to_ascii_lowercase(), value);
            p.skip_ws();
            if !p.eat(b',') {
                break;
            }
        }
        out.push(ch);
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn skip_ws(&mut self) {
        self.skip(|c| c == b' ' || c == b'\t');
    }

    /// RFC 7230 `token`.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted-string with backslash escapes; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut v = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                _ => v.push(c),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }

    /// An unquoted value, looser than RFC 7230's token on purpose: some servers send
    /// `realm=https://auth.example/token` unquoted, with ':' and '/'.
    fn bare_value(&mut self) -> String {
        let start = self.i;
        self.skip(|c| c != b',' && c != b' ' && c != b'\t');
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn docker_hub_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            [
                ("realm", "https://auth.docker.io/token"),
                ("scope", "repository:library/busybox:pull"),
                ("service", "registry.docker.io"),
            ]
        );
    }

    #[test]
    fn insufficient_scope_with_several_scopes_and_spaces() {
        let c = parse(
            r#"Bearer realm="http://127.0.0.1:1/t", service="reg", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope""#,
        );
        assert_eq!(
            c[0].param("scope"),
            Some("repository:a:pull,push repository:b:pull")
        );
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse(r#"Basic realm="Registry Realm""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].realm(), Some("Registry Realm"));

        let c = parse(r#"Basic realm="a", Bearer realm="https://x/token",service=s, Negotiate"#);
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[1].param("service"), Some("s"));
        assert_eq!(c[1].realm(), Some("https://x/token"));
    }

    #[test]
    fn escapes_case_and_junk() {
        let c = parse(r#"BEARER Realm="a\"b\\c",Service=unquoted"#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].realm(), Some(r#"a"b\c"#));
        assert_eq!(c[0].param("service"), Some("unquoted"));
        let c = parse(r#"Bearer realm=https://auth.example/token,service=reg"#);
        assert_eq!(c[0].realm(), Some("https://auth.example/token"));
        assert!(parse("").is_empty());
        assert!(parse(" , ,").is_empty());
        // Garbage never loops forever and never invents a realm.
        let c = parse(r#"=== "x" Bearer realm="r""#);
        assert_eq!(c.last().unwrap().realm(), Some("r"));
        let c = parse(r#"Bearer realm="unterminated"#);
        assert_eq!(c[0].realm(), Some("unterminated"));
    }
}
