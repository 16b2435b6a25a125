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

/// A text with every number in it that could be a phone (seven digits or more, spaces,
/// dashes and a `+` between them allowed) masked as [`phone`] masks one: a message that
/// quotes a customer's number, as it may be logged.
pub fn numbers_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if digits >= 7 {
            out.push_str(&phone(run.trim_end()));
            out.extend(
                run.chars()
                    .rev()
                    .take_while(|c| *c == ' ')
                    .collect::<Vec<_>>(),
            );
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        let continues = c.is_ascii_digit()
            || ((c == ' ' || c == '-') && !run.is_empty())
            || (c == '+' && run.is_empty());
        if continues {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_in_a_text_are_masked() {
        assert_eq!(
            super::numbers_in("New lead: Ravi, +91 98765 43210, MG Hector at 10:02 IST."),
            "New lead: Ravi, ***********3210, MG Hector at 10:02 IST."
        );
        assert_eq!(
            super::numbers_in("call 9876543210 now"),
            "call ******3210 now"
        );
        assert_eq!(super::numbers_in("lead 42 at 10:02"), "lead 42 at 10:02");
    }

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
