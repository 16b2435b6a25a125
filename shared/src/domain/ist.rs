//! India Standard Time, UTC+05:30: the dealerships' clock, and Knowlarity's accounts'.

use chrono::FixedOffset;

/// UTC+05:30, checked when the crate is compiled.
pub const IST: FixedOffset = match FixedOffset::east_opt(5 * 3600 + 30 * 60) {
    Some(offset) => offset,
    None => panic!("UTC+05:30 is a valid offset"),
};
