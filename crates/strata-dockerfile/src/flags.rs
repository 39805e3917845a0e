//! Instruction flags (`--from=`, `--link`, `--mount=`...) with BuildKit's rules: `--name=value`
//! for strings, `--name` or `--name=true|false` for booleans, repeatable flags collect every
//! value, anything else is an error that names the flag and the instruction.

use crate::error::ErrorKind;
use crate::suggest::nearest;
use crate::words::Piece;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    /// May be given several times (`--mount`, `--exclude`).
    Many,
}

pub(crate) type Spec = &'static [(&'static str, Kind)];

pub(crate) const FROM: Spec = &[("platform", Kind::Str)];
pub(crate) const RUN: Spec = &[
    ("mount", Kind::Many),
    ("network", Kind::Str),
    ("security", Kind::Str),
];
pub(crate) const COPY: Spec = &[
    ("from", Kind::Str),
    ("chown", Kind::Str),
    ("chmod", Kind::Str),
    ("link", Kind::Bool),
    ("parents", Kind::Bool),
    ("exclude", Kind::Many),
];
pub(crate) const ADD: Spec = &[
    ("chown", Kind::Str),
    ("chmod", Kind::Str),
    ("link", Kind::Bool),
    ("keep-git-dir", Kind::Bool),
    ("checksum", Kind::Str),
    ("unpack", Kind::Bool),
    ("exclude", Kind::Many),
];
pub(crate) const HEALTHCHECK: Spec = &[
    ("interval", Kind::Str),
    ("timeout", Kind::Str),
    ("start-period", Kind::Str),
    ("start-interval", Kind::Str),
    ("retries", Kind::Str),
];
pub(crate) const NONE: Spec = &[];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Bool(bool),
    Str(String),
    Many(Vec<String>),
}

/// Parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(&'static str, Value)>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub(crate) fn str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn many(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Value::Many(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// Validates raw flags (as [`crate::words::extract_flags`] returns them, without the `--`)
/// against `spec`. On error, returns the offending flag's offset with the error.
pub(crate) fn parse(
    raw: &[Piece],
    spec: Spec,
    instruction: &'static str,
) -> Result<Flags, (usize, ErrorKind)> {
    let mut flags = Flags::default();
    for p in raw {
        let body = &p.text[2.min(p.text.len())..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(known, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&'static str> = spec.iter().map(|(n, _)| *n).collect();
            return Err((
                p.at,
                ErrorKind::UnknownFlag {
                    flag: name.to_string(),
                    instruction,
                    suggestion: nearest(name, &names),
                },
            ));
        };
        let seen = flags.values.iter().position(|(n, _)| *n == known);
        let needs_value = || ErrorKind::FlagNeedsValue {
            flag: name.to_string(),
            instruction,
        };
        match kind {
            Kind::Many => {
                let v = value.ok_or_else(|| (p.at, needs_value()))?.to_string();
                match seen {
                    Some(i) => {
                        if let Value::Many(list) = &mut flags.values[i].1 {
                            list.push(v);
                        }
                    }
                    None => flags.values.push((known, Value::Many(vec![v]))),
                }
                continue;
            }
            _ if seen.is_some() => {
                return Err((
                    p.at,
                    ErrorKind::DuplicateFlag {
                        flag: name.to_string(),
                        instruction,
                    },
                ))
            }
            Kind::Str => {
                let v = value.ok_or_else(|| (p.at, needs_value()))?;
                flags.values.push((known, Value::Str(v.to_string())));
            }
            Kind::Bool => {
                let b = match value.map(str::to_ascii_lowercase).as_deref() {
                    None => true,
                    Some("") => return Err((p.at, needs_value())),
                    Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err((
                            p.at,
                            ErrorKind::FlagNotBoolean {
                                flag: name.to_string(),
                                instruction,
                                value: value.unwrap_or_default().to_string(),
                            },
                        ))
                    }
                };
                flags.values.push((known, Value::Bool(b)));
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(list: &[&str]) -> Vec<Piece> {
        list.iter()
            .enumerate()
            .map(|(i, s)| Piece {
                text: format!("--{s}"),
                at: i * 10,
            })
            .collect()
    }

    #[test]
    fn known_flags_parse_by_kind() {
        let f = parse(
            &raw(&[
                "from=build",
                "link",
                "exclude=a",
                "exclude=b",
                "parents=FALSE",
            ]),
            COPY,
            "COPY",
        )
        .unwrap();
        assert_eq!(f.str("from").as_deref(), Some("build"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.bool("parents"), Some(false));
        assert_eq!(f.many("exclude"), ["a", "b"]);
        assert_eq!(f.str("chown"), None);
    }

    #[test]
    fn unknown_flag_names_flag_instruction_and_suggests() {
        let (at, e) = parse(&raw(&["link", "form=x"]), COPY, "COPY").unwrap_err();
        assert_eq!(at, 10);
        assert_eq!(
            e,
            ErrorKind::UnknownFlag {
                flag: "form".into(),
                instruction: "COPY",
                suggestion: Some("from")
            }
        );
        assert_eq!(
            e.to_string(),
            "unknown flag: --form for COPY (did you mean --from?)"
        );
        let (_, e) = parse(&raw(&["from=x"]), NONE, "ENV").unwrap_err();
        assert_eq!(e.to_string(), "unknown flag: --from for ENV");
    }

    #[test]
    fn value_rules() {
        let err = |r: &[&str], spec| parse(&raw(r), spec, "X").unwrap_err().1;
        assert!(matches!(
            err(&["from"], COPY),
            ErrorKind::FlagNeedsValue { .. }
        ));
        assert!(matches!(
            err(&["link="], COPY),
            ErrorKind::FlagNeedsValue { .. }
        ));
        assert!(matches!(
            err(&["link=yes"], COPY),
            ErrorKind::FlagNotBoolean { .. }
        ));
        assert!(matches!(
            err(&["from=a", "from=b"], COPY),
            ErrorKind::DuplicateFlag { .. }
        ));
        assert!(matches!(
            err(&["mount"], RUN),
            ErrorKind::FlagNeedsValue { .. }
        ));
        // An empty string value is a value.
        assert_eq!(
            parse(&raw(&["chown="]), COPY, "X")
                .unwrap()
                .str("chown")
                .as_deref(),
            Some("")
        );
    }
}
