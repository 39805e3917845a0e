//! Simple (non-rich) dependencies and rpm's range-overlap rule.

use crate::evr::{rpmvercmp, Evr, EvrRef};
use std::cmp::Ordering;
use std::fmt;

/// A comparison operator of a versioned dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    /// The `flags` attribute of repodata (`LT`, `LE`, `EQ`, `GE`, `GT`).
    pub fn from_primary_flags(flags: &str) -> Option<Op> {
        Some(match flags {
            "LT" => Op::Lt,
            "LE" => Op::Le,
            "EQ" => Op::Eq,
            "GE" => Op::Ge,
            "GT" => Op::Gt,
            _ => return None,
        })
    }

    /// The operator as written in spec files and on command lines (`==` accepted too).
    pub fn from_symbol(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" | "=<" => Op::Le,
            "=" | "==" => Op::Eq,
            ">=" | "=>" => Op::Ge,
            ">" => Op::Gt,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    pub fn primary_flags(self) -> &'static str {
        match self {
            Op::Lt => "LT",
            Op::Le => "LE",
            Op::Eq => "EQ",
            Op::Ge => "GE",
            Op::Gt => "GT",
        }
    }

    /// rpm's RPMSENSE_{LESS,EQUAL,GREATER} bits.
    fn sense(self) -> (bool, bool, bool) {
        match self {
            Op::Lt => (true, false, false),
            Op::Le => (true, true, false),
            Op::Eq => (false, true, false),
            Op::Ge => (false, true, true),
            Op::Gt => (false, false, true),
        }
    }
}

/// Whether two versioned ranges overlap, exactly as rpm's `rpmdsCompare` /
/// `rpmverOverlap` (rpm 4.18) decide it:
/// - an unversioned side (or an empty EVR) overlaps everything;
/// - epochs compare first, a missing epoch counting as 0;
/// - releases compare only when *both* sides have one. When exactly one side has a release
///   and the other side's operator includes `=`, the ranges overlap (`foo = 1.0` is
///   satisfied by `foo = 1.0-3`); otherwise the versions are taken as equal and the
///   operators decide (`foo < 1.0` is *not* satisfied by `foo = 1.0-3`).
pub fn range_overlap(a_op: Option<Op>, a: EvrRef<'_>, b_op: Option<Op>, b: EvrRef<'_>) -> bool {
    let (Some(a_op), Some(b_op)) = (a_op, b_op) else {
        return true;
    };
    let empty = |e: &EvrRef<'_>| e.epoch.is_none() && e.version.is_empty() && e.release.is_none();
    if empty(&a) || empty(&b) {
        return true;
    }
    let (a_lt, a_eq, a_gt) = a_op.sense();
    let (b_lt, b_eq, b_gt) = b_op.sense();

    let mut sense = a.epoch.unwrap_or(0).cmp(&b.epoch.unwrap_or(0));
    if sense == Ordering::Equal {
        sense = rpmvercmp(a.version, b.version);
        if sense == Ordering::Equal {
            match (
                a.release.filter(|r| !r.is_empty()),
                b.release.filter(|r| !r.is_empty()),
            ) {
                (Some(ra), Some(rb)) => sense = rpmvercmp(ra, rb),
                (Some(_), None) if b_eq => return true,
                (None, Some(_)) if a_eq => return true,
                _ => {}
            }
        }
    }
    match sense {
        Ordering::Less => a_gt || b_lt,
        Ordering::Greater => a_lt || b_gt,
        Ordering::Equal => (a_eq && b_eq) || (a_lt && b_lt) || (a_gt && b_gt),
    }
}

/// A borrowed simple dependency: `name [op evr]`, as in repo metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DepRef<'a> {
    pub name: &'a str,
    /// `None` for an unversioned dependency (then `evr` is empty and ignored).
    pub op: Option<Op>,
    pub evr: EvrRef<'a>,
    /// `pre="1"` in primary.xml: a `Requires(pre)` (only meaningful on requires).
    pub pre: bool,
}

impl<'a> DepRef<'a> {
    /// Whether `provide` satisfies this requirement: same name and overlapping ranges.
    pub fn matches_provide(&self, provide: &DepRef<'_>) -> bool {
        self.name == provide.name && range_overlap(provide.op, provide.evr, self.op, self.evr)
    }

