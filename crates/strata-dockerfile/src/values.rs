//! Checks and conversions of expanded instruction values the way Docker does them: Go
//! durations (HEALTHCHECK), port specs (EXPOSE), file modes (`--chmod`), signal names
//! (STOPSIGNAL), image references (FROM).

use std::fmt;
use std::time::Duration;

/// Go's `time.ParseDuration`, in nanoseconds (negative allowed, as in Go).
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac = &r[..n];
            rest = &r[n..];
        }
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        rest = &rest[unit_len..];
        let whole: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(unit).ok_or_else(invalid)?;
        let mut scale = unit;
        for d in frac.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += i128::from(d - b'0') * scale;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
    }
    Ok(if neg { -total } else { total })
}

/// Formats a duration so that [`parse_go_duration`] reads it back exactly.
pub(crate) fn format_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = n;
    for (unit, name) in [
        (3_600_000_000_000u128, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// An exposed port, as the image config's `ExposedPorts` keys it (`80/tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExposedPort {
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for ExposedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        write!(f, "{}/{p}", self.port)
    }
}

/// Parses expanded EXPOSE words (`80`, `80/udp`, `8000-8010/tcp`), ranges expanded.
pub fn parse_ports<S: AsRef<str>>(words: &[S]) -> Result<Vec<ExposedPort>, String> {
    let mut out = Vec::new();
    for w in words {
        let w = w.as_ref();
        let (port, proto) = match w.split_once('/') {
            Some((p, "")) => (p, "tcp"),
            Some((p, proto)) => (p, proto),
            None => (w, "tcp"),
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return Err(format!("invalid proto: {proto}")),
        };
        let num = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid containerPort: {port}"))
        };
        let (lo, hi) = match port.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let p = num(port)?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(format!("invalid range specified for containerPort: {port}"));
        }
        out.extend((lo..=hi).map(|port| ExposedPort { port, protocol }));
    }
    Ok(out)
}

/// Checks an expanded `--chmod` the way BuildKit does: an octal number up to `07777`.
pub fn parse_chmod(s: &str) -> Result<u32, String> {
    let ok = !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(s, 8) {
        Ok(m) if ok && m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777"
        )),
    }
}

const SIGNALS: &[(&str, i32)] = &[
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
];

/// Checks an expanded STOPSIGNAL the way Docker does (a non-zero number, or a Linux signal
/// name with or without `SIG`, `RTMIN+n`/`RTMAX-n` included) and returns its number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let invalid = || format!("Invalid signal: {s}");
    if let Ok(n) = s.parse::<i32>() {
        return if n == 0 { Err(invalid()) } else { Ok(n) };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    let offset = |o: &str, max: i32| o.parse::<i32>().ok().filter(|k| (1..=max).contains(k));
    let n = match name {
        "RTMIN" => Some(34),
        "RTMAX" => Some(64),
        _ => name
            .strip_prefix("RTMIN+")
            .and_then(|o| offset(o, 15))
            .map(|k| 34 + k)
            .or_else(|| {
                name.strip_prefix("RTMAX-")
                    .and_then(|o| offset(o, 14))
                    .map(|k| 64 - k)
            }),
    };
    n.ok_or_else(invalid)
}

/// An image reference split into repository, tag and digest (`name[:tag][@algo:hex]`).
///
/// Only the syntax is checked (lower-case path components, tag and digest formats); default
/// registries and `library/` are the registry client's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (if any) and path, as written.
    pub name: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>` (or another `algo:hex`).
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid image reference {s:?}: {why}");
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let (algo, hex) = d
                    .split_once(':')
                    .ok_or_else(|| bad("digest needs algorithm:hex"))?;
                let ok_algo = !algo.is_empty()
                    && algo.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c)
                    });
                let want = match algo {
                    "sha256" => Some(64),
                    "sha512" => Some(128),
                    _ => None,
                };
                let ok_hex = hex.len() >= 32
                    && hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                    && want.is_none_or(|n| hex.len() == n);
                if !ok_algo || !ok_hex {
                    return Err(bad("malformed digest"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = t.len() <= 128
                && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad("malformed tag"));
            }
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let domain = (parts.len() > 1
            && (parts[0].contains(['.', ':'])
                || parts[0] == "localhost"
                || parts[0].chars().any(|c| c.is_ascii_uppercase())))
        .then(|| parts.remove(0));
        if let Some(d) = domain {
            let ok = d
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
            if !ok {
                return Err(bad("malformed registry host"));
            }
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        };
        if parts.is_empty() || !parts.iter().all(|c| component_ok(c)) {
            return Err(bad(
                "repository names must be lower-case letters, digits and separators",
            ));
        }
        Ok(Self {
            name: name.to_string(),
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_go_duration("2us"), Ok(2_000));
        assert_eq!(parse_go_duration("2\u{b5}s"), Ok(2_000));
        assert_eq!(parse_go_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
        for bad in ["", "5", "s", "5x", "1.s.", "99999999999h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_format_round_trip() {
        for n in [
            1u64,
            999,
            1_000,
            1_500_000,
            90_000_000_000,
            3_600_000_000_001,
        ] {
            let d = Duration::from_nanos(n);
            let s = format_duration(d);
            assert_eq!(parse_go_duration(&s), Ok(i128::from(n)), "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn ports_like_docker() {
        let p = parse_ports(&["80", "53/UDP", "8000-8002/tcp", "9/sctp"]).unwrap();
        let s: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp", "9/sctp"]
        );
        assert!(parse_ports(&["80/icmp"]).is_err());
        assert!(parse_ports(&["http"]).is_err());
        assert!(parse_ports(&["90-80"]).is_err());
        assert!(parse_ports(&["70000"]).is_err());
    }

    #[test]
    fn chmod_like_buildkit() {
        assert_eq!(parse_chmod("755"), Ok(0o755));
        assert_eq!(parse_chmod("04755"), Ok(0o4755));
        assert_eq!(parse_chmod("0"), Ok(0));
        for bad in ["", "8", "u+x", "+755", "17777", "0o755"] {
            assert!(parse_chmod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_like_docker() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("kill"), Ok(9));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(parse_signal("RTMAX"), Ok(64));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("RTMIN+40").is_err());
    }

    #[test]
    fn image_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("registry.example.com:5000/team/app:1.2@{d}")).unwrap();
        assert_eq!(r.name, "registry.example.com:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = ImageRef::parse(&format!("alpine@{d}")).unwrap();
        assert_eq!((r.name.as_str(), r.tag), ("alpine", None));
        let r = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!((r.name.as_str(), r.tag), ("localhost:5000/x", None));
        for bad in [
            "Alpine",
            "alpine:",
            "alpine@sha256:abc",
            "alpine:bad tag",
            "a//b",
            "-a",
            "",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
