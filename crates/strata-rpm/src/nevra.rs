//! Reading package requests such as `bash-5.2.15-2.x86_64`, the way dnf does.
//!
//! A request string is ambiguous: `python3.11` may be the package named so, or `python3`
//! of arch `11`; `foo-1.0` may be a name or `foo` at version `1.0`. dnf resolves that by
//! trying the plausible readings ("nevra forms", libdnf's `HY_FORM_*`) against what the
//! repositories actually hold. [`nevra_forms`] lists the readings; the caller keeps the
//! first one whose name (and arch, version...) exists.

use crate::evr::EvrRef;

/// Which parts a reading of a request has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NevraForm {
    /// `name-[epoch:]version-release.arch`
    Nevra,
    /// `name-[epoch:]version-release`
    Nevr,
    /// `name-[epoch:]version`
    Nev,
    /// `name.arch`
    Na,
    /// `name`
    Name,
}

/// One reading of a request. `evr.release` is `None` for [`NevraForm::Nev`]; `evr` is
/// `None` for the forms without a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NevraSplit<'a> {
    pub form: NevraForm,
    pub name: &'a str,
    pub evr: Option<EvrRef<'a>>,
    pub arch: Option<&'a str>,
}

/// dnf's order of trying forms (`hawkey.FORMS_MOST_SPEC`): a full NEVRA first, then
/// `name.arch`, then a plain name, and only then the partial version forms, so that a
/// package literally named `foo-1.0` wins over `foo` at version `1.0`.
pub const FORM_ORDER: [NevraForm; 5] = [
    NevraForm::Nevra,
    NevraForm::Na,
    NevraForm::Name,
    NevraForm::Nevr,
    NevraForm::Nev,
];

/// Every well-formed reading of `request`, in [`FORM_ORDER`].
///
/// Parts follow libdnf's patterns: a name has no `:`, `(`, `/`, `=`, `<`, `>` or white
/// space; version and release additionally no `-`; an arch additionally no `.`; an epoch is
/// digits followed by `:`. So the release is after the last `-`, the version after the one
/// before it, and the arch after the last `.`.
pub fn nevra_forms(request: &str) -> Vec<NevraSplit<'_>> {
    FORM_ORDER
        .iter()
        .filter_map(|form| split_as(request, *form))
        .collect()
}

/// `request` read as `form`, when it can be.
pub fn split_as(request: &str, form: NevraForm) -> Option<NevraSplit<'_>> {
    let (rest, arch) = match form {
        NevraForm::Nevra | NevraForm::Na => {
            let (rest, arch) = request.rsplit_once('.')?;
            (rest, Some(arch).filter(|a| valid_arch(a))?.into())
        }
        _ => (request, None),
    };
    let (name, evr) = match form {
        NevraForm::Name | NevraForm::Na => (rest, None),
        NevraForm::Nev => {
            let (name, ev) = rest.rsplit_once('-')?;
            let (epoch, version) = epoch_version(ev)?;
            (
                name,
                Some(EvrRef {
                    epoch,
                    version,
                    release: None,
                }),
            )
        }
        NevraForm::Nevra | NevraForm::Nevr => {
            let (nev, release) = rest.rsplit_once('-')?;
            let (name, ev) = nev.rsplit_once('-')?;
            let (epoch, version) = epoch_version(ev)?;
            if !valid_version(release) {
                return None;
            }
            (
                name,
                Some(EvrRef {
                    epoch,
                    version,
                    release: Some(release),
                }),
            )
        }
    };
    valid_name(name).then_some(NevraSplit {
        form,
        name,
        evr,
        arch,
    })
}

impl NevraSplit<'_> {
    /// Whether a package matches this reading. Parts the request leaves out match
    /// anything (`foo-1.0` matches every epoch and release of version 1.0); a given epoch
    /// must equal the package's (a missing one counting as 0). Strings compare exactly:
    /// `foo-1.00` does not match version `1.0`, as in dnf, which matches text, not order.
    pub fn matches(&self, name: &str, evr: EvrRef<'_>, arch: &str) -> bool {
        if self.name != name || self.arch.is_some_and(|a| a != arch) {
            return false;
        }
        let Some(want) = self.evr else { return true };
        want.version == evr.version
            && want.epoch.is_none_or(|e| e == evr.epoch.unwrap_or(0))
            && want.release.is_none_or(|r| Some(r) == evr.release)
    }
}

/// `[digits:]version` as libdnf splits it.
fn epoch_version(s: &str) -> Option<(Option<u32>, &str)> {
    let (epoch, version) = match s.split_once(':') {
        Some((e, v)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(e.parse().ok()?), v)
        }
        Some(_) => return None,
        None => (None, s),
    };
    valid_version(version).then_some((epoch, version))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .contains(|c: char| matches!(c, ':' | '(' | '/' | '=' | '<' | '>') || c.is_whitespace())
}

fn valid_version(s: &str) -> bool {
    valid_name(s) && !s.contains('-')
}