    pub fn to_owned(&self) -> Dep {
        Dep {
            name: self.name.to_string(),
            op: self.op,
            evr: self.op.map(|_| self.evr.to_owned()),
        }
    }
}

impl fmt::Display for DepRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Some(op) => write!(f, "{} {} {}", self.name, op.symbol(), self.evr),
            None => f.write_str(self.name),
        }
    }
}

/// An owned simple dependency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Dep {
    pub name: String,
    pub op: Option<Op>,
    pub evr: Option<Evr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a dependency: {reason}")]
pub struct DepParseError {
    pub text: String,
    pub reason: String,
}

impl Dep {
    /// `name`, or `name OP [EPOCH:]VERSION[-RELEASE]` separated by white space.
    pub fn parse(text: &str) -> Result<Dep, DepParseError> {
        let err = |reason: &str| DepParseError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            [name] => Ok(Dep {
                name: name.to_string(),
                op: None,
                evr: None,
            }),
            [name, op, evr] => {
                let op = Op::from_symbol(op)
                    .ok_or_else(|| err("the operator must be <, <=, =, >= or >"))?;
                Ok(Dep {
                    name: name.to_string(),
                    op: Some(op),
                    evr: Some(Evr::parse(evr)),
                })
            }
            [] => Err(err("it is empty")),
            _ => Err(err("expected NAME or NAME OP VERSION")),
        }
    }

    pub fn as_ref(&self) -> DepRef<'_> {
        DepRef {
            name: &self.name,
            op: self.op,
            evr: self.evr.as_ref().map(Evr::as_ref).unwrap_or_default(),
            pre: false,
        }
    }
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `provide` satisfies `require`? Both written as `OP EVR` or "" for unversioned.
    fn sat(provide: &str, require: &str) -> bool {
        let split = |s: &'static str| -> (Option<Op>, EvrRef<'static>) {
            match s.split_once(' ') {
                Some((op, evr)) => (Op::from_symbol(op), EvrRef::parse(evr)),
                None => (None, EvrRef::default()),
            }
        };
        let provide: &'static str = Box::leak(provide.to_string().into_boxed_str());
        let require: &'static str = Box::leak(require.to_string().into_boxed_str());
        let (po, pe) = split(provide);
        let (ro, re) = split(require);
        range_overlap(po, pe, ro, re)
    }

    #[test]
    fn unversioned_matches_everything() {
        assert!(sat("", ">= 99"));
        assert!(sat("= 1.0-1", ""));
    }

    #[test]
    fn missing_release_is_a_wildcard() {
        assert!(sat("= 1.0-3", "= 1.0"));
        assert!(sat("= 1.0", "= 1.0-3"));
        assert!(sat("= 1.0-3", "<= 1.0"));
        assert!(sat("= 1.0-3", ">= 1.0"));
        assert!(!sat("= 1.0-3", "< 1.0"));
        assert!(!sat("= 1.0-3", "> 1.0"));
        assert!(!sat("= 1.0-3", "= 1.0-4"));
    }

    #[test]
    fn epochs() {
        assert!(sat("= 0:1.0-1", "= 1.0-1"));
        assert!(sat("= 1.0-1", "= 0:1.0-1"));
        assert!(!sat("= 1:1.0-1", "= 1.0-1"));
        assert!(sat("= 1:0.5-1", ">= 2.0"));
        assert!(!sat("= 2.0", ">= 1:0.1"));
    }

    #[test]
    fn boundaries() {
        assert!(sat("= 2.0-1", ">= 2.0-1"));
        assert!(!sat("= 2.0-1", "> 2.0-1"));
        assert!(sat("= 2.0-1", "<= 2.0-1"));
        assert!(!sat("= 2.0-1", "< 2.0-1"));
        assert!(sat("= 1.9", "< 2.0"));
        // Two open ranges in the same direction always overlap.
        assert!(sat(">= 1.0", ">= 5.0"));
        assert!(sat("< 1.0", "< 0.5"));
        assert!(!sat("< 1.0", "> 2.0"));
        assert!(sat("> 1.0", "< 2.0"));
    }

    #[test]
    fn tilde_pre_releases() {
        // perl-base's `Breaks: perl-modules (<< 5.36.0~)` as the corpus writes it.
        assert!(!sat("= 5.36.0-7+deb12u1", "< 5.36.0~-0"));
        assert!(sat("= 5.34.0-1", "< 5.36.0~-0"));
        assert!(sat("= 5.36.0~rc1-1", "< 5.36.0"));
    }

    #[test]
    fn matches_provide_checks_names() {
        let req = Dep::parse("libc6 >= 2.36").unwrap();
        let prov = Dep::parse("libc6 = 2.36-9+deb12u14").unwrap();
        assert!(req.as_ref().matches_provide(&prov.as_ref()));
        let other = Dep::parse("libc7 = 2.36-9").unwrap();
        assert!(!req.as_ref().matches_provide(&other.as_ref()));
    }

    /// Every pairing of a pool of ranges, checked against rpm's own `rpmdsCompare`
    /// through its Python bindings, when they are installed.
    #[test]
    fn agrees_with_installed_rpm() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Some(python) = ["/usr/bin/python3", "python3"].into_iter().find(|py| {
            Command::new(py)
                .args(["-c", "import rpm"])
                .output()
                .is_ok_and(|o| o.status.success())
        }) else {
            // CI installs dnf, which brings python3-rpm: there the check must run.
            assert!(std::env::var_os("CI").is_none(), "python3-rpm is required in CI (apt-get install -y python3-rpm)");
            eprintln!("python3-rpm not installed: skipping the cross-check");
            return;
        };
        let evrs = [
            "1.0",
            "1.0-1",
            "1.0-2",
            "0:1.0-1",
            "1:1.0",
            "1:0.9-5",
            "2.0~rc1",
            "2.0~rc1-1",
            "2.0",
            "2.0-1",
            "2.0^p1-1",
            "1.0.1",
            "5.36.0~-0",
            "5.36.0-7+deb12u1",
            ":1.0",
            "1.0-",
        ];
        let ops = [
            None,
            Some(Op::Lt),
            Some(Op::Le),
            Some(Op::Eq),
            Some(Op::Ge),
            Some(Op::Gt),
        ];
        let sides: Vec<(Option<Op>, &str)> = ops
            .iter()
            .flat_map(|op| evrs.iter().map(|e| (*op, *e)))
            .collect();
        let flags = |op: Option<Op>| op.map_or("0", |op| op.primary_flags());
        let mut input = String::new();
        for (po, pe) in &sides {
            for (ro, re) in &sides {
                input.push_str(&format!("{} {pe} {} {re}\n", flags(*po), flags(*ro)));
            }
        }
        let script = r#"
