//! Shared by the upstream-table tests: where the vendored data is, and the rule that every
//! case either passes or is listed, with a reason, in the suite's `differences.json`.
//!
//! The rule cuts both ways: a case that fails without being listed fails the test, and so does
//! a listed case that now passes (its entry must go), so the list is always the exact set of
//! remaining differences.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub fn read(rel: &str) -> String {
    let p = data(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The cases of a vendored JSON table.
pub fn cases(rel: &str) -> Vec<Value> {
    json(rel)["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{rel}: no cases"))
        .clone()
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every suite the tests run, by differences file: a list may only name these (a typo in a
/// suite name would otherwise leave its entries unchecked).
pub const SUITES: &[(&str, &[&str])] = &[
    (
        "buildkit/differences.json",
        &[
            "envVarTest",
            "wordsTest",
            "lex_test.go",
            "parser/testfiles",
            "parser/testfiles-negative",
            "parser/heredoc.json",
            "parser/parser.json",
            "instructions",
        ],
    ),
    (
        "patternmatcher/differences.json",
        &["patternmatcher_test.go", "ignorefile_test.go"],
    ),
];

/// Checks that the differences files name only known suites.
pub fn lists_name_known_suites() {
    for (list, suites) in SUITES {
        let all = json(list);
        for key in all.as_object().expect("an object").keys() {
            assert!(
                key.starts_with('_') || suites.contains(&key.as_str()),
                "{list}: {key} is no suite of this list (known: {suites:?})"
            );
        }
    }
}

/// Outcomes of one suite, checked against the listed differences.
pub struct Suite {
    name: String,
    /// `differences.json` file (relative to tests/data) holding this suite's list.
    list: &'static str,
    outcomes: Vec<(String, Result<(), String>)>,
}

impl Suite {
    pub fn new(list: &'static str, name: &str) -> Self {
        assert!(
            SUITES.iter().any(|(l, s)| *l == list && s.contains(&name)),
            "{name} is not among the SUITES of {list}"
        );
        Self {
            name: name.into(),
            list,
            outcomes: Vec::new(),
        }
    }

    pub fn record(&mut self, id: impl Into<String>, outcome: Result<(), String>) {
        let id = id.into();
        assert!(
            !self.outcomes.iter().any(|(i, _)| *i == id),
            "{}: duplicate case id {id}",
            self.name
        );
        self.outcomes.push((id, outcome));
    }

    /// Panics unless the failing cases are exactly the listed ones.
    pub fn finish(self) {
        let all = json(self.list);
        let listed: BTreeMap<String, String> = all[&self.name]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, why) in &listed {
            assert!(
                !why.trim().is_empty(),
                "{}: {id} is listed without a reason",
                self.list
            );
            assert!(
                self.outcomes.iter().any(|(i, _)| i == id),
                "{}: {id} is listed under {} but no such case exists",
                self.list,
                self.name
            );
        }
        let mut unexpected = Vec::new();
        let mut fixed = Vec::new();
        let mut passed = 0;
        for (id, outcome) in &self.outcomes {
            match (outcome, listed.contains_key(id)) {
                (Ok(()), false) => passed += 1,
                (Ok(()), true) => fixed.push(id.clone()),
                (Err(e), false) => unexpected.push(format!("{id}: {e}")),
                (Err(_), true) => {}
            }
        }
        println!(
            "{}: {} cases, {passed} pass, {} listed differences",
            self.name,
            self.outcomes.len(),
            listed.len()
        );
        let mut report = String::new();
        if !unexpected.is_empty() {
            report += &format!(
                "{} case(s) differ from upstream and are not listed in {}:\n  {}\n",
                unexpected.len(),
                self.list,
                unexpected.join("\n  ")
            );
        }
        if !fixed.is_empty() {
            report += &format!(
                "listed in {} but passing now (remove the entries):\n  {}\n",
                self.list,
                fixed.join("\n  ")
            );
        }
        assert!(report.is_empty(), "{}: {report}", self.name);
    }
}

/// `expected` == `actual`, else an error showing both.
pub fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: T,
    actual: T,
) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {actual:?}"))
    }
}
