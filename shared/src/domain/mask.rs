//! Masking personal data before it reaches a log line.

/// Keeps the last four characters of a phone number and replaces the rest with `*`, so
/// an operator can match a complaint to a log line without the log holding the number.
pub fn phone(number: &str) -> String {
    let count = number.chars().count();
    let keep = if count > 6 { 4 } else { 0 };
    number
        .chars()
        .enumerate()
        .map(|(index, c)| if index + keep < count { '*' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_only_the_last_four() {
        assert_eq!(super::phone("+917330995416"), "*********5416");
        assert_eq!(super::phone("9876543210"), "******3210");
    }

    #[test]
    fn short_values_are_fully_masked() {
        assert_eq!(super::phone("12345"), "*****");
        assert_eq!(super::phone(""), "");
    }
}
