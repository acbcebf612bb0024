//! Field validators shared by pages, invitations and RSVPs (used by `validator`).

use std::borrow::Cow;

use validator::ValidationError;

fn invalid(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(Cow::Borrowed(message))
}

/// Phone numbers: digits with optional `+`, `-`, spaces; 8 to 15 digits.
pub fn phone(value: &str) -> Result<(), ValidationError> {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    if allowed && (8..=15).contains(&digits) && value.len() <= 20 {
        Ok(())
    } else {
        Err(invalid("phone", "must be a phone number (8 to 15 digits)"))
    }
}

/// The digits of a phone number, for matching answers from the same guest.
pub fn phone_digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

pub fn account_number(value: &str) -> Result<(), ValidationError> {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if value.chars().all(|c| c.is_ascii_digit() || c == '-') && (5..=30).contains(&digits) {
        Ok(())
    } else {
        Err(invalid(
            "account_number",
            "must be digits and dashes (5 to 30 digits)",
        ))
    }
}

pub fn hh_mm(value: &str) -> Result<(), ValidationError> {
    chrono::NaiveTime::parse_from_str(value, "%H:%M")
        .map(|_| ())
        .map_err(|_| invalid("time", "must be a time as HH:MM"))
}

pub fn meal_options(options: &[String]) -> Result<(), ValidationError> {
    let mut seen = std::collections::HashSet::new();
    for o in options {
        let len = o.trim().chars().count();
        if !(1..=30).contains(&len) {
            return Err(invalid(
                "meal_option",
                "each meal option must be 1 to 30 characters",
            ));
        }
        if !seen.insert(o.trim()) {
            return Err(invalid("meal_option", "meal options must be distinct"));
        }
    }
    Ok(())
}

pub fn time_zone(value: &str) -> Result<(), ValidationError> {
    value
        .parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| invalid("time_zone", "must be an IANA time zone such as Asia/Seoul"))
}

const RESERVED_SLUGS: &[&str] = &[
    "admin", "api", "app", "assets", "edit", "health", "help", "i", "login", "logout", "new", "p",
    "public", "register", "static", "www",
];

/// URL slugs: 3 to 40 of `a-z`, `0-9` and inner `-`; not a reserved word.
pub fn slug(value: &str) -> Result<(), ValidationError> {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_shape =
        (3..=40).contains(&value.len()) && !value.starts_with('-') && !value.ends_with('-');
    if !(ok_chars && ok_shape) {
        return Err(invalid(
            "slug",
            "must be 3 to 40 lowercase letters, digits or inner dashes",
        ));
    }
    if RESERVED_SLUGS.contains(&value) {
        return Err(invalid("slug", "this address is reserved"));
    }
    Ok(())
}

pub fn theme(value: &str) -> Result<(), ValidationError> {
    let ok = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "theme",
            "must be a theme name (letters, digits, - or _)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert!(phone("010-1234-5678").is_ok());
        assert!(phone("+82 10 1234 5678").is_ok());
        assert!(phone("1234").is_err());
        assert!(phone("010-1234-567a").is_err());
        assert_eq!(phone_digits("010-1234-5678"), "01012345678");
    }

    #[test]
    fn slugs() {
        assert!(slug("minsu-and-jiyoung").is_ok());
        assert!(slug("ab").is_err());
        assert!(slug("-abc").is_err());
        assert!(slug("Upper").is_err());
        assert!(slug("admin").is_err());
        assert!(slug("../etc").is_err());
    }

    #[test]
    fn zones_and_times() {
        assert!(time_zone("Asia/Seoul").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(hh_mm("12:30").is_ok());
        assert!(hh_mm("25:00").is_err());
    }
}
