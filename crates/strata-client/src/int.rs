//! Integers in request bodies as JSON Schema counts them: `30` and `30.0` are the same
//! integer (what a schema-driven client may send), `30.5` is not one.

use serde::de::{Deserializer, Error, Unexpected};
use serde::Deserialize;

fn whole(v: serde_json::Number) -> Option<i128> {
    if let Some(i) = v.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = v.as_u64() {
        return Some(u.into());
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1e19).then_some(f as i128)
}

fn number<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let shown = n.to_string();
    whole(n).ok_or_else(|| D::Error::invalid_value(Unexpected::Other(&shown), &"an integer"))
}

pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = number(d)?;
    i64::try_from(n).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = number(d)?;
    u64::try_from(n).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    match n {
        None => Ok(None),
        Some(n) => {
            let shown = n.to_string();
            let w = whole(n).ok_or_else(|| D::Error::invalid_value(Unexpected::Other(&shown), &"an integer"))?;
            i64::try_from(w).map(Some).map_err(|_| D::Error::custom(format!("{w} is out of range")))
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::u64")]
        a: u64,
        #[serde(default, deserialize_with = "super::opt_i64")]
        b: Option<i64>,
    }

    #[test]
    fn whole_floats_are_integers() {
        let t: T = serde_json::from_str(r#"{"a": 6925.0, "b": -3}"#).unwrap();
        assert_eq!((t.a, t.b), (6925, Some(-3)));
        assert!(serde_json::from_str::<T>(r#"{"a": 1.5}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a": -1}"#).is_err());
        let t: T = serde_json::from_str(r#"{"a": 1, "b": null}"#).unwrap();
        assert_eq!(t.b, None);
    }
}
