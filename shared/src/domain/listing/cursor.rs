//! The leads feed's cursor: where a page starts, as the dashboard carries it (opaque,
//! URL-safe), and only a time the database can compare with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::lead::record::RowId;

/// The first time no cursor (and no date parameter) may name: 10000-01-01T00:00:00Z (a
/// year of four digits is the most the database and the times the feed writes both
/// hold).
pub const END_US: i64 = 253_402_300_800_000_000;

/// The earliest listing time a cursor may carry: 0001-01-01T00:00:00Z.
const CURSOR_EARLIEST_US: i64 = -62_135_596_800_000_000;

/// Where a page starts: after the row with this listing time (Unix microseconds) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub listed_at_us: i64,
    pub id: RowId,
}

/// Marks the cursor's layout, so a future layout can refuse an old cursor by name: a
/// numeric id in eight bytes, or (a legacy table's) text id as its UTF-8.
const CURSOR_NUMBER: u8 = 1;
const CURSOR_TEXT: u8 = 2;

/// The longest text id a cursor carries (a legacy table's ids are uuids or the like).
const MAX_CURSOR_ID_BYTES: usize = 256;

impl Cursor {
    /// The cursor as the dashboard carries it: URL-safe, opaque.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(17);
        match &self.id {
            RowId::Number(id) => {
                bytes.push(CURSOR_NUMBER);
                bytes.extend_from_slice(&self.listed_at_us.to_be_bytes());
                bytes.extend_from_slice(&id.to_be_bytes());
            }
            RowId::Text(id) => {
                bytes.push(CURSOR_TEXT);
                bytes.extend_from_slice(&self.listed_at_us.to_be_bytes());
                bytes.extend_from_slice(id.as_bytes());
            }
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A cursor this feed gave; anything else is `None`.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let (&version, rest) = bytes.split_first()?;
        let listed: [u8; 8] = rest.get(..8)?.try_into().ok()?;
        let listed_at_us = i64::from_be_bytes(listed);
        // Only a time the database can compare with: a crafted cursor is refused here, not
        // by the database.
        if !(CURSOR_EARLIEST_US..END_US).contains(&listed_at_us) {
            return None;
        }
        let id = &rest[8..];
        let id = match version {
            CURSOR_NUMBER => RowId::Number(i64::from_be_bytes(id.try_into().ok()?)),
            CURSOR_TEXT if id.len() <= MAX_CURSOR_ID_BYTES => {
                let id = std::str::from_utf8(id).ok()?;
                if id.contains('\0') {
                    return None;
                }
                RowId::Text(id.to_owned())
            }
            _ => return None,
        };
        Some(Self { listed_at_us, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_cursor_is_opaque_and_round_trips() {
        let cursor = Cursor {
            listed_at_us: 1_767_225_600_123_456,
            id: RowId::Number(9_007_199_254_740_993),
        };
        let text = cursor.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text), Some(cursor.clone()));
        assert_eq!(Cursor::decode(""), None);
        assert_eq!(Cursor::decode(&text[1..]), None);
        let mut other = URL_SAFE_NO_PAD.decode(&text).unwrap();
        other[0] = 3;
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(other)), None);
        // A legacy table's text id, leading zeros and all.
        let text_id = Cursor {
            listed_at_us: 0,
            id: RowId::Text("0042-a".into()),
        };
        assert_eq!(Cursor::decode(&text_id.encode()), Some(text_id));
    }

    proptest! {
        #[test]
        fn any_cursor_round_trips(listed_at_us in CURSOR_EARLIEST_US..END_US, id in any::<i64>(), text in "[^\\x00]{0,40}") {
            let cursor = Cursor { listed_at_us, id: RowId::Number(id) };
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
            let cursor = Cursor { listed_at_us, id: RowId::Text(text) };
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
    }
}
