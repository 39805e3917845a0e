//! Epoch:Version-Release values and their ordering, exactly as rpm orders them.

use std::cmp::Ordering;
use std::fmt;

/// A borrowed EVR, as read from repo metadata or an index without allocating.
///
/// `epoch: None` means the epoch was not given (it orders as 0). `release: None` means
/// no release was given: in a *requirement* that is a wildcard (rpm: `foo = 1.0` is
/// satisfied by `foo-1.0-3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EvrRef<'a> {
    pub epoch: Option<u32>,
    pub version: &'a str,
    pub release: Option<&'a str>,
}

/// An owned EVR.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Evr {
    pub epoch: Option<u32>,
    pub version: String,
    pub release: Option<String>,
}

impl<'a> EvrRef<'a> {
    /// Parses `[EPOCH:]VERSION[-RELEASE]` the way rpm's `parseEVR` does: the epoch is the
    /// leading digits when a `:` follows them, the release is whatever follows the *last*
    /// `-`. An empty epoch (`:1.0`) is 0, as in rpm; one too large for `u32` saturates,
    /// which keeps rpm's order (it compares epochs as digit strings) against any real one.
    pub fn parse(s: &'a str) -> EvrRef<'a> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match s.as_bytes().get(digits) {
            Some(b':') => {
                let epoch = if digits == 0 {
                    0
                } else {
                    s[..digits].parse::<u32>().unwrap_or(u32::MAX)
                };
                (Some(epoch), &s[digits + 1..])
            }
            _ => (None, s),
        };
        let (version, release) = match rest.rfind('-') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        EvrRef {
            epoch,
            version,
            release,
        }
    }

    pub fn to_owned(&self) -> Evr {
        Evr {
            epoch: self.epoch,
            version: self.version.to_string(),
            release: self.release.map(str::to_string),
        }
    }

    /// The total order of package versions: epoch (missing = 0), then version, then
    /// release (missing = empty), each by [`rpmvercmp`].
    pub fn cmp_evr(&self, other: &EvrRef<'_>) -> Ordering {
        self.epoch
            .unwrap_or(0)
            .cmp(&other.epoch.unwrap_or(0))
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(|| rpmvercmp(self.release.unwrap_or(""), other.release.unwrap_or("")))
    }
}

impl Evr {
    pub fn parse(s: &str) -> Evr {
        EvrRef::parse(s).to_owned()
    }

    pub fn as_ref(&self) -> EvrRef<'_> {
        EvrRef {
            epoch: self.epoch,
            version: &self.version,
            release: self.release.as_deref(),
        }
    }
}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Evr {
    /// rpm's order, made total by falling back to the text so that `Eq` and `Ord` agree
    /// (`1.0` and `1.00` are equal to rpm but are different values).
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp_evr(&other.as_ref()).then_with(|| {
            (self.epoch, &self.version, &self.release).cmp(&(
                other.epoch,
                &other.version,
                &other.release,
            ))
        })
    }
}

/// `E:V-R`, the epoch shown only when non-zero, the release only when present.
impl fmt::Display for EvrRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = self.epoch.filter(|e| *e > 0) {
            write!(f, "{e}:")?;
        }
        f.write_str(self.version)?;
        if let Some(r) = self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

