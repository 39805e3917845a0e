//! An ordered variable table: what `$NAME` looks up during expansion.

use std::collections::HashMap;

/// Variables visible to word expansion, in the order they were set.
///
/// Order matters twice: a RUN step's environment is passed to the process in this order, and
/// it is part of the step's cache key, so two builds that set the same variables must produce
/// the same sequence. Setting an existing name moves it to the end, as BuildKit's LLB env list
/// does, so the table always reads as "the last assignment wins".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
    /// Names and values together, kept up to date so scopes can enforce
    /// [`crate::limits::MAX_VARIABLES_BYTES`] cheaply.
    bytes: usize,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a table from `NAME=value` strings, as an image config's `Env` holds them; an
    /// entry without `=` is a variable set to the empty string, as Docker reads it.
    pub fn from_env_strings<I, S>(env: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut vars = Self::new();
        for entry in env {
            let entry = entry.as_ref();
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            vars.set(k, v);
        }
        vars
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.entries[i].1.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove(&name);
        let value = value.into();
        self.bytes += name.len() + value.len();
        self.index.insert(name.clone(), self.entries.len());
        self.entries.push((name, value));
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.index.remove(name)?;
        let (name, value) = self.entries.remove(i);
        self.bytes -= name.len() + value.len();
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(value)
    }

    /// The size of every name and value together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `NAME=value` strings in order, the form an OCI config or a process environment takes.
    pub fn to_env_strings(&self) -> Vec<String> {
        self.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Vars {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut vars = Self::new();
        for (k, v) in iter {
            vars.set(k, v);
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resetting_moves_to_the_end_and_keeps_lookups_right() {
        let mut v: Vars = [("A", "1"), ("B", "2"), ("C", "3")].into_iter().collect();
        v.set("A", "4");
        assert_eq!(v.to_env_strings(), ["B=2", "C=3", "A=4"]);
        assert_eq!(v.get("A"), Some("4"));
        assert_eq!(v.get("C"), Some("3"));
        assert_eq!(v.remove("B").as_deref(), Some("2"));
        assert_eq!(v.get("C"), Some("3"));
        assert_eq!(v.get("A"), Some("4"));
        assert_eq!(v.len(), 2);
        assert_eq!(v.bytes(), "C3A4".len());
    }

    #[test]
    fn env_strings_without_equals_are_empty_values() {
        let v = Vars::from_env_strings(["PATH=/bin:/usr/bin", "EMPTY", "X=a=b"]);
        assert_eq!(v.get("EMPTY"), Some(""));
        assert_eq!(v.get("X"), Some("a=b"));
        assert_eq!(v.get("PATH"), Some("/bin:/usr/bin"));
    }
}