import rpm, sys
F = {"0": 0, "LT": rpm.RPMSENSE_LESS, "LE": rpm.RPMSENSE_LESS | rpm.RPMSENSE_EQUAL,
     "EQ": rpm.RPMSENSE_EQUAL, "GE": rpm.RPMSENSE_GREATER | rpm.RPMSENSE_EQUAL,
     "GT": rpm.RPMSENSE_GREATER}
for line in sys.stdin:
    pf, pe, rf, re = line.split()
    p = rpm.ds(("foo", F[pf], pe), rpm.RPMTAG_PROVIDES)
    r = rpm.ds(("foo", F[rf], re), rpm.RPMTAG_REQUIRES)
    print(1 if p.Compare(r) else 0)
"#;
        let mut child = Command::new(python)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answers: Vec<bool> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|w| w == "1")
            .collect();
        assert_eq!(answers.len(), sides.len() * sides.len());
        let mut answers = answers.into_iter();
        for (po, pe) in &sides {
            for (ro, re) in &sides {
                let want = answers.next().unwrap();
                let got = range_overlap(*po, EvrRef::parse(pe), *ro, EvrRef::parse(re));
                assert_eq!(got, want, "provide {po:?} {pe} vs require {ro:?} {re}");
            }
        }
    }

    #[test]
    fn parse_and_display() {
        let d = Dep::parse("bash >= 1:5.2-1").unwrap();
        assert_eq!(d.op, Some(Op::Ge));
        assert_eq!(d.evr.as_ref().unwrap().epoch, Some(1));
        assert_eq!(d.to_string(), "bash >= 1:5.2-1");
        assert_eq!(
            Dep::parse("  /usr/bin/python3 ").unwrap().to_string(),
            "/usr/bin/python3"
        );
        assert!(Dep::parse("bash ~ 5")
            .unwrap_err()
            .to_string()
            .contains("operator"));
        assert!(Dep::parse("bash >=").is_err());
        assert_eq!(Op::from_primary_flags("GE"), Some(Op::Ge));
        assert_eq!(Op::from_primary_flags("XX"), None);
    }
}