fn valid_arch(s: &str) -> bool {
    valid_version(s) && !s.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings as `FORM name e:v-r arch` strings, for compact assertions.
    fn show(request: &str) -> Vec<String> {
        nevra_forms(request)
            .iter()
            .map(|s| {
                let evr = s.evr.map(|e| {
                    format!(
                        " {}{}{}",
                        e.epoch.map(|e| format!("{e}:")).unwrap_or_default(),
                        e.version,
                        e.release.map(|r| format!("-{r}")).unwrap_or_default()
                    )
                });
                format!(
                    "{:?} {}{}{}",
                    s.form,
                    s.name,
                    evr.unwrap_or_default(),
                    s.arch.map(|a| format!(" .{a}")).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn full_nevra() {
        assert_eq!(
            show("bash-5.2.15-2+b7.x86_64"),
            [
                "Nevra bash 5.2.15-2+b7 .x86_64",
                "Na bash-5.2.15-2+b7 .x86_64",
                "Name bash-5.2.15-2+b7.x86_64",
                "Nevr bash 5.2.15-2+b7.x86_64",
                "Nev bash-5.2.15 2+b7.x86_64",
            ]
        );
    }

    #[test]
    fn epochs_and_names_with_dashes() {
        let forms = nevra_forms("perl-Foo-Bar-1:2.0-3.el9.noarch");
        assert_eq!(forms[0].form, NevraForm::Nevra);
        assert_eq!(forms[0].name, "perl-Foo-Bar");
        assert_eq!(
            forms[0].evr,
            Some(EvrRef {
                epoch: Some(1),
                version: "2.0",
                release: Some("3.el9")
            })
        );
        assert_eq!(forms[0].arch, Some("noarch"));
        // The epoch is only ever in front of the version; a name holds no `:`.
        assert!(nevra_forms("1:foo-2.0-1").is_empty());
        assert_eq!(show("foo-x:1"), Vec::<String>::new());
    }

    #[test]
    fn short_requests() {
        assert_eq!(show("python3.11"), ["Na python3 .11", "Name python3.11"]);
        assert_eq!(show("vim"), ["Name vim"]);
        assert_eq!(
            show("foo-1.0"),
            ["Na foo-1 .0", "Name foo-1.0", "Nev foo 1.0"]
        );
        assert_eq!(
            show("foo-1.0-1"),
            ["Name foo-1.0-1", "Nevr foo 1.0-1", "Nev foo-1.0 1"]
        );
    }

    #[test]
    fn malformed_requests_have_no_reading() {
        assert!(nevra_forms("").is_empty());
        assert!(nevra_forms("foo >= 1").is_empty());
        assert!(nevra_forms("/usr/bin/bash").is_empty());
        assert!(nevra_forms("libc.so.6()(64bit)").is_empty());
        assert_eq!(show("foo."), ["Name foo."]);
        assert_eq!(show("-1.0"), ["Na -1 .0", "Name -1.0"]);
        assert!(split_as("foo-99999999999:1.0-1", NevraForm::Nevr).is_none());
    }

    #[test]
    fn matching_packages() {
        let req = split_as("bash-5.2.15-2.x86_64", NevraForm::Nevra).unwrap();
        let evr = EvrRef::parse("5.2.15-2");
        assert!(req.matches("bash", evr, "x86_64"));
        assert!(req.matches("bash", EvrRef::parse("0:5.2.15-2"), "x86_64"));
        // No epoch in the request: any epoch matches, as in libdnf.
        assert!(req.matches("bash", EvrRef::parse("1:5.2.15-2"), "x86_64"));
        let with_epoch = split_as("bash-1:5.2.15-2.x86_64", NevraForm::Nevra).unwrap();
        assert!(with_epoch.matches("bash", EvrRef::parse("1:5.2.15-2"), "x86_64"));
        assert!(!with_epoch.matches("bash", evr, "x86_64"));
        assert!(!req.matches("bash", evr, "aarch64"));
        assert!(!req.matches("bash", EvrRef::parse("5.2.15-3"), "x86_64"));
        assert!(!req.matches("dash", evr, "x86_64"));
        let nev = split_as("bash-5.2.15", NevraForm::Nev).unwrap();
        assert!(nev.matches("bash", EvrRef::parse("3:5.2.15-9"), "i686"));
        assert!(!nev.matches("bash", EvrRef::parse("5.2.150-9"), "i686"));
        let e0 = split_as("bash-0:5.2.15", NevraForm::Nev).unwrap();
        assert!(e0.matches("bash", EvrRef::parse("5.2.15-1"), "x86_64"));
        assert!(!e0.matches("bash", EvrRef::parse("2:5.2.15-1"), "x86_64"));
        let na = split_as("bash.x86_64", NevraForm::Na).unwrap();
        assert!(na.matches("bash", evr, "x86_64") && !na.matches("bash", evr, "noarch"));
    }
}
