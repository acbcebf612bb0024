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

/// An error of a whole object that names the field it is about (camelCase, relative
/// to the object), so the 422 points at it.
fn invalid_at(field: &'static str, code: &'static str, message: &'static str) -> ValidationError {
    let mut e = invalid(code, message);
    e.add_param(Cow::Borrowed("field"), &field);
    e
}

/// A parent's details need the parent's name; a phone shown must exist; a deceased
/// parent's phone is never shown.
pub fn parents(p: &crate::db::page::Person) -> Result<(), ValidationError> {
    let sides = [
        (
            "fatherDetails",
            p.father.as_deref(),
            p.father_details.as_ref(),
        ),
        (
            "motherDetails",
            p.mother.as_deref(),
            p.mother_details.as_ref(),
        ),
    ];
    for (field, name, details) in sides {
        let Some(d) = details else { continue };
        let named = name.is_some_and(|n| !n.trim().is_empty());
        if !named && (d.phone.is_some() || d.deceased) {
            return Err(invalid_at(
                field,
                "parent_name",
                "a parent's phone or 故 marker needs the parent's name",
            ));
        }
        let show_phone = if field == "fatherDetails" {
            "fatherDetails.showPhone"
        } else {
            "motherDetails.showPhone"
        };
        if d.show_phone && d.phone.is_none() {
            return Err(invalid_at(
                show_phone,
                "no_phone",
                "there is no phone number to show",
            ));
        }
        if d.show_phone && d.deceased {
            return Err(invalid_at(
                show_phone,
                "deceased_phone",
                "a deceased parent's phone number cannot be shown",
            ));
        }
    }
    Ok(())
}

const KAKAOPAY_PREFIX: &str = "https://qr.kakaopay.com/";
const TOSS_ID_PREFIX: &str = "https://toss.me/";
const TOSS_APP_PREFIX: &str = "supertoss://send?";

/// KakaoPay's 송금코드 link: exactly `https://qr.kakaopay.com/` and a code of letters
/// and digits (the app's links; an amount is appended to the code in hex). No other
/// host, scheme, port, path, query or fragment.
pub fn kakaopay_url(value: &str) -> Result<(), ValidationError> {
    let code = value.strip_prefix(KAKAOPAY_PREFIX).unwrap_or_default();
    if (1..=64).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(invalid(
            "kakaopay_url",
            "must be a KakaoPay transfer link: https://qr.kakaopay.com/<code>",
        ))
    }
}

/// A Toss transfer link: `https://toss.me/<토스아이디>[/<amount>]` or the app's
/// `supertoss://send?bank=..&accountNo=..[&amount=..][&origin=..]`.
pub fn toss_url(value: &str) -> Result<(), ValidationError> {
    let bad = || {
        invalid(
            "toss_url",
            "must be a Toss link: https://toss.me/<id> or supertoss://send?bank=..&accountNo=..",
        )
    };
    if value.len() > 200 {
        return Err(bad());
    }
    if let Some(path) = value.strip_prefix(TOSS_ID_PREFIX) {
        let (id, amount) = match path.split_once('/') {
            Some((id, amount)) => (id, Some(amount)),
            None => (path, None),
        };
        let id = percent_decoded(id).ok_or_else(bad)?;
        let id_ok = (1..=40).contains(&id.chars().count())
            && id
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let amount_ok = amount
            .is_none_or(|a| (1..=10).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_digit()));
        return if id_ok && amount_ok {
            Ok(())
        } else {
            Err(bad())
        };
    }
    let query = value.strip_prefix(TOSS_APP_PREFIX).ok_or_else(bad)?;
    let params = toss_app_params(query).ok_or_else(bad)?;
    if params.bank.is_empty() || params.account_digits.is_empty() {
        return Err(bad());
    }
    Ok(())
}

/// The parameters of a `supertoss://send?` link, or `None` for an unknown or repeated
/// parameter or a malformed value.
struct TossApp {
    bank: String,
    account_digits: String,
}

fn toss_app_params(query: &str) -> Option<TossApp> {
    let mut bank = None;
    let mut account = None;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(key.to_string()) {
            return None;
        }
        match key.as_ref() {
            "bank"
                if (1..=30).contains(&value.chars().count())
                    && !value.chars().any(char::is_control) =>
            {
                bank = Some(value.to_string())
            }
            "accountNo" if value.chars().all(|c| c.is_ascii_digit() || c == '-') => {
                account = Some(phone_digits(&value))
            }
            "amount"
                if (1..=10).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) => {
            }
            "origin" if value.chars().all(|c| c.is_ascii_alphanumeric()) => {}
            _ => return None,
        }
    }
    Some(TossApp {
        bank: bank?,
        account_digits: account?,
    })
}

/// `%XX` escapes decoded as UTF-8; `None` for a broken escape or invalid UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An app transfer link must send to the account it is listed with: a link that
/// names another account would send guests' money elsewhere.
pub fn toss_names_the_account(a: &crate::db::page::GiftAccount) -> Result<(), ValidationError> {
    let Some(query) = a
        .toss_url
        .as_deref()
        .and_then(|u| u.strip_prefix(TOSS_APP_PREFIX))
    else {
        return Ok(());
    };
    match toss_app_params(query) {
        Some(p) if p.account_digits != phone_digits(&a.number) => Err(invalid_at(
            "tossUrl",
            "toss_account",
            "the Toss link must send to this account's number",
        )),
        _ => Ok(()),
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
    fn transfer_links() {
        assert!(kakaopay_url("https://qr.kakaopay.com/FZx2bq1Tq").is_ok());
        for bad in [
            "http://qr.kakaopay.com/FZx2bq1Tq",
            "https://qr.kakaopay.com/",
            "https://qr.kakaopay.com.evil.example/FZx",
            "https://qr.kakaopay.com/FZx?next=https://evil.example",
            "https://qr.kakaopay.com/FZx#frag",
            "https://qr.kakaopay.com:8443/FZx",
            "https://user@qr.kakaopay.com/FZx",
            "javascript:alert(1)//qr.kakaopay.com/FZx",
        ] {
            assert!(kakaopay_url(bad).is_err(), "{bad}");
        }
        for good in [
            "https://toss.me/minsu",
            "https://toss.me/minsu/50000",
            "https://toss.me/%EA%B9%80%EB%AF%BC%EC%88%98",
            "https://toss.me/김민수",
            "supertoss://send?bank=%EC%8B%A0%ED%95%9C&accountNo=110123456789&origin=qr",
            "supertoss://send?amount=0&bank=신한은행&accountNo=110-123-456789",
        ] {
            assert!(toss_url(good).is_ok(), "{good}");
        }
        for bad in [
            "https://toss.me/",
            "https://toss.me/minsu/5만원",
            "https://toss.me/minsu?x=1",
            "https://toss.me.evil.example/minsu",
            "https://toss.me/%ZZ",
            "http://toss.me/minsu",
            "supertoss://send?bank=신한",
            "supertoss://send?bank=신한&accountNo=110&accountNo=220",
            "supertoss://send?bank=신한&accountNo=110&next=https://evil.example",
            "supertoss://pay?bank=신한&accountNo=110",
            "intent://send#Intent;scheme=supertoss;end",
        ] {
            assert!(toss_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_and_times() {
        assert!(time_zone("Asia/Seoul").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(hh_mm("12:30").is_ok());
        assert!(hh_mm("25:00").is_err());
    }
}
