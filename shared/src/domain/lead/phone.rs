//! A lead's phone number in E.164 (`+919876543210`), so one person is found across
//! sources however each partner writes the number. India is the default country.
//!
//! The Indian forms are completed here, before the library sees the number, so the forms
//! accepted without a country are exactly the ones below (ten digits, `0` or `91` before
//! them), and the library (a port of Google's libphonenumber) only validates and formats
//! a number that already carries its country.
//!
//! The first call in a process loads the library's metadata (a few milliseconds): a
//! container calls `e164` once while it starts, which keeps that off its first request.

use rlibphonenumber::{PhoneNumber, PhoneNumberFormat};

/// E.164 allows at most 15 digits after the `+`.
const MAX_DIGITS: usize = 15;

/// The number as received, in E.164 (`+` and digits), or `None` when it is not one valid
/// number: letters, too few or too many digits, a number no country issues. A lead whose
/// number is `None` here is stored all the same, without it.
///
/// Without a `+` (or `00`), a number is Indian: ten digits, a `0` and ten digits (a
/// mobile or a landline with its STD code), or `91` and ten digits. With one, it keeps
/// its country.
pub fn e164(raw: &str) -> Option<String> {
    let international = international(raw)?;
    let number = PhoneNumber::parse(&international, None).ok()?;
    number
        .is_valid()
        .then(|| number.format_as(PhoneNumberFormat::E164).into_owned())
}

/// `+` and the digits of `raw`, the country made explicit; `None` for anything but digits,
/// one `+` before them, spaces and the usual separators.
fn international(raw: &str) -> Option<String> {
    let mut digits = String::with_capacity(MAX_DIGITS + 2);
    let mut plus = false;
    for c in raw.chars() {
        match c {
            '0'..='9' if digits.len() < MAX_DIGITS + 2 => digits.push(c),
            '0'..='9' => return None,
            '+' if digits.is_empty() && !plus => plus = true,
            '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if !plus {
        if let Some(rest) = digits.strip_prefix("00") {
            plus = true;
            digits = rest.to_owned();
        }
    }
    let digits = if plus {
        digits
    } else {
        match digits.len() {
            10 => format!("91{digits}"),
            11 if digits.starts_with('0') => format!("91{}", &digits[1..]),
            12 if digits.starts_with("91") => digits,
            _ => return None,
        }
    };
    (!digits.is_empty() && digits.len() <= MAX_DIGITS).then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::e164;
    use proptest::prelude::*;

    #[test]
    fn indian_mobiles_in_every_form() {
        for raw in [
            "09876543210",
            "+91 98765 43210",
            "919876543210",
            "9876543210",
            "+91-98765-43210",
            "(+91) 98765 43210",
            "0091 98765 43210",
            " 98765\u{a0}43210 ",
            "+91 (0) 98765 43210",
            "+919876543210",
        ] {
            assert_eq!(e164(raw).as_deref(), Some("+919876543210"), "{raw:?}");
        }
    }

    /// With India as its default region the library would take this number's "91" for
    /// the country code.
    #[test]
    fn a_mobile_that_starts_with_91_keeps_it() {
        for raw in [
            "9123456789",
            "09123456789",
            "919123456789",
            "+91 91234 56789",
        ] {
            assert_eq!(e164(raw).as_deref(), Some("+919123456789"), "{raw:?}");
        }
    }

    #[test]
    fn indian_landlines_with_their_std_code() {
        assert_eq!(e164("080 2345 6789").as_deref(), Some("+918023456789"));
        assert_eq!(e164("+91 80 2345 6789").as_deref(), Some("+918023456789"));
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        assert_eq!(e164("+1 650-555-0123").as_deref(), Some("+16505550123"));
        assert_eq!(e164("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(e164("0044 20 7946 0958").as_deref(), Some("+442079460958"));
    }

    #[test]
    fn what_is_not_one_number_is_none() {
        for raw in [
            "",
            " ",
            "+",
            "abc",
            "12345",
            "+91 12345",
            "0000000000",
            "5555555555",
            "98765 43210 ext 12",
            "+91 98765 43210 98765",
            "98765+43210",
            "++919876543210",
            "+91 98765 43210 / 98765 43211",
            "16505550123",
            "१२३४५६७८९०",
        ] {
            assert_eq!(e164(raw), None, "{raw:?}");
        }
    }

    /// The metadata is loaded on the first call; printed, not asserted. Meaningful run
    /// alone (another test may load it first): `cargo test -p shared --lib
    /// phone::tests::first_call -- --nocapture`.
    #[test]
    fn first_call_latency() {
        let start = std::time::Instant::now();
        let first = e164("+91 98765 43210");
        let first_took = start.elapsed();
        let start = std::time::Instant::now();
        let again = e164("+91 91234 56789");
        let again_took = start.elapsed();
        let start = std::time::Instant::now();
        let foreign = e164("+44 20 7946 0958");
        let foreign_took = start.elapsed();
        assert!(first.is_some() && again.is_some() && foreign.is_some());
        println!(
            "e164: first call {first_took:?}, next Indian number {again_took:?}, \
             first British number {foreign_took:?}"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(raw in prop_oneof![
            "\\PC{0,24}",
            ".{0,24}",
            "[ (]{0,2}(\\+|00)?[0-9 ()-]{0,18}",
        ]) {
            let once = e164(&raw);
            if let Some(number) = &once {
                prop_assert!(number.starts_with('+'), "{number}");
                prop_assert!(number[1..].bytes().all(|b| b.is_ascii_digit()), "{number}");
                prop_assert_eq!(e164(number), once.clone());
            }
        }

        #[test]
        fn any_indian_mobile_is_found(number in "[6-9][0-9]{9}") {
            let expected = format!("+91{number}");
            prop_assert_eq!(e164(&number), Some(expected.clone()));
            prop_assert_eq!(e164(&format!("0{number}")), Some(expected.clone()));
            prop_assert_eq!(e164(&format!("91{number}")), Some(expected.clone()));
            prop_assert_eq!(e164(&format!("+91 {number}")), Some(expected.clone()));
        }
    }
}
