//! Small helpers over quick-xml events shared by the repodata parsers.

use crate::limits::MAX_TEXT;
use quick_xml::events::{BytesCData, BytesRef, BytesStart, BytesText};
use std::borrow::Cow;

/// Attributes of an element as (name, unescaped value); a malformed attribute is an error.
pub(crate) fn attrs<'a>(
    e: &'a BytesStart<'a>,
) -> impl Iterator<Item = Result<(&'a [u8], Cow<'a, str>), String>> + 'a {
    let mut it = e.attributes();
    // Duplicate-attribute checks cost quadratic time per element and repodata has none.
    it.with_checks(false);
    it.map(|a| {
        let a = a.map_err(|err| format!("bad attribute: {err}"))?;
        let value = a.unescape_value().map_err(|err| format!("bad attribute value: {err}"))?;
        Ok((a.key.into_inner(), value))
    })
}

/// Text content accumulated across the Text / entity-reference / CDATA events that
/// quick-xml splits it into.
#[derive(Default)]
pub(crate) struct Text {
    s: String,
}

impl Text {
    pub(crate) fn clear(&mut self) {
        self.s.clear();
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.s
    }

    pub(crate) fn push_text(&mut self, t: &BytesText<'_>) -> Result<(), String> {
        self.push_bytes(t)
    }

    pub(crate) fn push_raw(&mut self, c: &BytesCData<'_>) -> Result<(), String> {
        self.push_bytes(c)
    }

    fn push_bytes(&mut self, b: &[u8]) -> Result<(), String> {
        self.room_for(b.len())?;
        let s = std::str::from_utf8(b).map_err(|_| "text is not UTF-8".to_string())?;
        self.s.push_str(s);
        Ok(())
    }

    /// One field's text is bounded even when it arrives as many small events (text split by
    /// entity references), each within the token bound.
    fn room_for(&self, more: usize) -> Result<(), String> {
        if self.s.len() + more > MAX_TEXT {
            return Err(format!(
                "one element's text is longer than {MAX_TEXT} bytes; refusing it as hostile or broken \
                 metadata (a fixed limit, not a setting)"
            ));
        }
        Ok(())
    }

    pub(crate) fn push_ref(&mut self, r: &BytesRef<'_>) -> Result<(), String> {
        self.room_for(4)?;
        if let Some(c) = r.resolve_char_ref().map_err(|e| format!("bad character reference: {e}"))? {
            self.s.push(c);
            return Ok(());
        }
        let name: &[u8] = r;
        self.s.push_str(match name {
            b"amp" => "&",
            b"lt" => "<",
            b"gt" => ">",
            b"quot" => "\"",
            b"apos" => "'",
            other => return Err(format!("unknown entity `&{};`", String::from_utf8_lossy(other))),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_bounded_across_events() {
        let mut t = Text::default();
        let chunk = BytesText::new(&"x".repeat(1 << 16)).into_owned();
        for _ in 0..16 {
            t.push_text(&chunk).unwrap();
        }
        assert_eq!(t.as_str().len(), MAX_TEXT);
        assert!(t.push_ref(&BytesRef::new("amp")).unwrap_err().contains("longer than 1048576"));
        t.clear();
        // Entities stay refused: only the five predefined ones and character references.
        assert!(t.push_ref(&BytesRef::new("xxe")).unwrap_err().contains("unknown entity `&xxe;`"));
        t.push_ref(&BytesRef::new("#65")).unwrap();
        assert_eq!(t.as_str(), "A");
    }
}