/// rpm's `rpmvercmp` (rpmio/rpmvercmp.c, rpm 4.18): compares two version (or release)
/// strings segment by segment. Segments are maximal runs of ASCII digits or ASCII letters;
/// everything else separates them, except `~` (sorts before anything, even the end of the
/// string) and `^` (sorts after the end of the string but before any further segment).
/// A numeric segment is newer than an alphabetic one; numbers compare without leading
/// zeros; letters compare bytewise.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let is_sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && is_sep(a[i]) {
            i += 1;
        }
        while j < b.len() && is_sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };

        let numeric = first.is_ascii_digit();
        let in_segment = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let end_a = i + a[i..].iter().take_while(|c| in_segment(c)).count();
        let end_b = j + b[j..].iter().take_while(|c| in_segment(c)).count();
        if end_b == j {
            // Segments of different kinds: numeric is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut sa, mut sb) = (&a[i..end_a], &b[j..end_b]);
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                longer => return longer,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
        i = end_a;
        j = end_b;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vector of rpm's own test suite (tests/rpmvercmp.at, rpm 4.18).
    const RPM_VECTORS: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("a_", "a+", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("_a", "+a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("_+", "_+", 0),
        ("+", "_", 0),
        ("_", "+", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git2", "1.0^git1", 1),
        ("1.0^git1", "1.01", -1),
        ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0^20160101^git1", "1.0^20160102", -1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
        // The "(can't) vercmp" cases from rpm's suite.
        ("1b.fc17", "1b.fc17", 0),
        ("1b.fc17", "1.fc17", -1),
        ("1.fc17", "1b.fc17", 1),
        ("1g.fc17", "1g.fc17", 0),
        ("1g.fc17", "1.fc17", 1),
        ("1.fc17", "1g.fc17", -1),
        // The non-ASCII cases: such characters are separators, so these are all equal.
        ("1.1.α", "1.1.α", 0),
        ("1.1.α", "1.1.β", 0),
        ("1.1.β", "1.1.α", 0),
        ("1.1.αα", "1.1.α", 0),
        ("1.1.α", "1.1.ββ", 0),
        ("1.1.ββ", "1.1.αα", 0),
    ];

    #[test]
    fn rpm_test_suite_vectors() {
        for (a, b, want) in RPM_VECTORS {
            let got = match rpmvercmp(a, b) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            assert_eq!(got, *want, "rpmvercmp({a:?}, {b:?})");
        }
    }

    #[test]
    fn corpus_versions() {
        // Debian versions as the corpus maps them: tilde pre-releases and +debNuM.
        assert_eq!(rpmvercmp("3.0.22", "3.0.20"), Ordering::Greater);
        assert_eq!(rpmvercmp("1~deb12u2", "1~deb12u1"), Ordering::Greater);
        assert_eq!(rpmvercmp("2+b13.1", "2+b13"), Ordering::Greater);
        assert_eq!(rpmvercmp("5.36.0~", "5.36.0"), Ordering::Less);
        assert_eq!(rpmvercmp("0", ""), Ordering::Greater);
    }

    #[test]
    fn parse_forms() {
        let e = EvrRef::parse("3:20221126-1+deb12u1");
        assert_eq!(
            e,
            EvrRef {
                epoch: Some(3),
                version: "20221126",
                release: Some("1+deb12u1")
            }
        );
        let e = EvrRef::parse("1.0");
        assert_eq!(
            e,
            EvrRef {
                epoch: None,
                version: "1.0",
                release: None
            }
        );
        // The release follows the *last* dash.
        let e = EvrRef::parse("2022-09-12-1");
        assert_eq!((e.version, e.release), ("2022-09-12", Some("1")));
        assert_eq!(EvrRef::parse(":1.0").epoch, Some(0));
        assert_eq!(
            EvrRef::parse("99999999999:1"),
            EvrRef {
                epoch: Some(u32::MAX),
                version: "1",
                release: None
            }
        );
        assert_eq!(
            EvrRef::parse("1.0-"),
            EvrRef {
                epoch: None,
                version: "1.0",
                release: Some("")
            }
        );
        assert_eq!(EvrRef::parse(""), EvrRef::default());
        assert_eq!(
            Evr::parse("2:1.0-1").as_ref().to_owned(),
            Evr::parse("2:1.0-1")
        );
        assert_eq!(EvrRef::parse("1:2.0-3").to_string(), "1:2.0-3");
        assert_eq!(EvrRef::parse("0:2.0-3").to_string(), "2.0-3");
    }

    #[test]
    fn package_order() {
        let p = EvrRef::parse;
        assert_eq!(p("1:1.0-1").cmp_evr(&p("2.0-1")), Ordering::Greater);
        assert_eq!(p("0:1.0-1").cmp_evr(&p("1.0-1")), Ordering::Equal);
        assert_eq!(p("1.0-2").cmp_evr(&p("1.0-10")), Ordering::Less);
        let mut v = [
            Evr::parse("1.0-1"),
            Evr::parse("1:0.1-1"),
            Evr::parse("1.0~rc1-1"),
        ];
        v.sort();
        let shown: Vec<String> = v.iter().map(|e| e.to_string()).collect();
        assert_eq!(shown, ["1.0~rc1-1", "1.0-1", "1:0.1-1"]);
    }

    /// Cross-checks random pairs against the installed rpm, when there is one.
    #[test]
    fn agrees_with_installed_rpm() {
        let Ok(out) = std::process::Command::new("rpm").arg("--version").output() else {
            assert!(std::env::var_os("CI").is_none(), "rpm is required in CI (apt-get install -y rpm)");
            eprintln!("rpm not installed: skipping the cross-check (vector test still ran)");
            return;
        };
        assert!(out.status.success());
        let parts = [
            "0", "1", "01", "10", "a", "b", "Z", "rc", "~", "^", ".", "_", "+", "~rc", "^git", "2",
            "00", "α",
        ];
        // A fixed pseudo-random sequence keeps the test reproducible.
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut make = || -> String {
            let n = 1 + (next() % 4) as usize;
            (0..n)
                .map(|_| parts[(next() % parts.len() as u64) as usize])
                .collect()
        };
        let pairs: Vec<(String, String)> = (0..500).map(|_| (make(), make())).collect();
        let lua: String = pairs
            .iter()
            .map(|(a, b)| format!("print(rpm.vercmp('{a}','{b}') .. ' ')"))
            .collect::<Vec<_>>()
            .join(" ");
        let out = std::process::Command::new("rpm")
            .arg("--eval")
            .arg(format!("%{{lua: {lua}}}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let results: Vec<i32> = text
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(results.len(), pairs.len(), "rpm printed: {text}");
        for ((a, b), want) in pairs.iter().zip(results) {
            let got = rpmvercmp(a, b) as i32;
            assert_eq!(got, want.signum(), "rpmvercmp({a:?}, {b:?})");
        }
    }
}
