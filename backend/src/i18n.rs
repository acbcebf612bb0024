//! Human-readable error messages in English and Korean.
//!
//! Call sites write their message in English, as before; the Korean text comes from
//! the catalog below, found by the English message (with `{}` standing for the parts
//! that vary). The language is chosen per request from `Accept-Language` by
//! [`negotiate`]; English is the default. Machine-readable `code`s never change with
//! the language.

use std::borrow::Cow;

use axum::{extract::Request, http::header, middleware::Next, response::Response};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    Ko,
}

tokio::task_local! {
    static LANG: Lang;
}

impl Lang {
    /// The best of our languages for an `Accept-Language` value (`ko-KR,ko;q=0.9,en;q=0.8`):
    /// the supported tag with the highest weight, the first on a tie, else English.
    pub fn from_accept_language(value: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in value.unwrap_or_default().split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next().unwrap_or_default() {
                "ko" => Lang::Ko,
                "en" => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang).unwrap_or_default()
    }

    /// The language of the request being answered (English outside a request).
    pub fn current() -> Lang {
        LANG.try_with(|l| *l).unwrap_or_default()
    }
}

/// Middleware: answers the request in the language its `Accept-Language` asks for.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let lang = Lang::from_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut res = LANG.scope(lang, next.run(req)).await;
    res.headers_mut()
        .append(header::VARY, header::ACCEPT_LANGUAGE.into());
    res
}

/// A message in both languages. `ko: None` means "look the English up in the catalog".
#[derive(Clone, Debug)]
pub struct Text {
    pub en: Cow<'static, str>,
    pub ko: Option<Cow<'static, str>>,
}

impl Text {
    pub fn new(en: impl Into<Cow<'static, str>>, ko: impl Into<Cow<'static, str>>) -> Self {
        Text {
            en: en.into(),
            ko: Some(ko.into()),
        }
    }

    pub fn en(en: impl Into<Cow<'static, str>>) -> Self {
        Text {
            en: en.into(),
            ko: None,
        }
    }

    pub fn get(&self, lang: Lang) -> Cow<'static, str> {
        match lang {
            Lang::En => self.en.clone(),
            Lang::Ko => self
                .ko
                .clone()
                .or_else(|| korean(&self.en).map(Cow::Owned))
                .unwrap_or_else(|| self.en.clone()),
        }
    }
}

/// The Korean for an English message of the catalog, or `None`.
pub fn korean(en: &str) -> Option<String> {
    let found = CATALOG.iter().find_map(|(pattern, ko)| {
        let captures = match_pattern(pattern, en)?;
        Some(fill(ko, &captures))
    });
    // `field: message`, as validation summaries and CSV rows say it.
    found.or_else(|| {
        let (field, message) = en.split_once(": ")?;
        (!field.contains(' ')).then(|| Some(format!("{field}: {}", korean(message)?)))?
    })
}

/// Matches `text` against `pattern`, where each `{}` stands for any non-empty text;
/// returns what the placeholders stood for.
fn match_pattern<'a>(pattern: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = pattern.split("{}").collect();
    let (first, rest) = parts.split_first()?;
    let mut remaining = text.strip_prefix(first)?;
    let mut captures = Vec::new();
    for (i, part) in rest.iter().enumerate() {
        let last = i == rest.len() - 1;
        let at = if last {
            remaining.strip_suffix(*part).map(str::len)?
        } else {
            // Placeholders are non-empty: look for the next literal after one char.
            let skip = remaining.chars().next()?.len_utf8();
            remaining[skip..].find(part)? + skip
        };
        if at == 0 || !remaining.is_char_boundary(at) {
            return None;
        }
        captures.push(&remaining[..at]);
        remaining = &remaining[at + part.len()..];
    }
    (rest.is_empty() && remaining.is_empty() || !rest.is_empty()).then_some(captures)
}

/// Puts the captures into a Korean template: `{}` as is (a known noun translated),
/// `{을}` / `{이}` followed by the object / subject particle that fits it.
fn fill(template: &str, captures: &[&str]) -> String {
    let mut out = String::new();
    let mut values = captures.iter().map(|c| noun(c));
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        let value = values.next().unwrap_or_default();
        out.push_str(&value);
        match &rest[start + 1..end] {
            "을" => out.push_str(particle(&value, "을", "를")),
            "이" => out.push_str(particle(&value, "이", "가")),
            _ => {}
        }
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// 을/를, 이/가: the first after a final consonant (batchim), the second after a vowel.
fn particle(word: &str, after_consonant: &'static str, after_vowel: &'static str) -> &'static str {
    match word.chars().last() {
        Some(c @ '가'..='힣') if !(c as u32 - '가' as u32).is_multiple_of(28) => after_consonant,
        Some('가'..='힣') => after_vowel,
        // Digits and Latin letters: read as Korean would; most end in a consonant sound.
        Some('2' | '4' | '5' | '9') => after_vowel,
        _ => after_consonant,
    }
}

/// Korean names of the things an error can be about.
fn noun(value: &str) -> String {
    let ko = match value {
        "page" => "페이지",
        "user" => "사용자",
        "file" => "파일",
        "payment" => "결제",
        "guestbook entry" => "방명록 글",
        "chat session" => "채팅 세션",
        "message" => "메시지",
        "thumbnail" => "썸네일",
        "route" => "경로",
        "invitation" => "초대장",
        "editor" => "공동 편집자",
        "editor invitation" => "공동 편집 초대",
        "entry" => "글",
        "suspend" => "정지",
        "reinstate" => "정지 해제",
        "demote" => "권한 변경",
        "change the role of" => "권한 변경",
        "password checks" => "비밀번호 확인",
        "image decoding" => "이미지 처리",
        other => return other.to_owned(),
    };
    ko.to_owned()
}

/// English message (pattern) → Korean. Keep in step with the messages of the code;
/// `error_codes_have_korean` and the tests of this module check the common ones.
const CATALOG: &[(&str, &str)] = &[
    // Requests in general.
    ("{} not found", "{을} 찾을 수 없습니다"),
    (
        "method not allowed on this route",
        "이 경로에서 허용되지 않는 메서드입니다",
    ),
    (
        "expected Content-Type: application/json",
        "Content-Type: application/json 본문이어야 합니다",
    ),
    (
        "expected Content-Type: text/csv",
        "Content-Type: text/csv 본문이어야 합니다",
    ),
    (
        "expected a multipart/form-data body: {}",
        "multipart/form-data 본문이어야 합니다: {}",
    ),
    ("request body is too large", "요청 본문이 너무 큽니다"),
    (
        "the request body is not valid JSON",
        "요청 본문이 올바른 JSON이 아닙니다",
    ),
    (
        "too many requests; try again in {} seconds",
        "요청이 너무 많습니다. {}초 후에 다시 시도해 주세요",
    ),
    (
        "internal server error",
        "서버 내부 오류입니다. 잠시 후 다시 시도해 주세요",
    ),
    ("the path is not valid", "경로가 올바르지 않습니다"),
    ("{} fields are invalid", "{}개 항목이 올바르지 않습니다"),
    // Fields (serde).
    ("is required", "필수 항목입니다"),
    ("must be a whole number", "정수여야 합니다"),
    (
        "must be a whole number of at least 0",
        "0 이상의 정수여야 합니다",
    ),
    ("must be a number", "숫자여야 합니다"),
    ("must be true or false", "true 또는 false여야 합니다"),
    ("must be text", "문자열이어야 합니다"),
    ("must be a list", "목록(배열)이어야 합니다"),
    ("must be an object", "객체여야 합니다"),
    ("must be one of: {}", "다음 중 하나여야 합니다: {}"),
    (
        "must be a date and time with its UTC offset, e.g. 2027-05-15T12:30:00+09:00",
        "UTC 오프셋이 붙은 날짜와 시간이어야 합니다 (예: 2027-05-15T12:30:00+09:00)",
    ),
    ("has an invalid value", "값이 올바르지 않습니다"),
    // Fields (validator).
    ("must be {} to {} characters", "{}~{}자여야 합니다"),
    ("must be at most {} characters", "{}자 이하여야 합니다"),
    ("must be at least {} characters", "{}자 이상이어야 합니다"),
    ("must be exactly {} characters", "정확히 {}자여야 합니다"),
    ("must have {} to {} items", "{}~{}개 항목이어야 합니다"),
    ("must have at most {} items", "{}개 이하여야 합니다"),
    ("must have at least {} items", "{}개 이상이어야 합니다"),
    ("must be between {} and {}", "{} 이상 {} 이하여야 합니다"),
    ("must be at least {}", "{} 이상이어야 합니다"),
    ("must be at most {}", "{} 이하여야 합니다"),
    (
        "must be a valid email address",
        "올바른 이메일 주소여야 합니다",
    ),
    ("must be a valid URL", "올바른 URL이어야 합니다"),
    (
        "must contain a letter and a digit or symbol",
        "문자와 숫자 또는 기호를 함께 포함해야 합니다",
    ),
    (
        "must be 1 to 50 printable characters",
        "출력 가능한 문자 1~50자여야 합니다",
    ),
    (
        "must be a phone number (8 to 15 digits)",
        "전화번호여야 합니다 (숫자 8~15자리)",
    ),
    (
        "must be digits and dashes (5 to 30 digits)",
        "숫자와 하이픈(-)이어야 합니다 (숫자 5~30자리)",
    ),
    (
        "a parent's phone or 故 marker needs the parent's name",
        "혼주 연락처나 故 표시는 혼주 성함과 함께 입력해야 합니다",
    ),
    (
        "there is no phone number to show",
        "표시할 전화번호가 없습니다",
    ),
    (
        "a deceased parent's phone number cannot be shown",
        "고인의 전화번호는 표시할 수 없습니다",
    ),
    (
        "must be a KakaoPay transfer link: https://qr.kakaopay.com/<code>",
        "카카오페이 송금 링크여야 합니다: https://qr.kakaopay.com/<코드>",
    ),
    (
        "must be a Toss link: https://toss.me/<id> or supertoss://send?bank=..&accountNo=..",
        "토스 링크여야 합니다: https://toss.me/<아이디> 또는 supertoss://send?bank=..&accountNo=..",
    ),
    (
        "the Toss link must send to this account's number",
        "토스 링크는 이 계좌번호로 보내는 링크여야 합니다",
    ),
    ("must be a time as HH:MM", "HH:MM 형식의 시각이어야 합니다"),
    (
        "each meal option must be 1 to 30 characters",
        "식사 항목은 각각 1~30자여야 합니다",
    ),
    (
        "meal options must be distinct",
        "식사 항목이 중복되었습니다",
    ),
    (
        "must be an IANA time zone such as Asia/Seoul",
        "Asia/Seoul 같은 IANA 시간대여야 합니다",
    ),
    (
        "must be 3 to 40 lowercase letters, digits or inner dashes",
        "영문 소문자, 숫자, 가운데 하이픈(-)으로 3~40자여야 합니다",
    ),
    ("this address is reserved", "예약된 주소입니다"),
    (
        "must be a theme name (letters, digits, - or _)",
        "테마 이름이어야 합니다 (영문, 숫자, - 또는 _)",
    ),
    (
        "unknown query parameter `{}`; this list takes {}",
        "알 수 없는 쿼리 매개변수 `{}`입니다. 이 목록이 받는 것: {}",
    ),
    (
        "cannot sort by `{}`; sortable: {}",
        "`{}`(으)로는 정렬할 수 없습니다. 정렬 가능: {}",
    ),
    (
        "from must not be after to",
        "from이 to보다 늦을 수 없습니다",
    ),
    (
        "at most {} days per request",
        "한 번에 최대 {}일까지 조회할 수 있습니다",
    ),
    (
        "cannot read the answer stream: {}",
        "답변 스트림을 읽을 수 없습니다: {}",
    ),
    (
        "a valid metrics token is required",
        "올바른 메트릭 토큰이 필요합니다",
    ),
    // Authentication.
    (
        "missing bearer token",
        "액세스 토큰이 없습니다 (Authorization: Bearer)",
    ),
    ("invalid access token", "액세스 토큰이 올바르지 않습니다"),
    ("access token has expired", "액세스 토큰이 만료되었습니다"),
    ("account is suspended", "정지된 계정입니다"),
    ("admin role required", "관리자 권한이 필요합니다"),
    (
        "email or password is incorrect",
        "이메일 또는 비밀번호가 올바르지 않습니다",
    ),
    (
        "refresh token is invalid, expired or revoked",
        "리프레시 토큰이 올바르지 않거나 만료 또는 폐기되었습니다",
    ),
    (
        "the ticket is unknown, used or expired",
        "알 수 없거나 이미 사용했거나 만료된 티켓입니다",
    ),
    (
        "missing credentials: use ?ticket=, a bearer token or the mocheong_access cookie",
        "인증 정보가 없습니다: ?ticket=, Bearer 토큰 또는 mocheong_access 쿠키를 사용하세요",
    ),
    (
        "an admin cannot {} their own account",
        "관리자는 자기 계정을 {}할 수 없습니다",
    ),
    ("already exists", "이미 존재합니다"),
    (
        "an account with this email already exists",
        "이미 가입된 이메일입니다",
    ),
    (
        "this page address is already taken",
        "이미 사용 중인 페이지 주소입니다",
    ),
    (
        "this user already edits the page",
        "이미 이 페이지의 공동 편집자입니다",
    ),
    // Pages, invitations, RSVPs, guestbook.
    (
        "only the page's owner may do this",
        "페이지 소유자만 할 수 있습니다",
    ),
    (
        "a page needs its venue's name before it is published",
        "공개하려면 예식장 이름이 필요합니다",
    ),
    (
        "the owner is already on the page",
        "소유자는 이미 이 페이지에 있습니다",
    ),
    (
        "this invitation has expired; ask the page's owner for a new one",
        "초대가 만료되었습니다. 페이지 소유자에게 다시 초대해 달라고 요청해 주세요",
    ),
    (
        "only a published page can be unpublished",
        "공개된 페이지만 비공개로 돌릴 수 있습니다",
    ),
    (
        "this page no longer takes RSVPs",
        "이 페이지는 더 이상 참석 응답을 받지 않습니다",
    ),
    (
        "not one of this page's meal options",
        "이 페이지의 식사 항목이 아닙니다",
    ),
    (
        "this page takes RSVPs only through personal invitations",
        "이 페이지는 개인 초대장으로만 참석 응답을 받습니다",
    ),
    ("must not be blank", "비어 있으면 안 됩니다"),
    (
        "this phone number has already answered; send the editToken returned with that answer to change it",
        "이 전화번호로 이미 응답했습니다. 바꾸려면 그 응답에서 받은 editToken을 함께 보내 주세요",
    ),
    (
        "the edit token does not match this answer",
        "수정 토큰이 이 응답과 맞지 않습니다",
    ),
    (
        "the page was changed by someone else (now version {}); reload it and apply your change again",
        "다른 사람이 페이지를 바꿨습니다 (현재 버전 {}). 새로 불러온 뒤 다시 수정해 주세요",
    ),
    (
        "the password does not match",
        "비밀번호가 일치하지 않습니다",
    ),
    (
        "the CSV must be UTF-8 text",
        "CSV는 UTF-8 텍스트여야 합니다",
    ),
    (
        "unreadable CSV header: {}",
        "CSV 머리글을 읽을 수 없습니다: {}",
    ),
    (
        "the CSV needs a name (이름) column",
        "CSV에 이름(name) 열이 필요합니다",
    ),
    (
        "{} row(s) are invalid; nothing was imported",
        "{}개 행이 올바르지 않아 아무것도 가져오지 않았습니다",
    ),
    ("the CSV has no guests", "CSV에 하객이 없습니다"),
    (
        "at most {} guests per import",
        "한 번에 최대 {}명까지 가져올 수 있습니다",
    ),
    // Files.
    ("a file appears twice", "같은 파일이 두 번 들어 있습니다"),
    (
        "only pictures can be in a gallery",
        "갤러리에는 사진만 넣을 수 있습니다",
    ),
    (
        "this file belongs to another page",
        "다른 페이지의 파일입니다",
    ),
    ("{} is too long", "{이} 너무 깁니다"),
    ("{} is not UTF-8 text", "{이} UTF-8 텍스트가 아닙니다"),
    (
        "purpose must be gallery, cover or attachment",
        "purpose는 gallery, cover, attachment 중 하나여야 합니다",
    ),
    (
        "purpose is required: gallery, cover or attachment",
        "purpose가 필요합니다: gallery, cover, attachment",
    ),
    (
        "send one file per request",
        "요청마다 파일을 하나만 보내 주세요",
    ),
    ("the form has no file field", "폼에 file 항목이 없습니다"),
    ("the file is empty", "빈 파일입니다"),
    (
        "nothing has been uploaded for this file yet",
        "이 파일은 아직 업로드되지 않았습니다",
    ),
    (
        "the uploaded object has {} bytes, {} were declared",
        "업로드된 크기는 {}바이트인데 {}바이트로 신고되었습니다",
    ),
    (
        "{} bytes were sent, {} were declared",
        "{}바이트를 보냈는데 {}바이트로 신고되었습니다",
    ),
    (
        "the upload has not been completed",
        "업로드가 아직 완료되지 않았습니다",
    ),
    (
        "only the file's owner may delete it",
        "파일 소유자만 삭제할 수 있습니다",
    ),
    ("this link has expired", "링크가 만료되었습니다"),
    ("this link is not valid", "올바르지 않은 링크입니다"),
    (
        "file storage is unreachable right now; nothing was saved, try again later",
        "지금 파일 저장소에 연결할 수 없습니다. 아무것도 저장되지 않았으니 잠시 후 다시 시도해 주세요",
    ),
    (
        "the file is larger than the {} bytes allowed for this purpose",
        "이 용도에 허용된 {}바이트보다 큰 파일입니다",
    ),
    (
        "a form has the file and at most {} fields, {} KiB of unknown fields in all",
        "폼에는 파일과 최대 {}개 항목, 알 수 없는 항목은 모두 합쳐 {}KiB까지만 넣을 수 있습니다",
    ),
    (
        "this upload would exceed your storage quota ({} of {} bytes used)",
        "저장 공간 한도를 넘습니다 ({}바이트 중 {}바이트 사용 중)",
    ),
    // Payments.
    (
        "payments are not configured on this server",
        "이 서버에는 결제가 설정되어 있지 않습니다",
    ),
    (
        "the payment provider is unavailable; try again",
        "결제사에 연결할 수 없습니다. 다시 시도해 주세요",
    ),
    (
        "the payment provider has no such payment yet",
        "결제사에 아직 이 결제가 없습니다",
    ),
    (
        "the payment provider refused the request",
        "결제사가 요청을 거절했습니다",
    ),
    (
        "the free plan is not for sale",
        "무료 요금제는 구매할 수 없습니다",
    ),
    (
        "the page already has this plan",
        "이미 이 요금제를 쓰고 있습니다",
    ),
    (
        "the payment does not match the order; it was not applied and is held for review",
        "결제가 주문과 일치하지 않아 적용하지 않고 검토를 위해 보류했습니다",
    ),
    (
        "the payment does not match the order; it is held for review",
        "결제가 주문과 일치하지 않아 검토를 위해 보류했습니다",
    ),
    (
        "only a paid payment can be refunded",
        "결제 완료된 건만 환불할 수 있습니다",
    ),
    (
        "amount must be between 1 and {}",
        "금액은 1 이상 {} 이하여야 합니다",
    ),
    (
        "owners can refund only the whole remaining amount ({})",
        "소유자는 남은 금액 전체({})만 환불할 수 있습니다",
    ),
    (
        "the payment's refundable balance changed; reload and try again",
        "환불 가능 금액이 바뀌었습니다. 새로 고친 뒤 다시 시도해 주세요",
    ),
    (
        "a refund of this payment is already under way; reload and try again",
        "이 결제의 환불이 이미 진행 중입니다. 새로 고친 뒤 다시 시도해 주세요",
    ),
    (
        "the range is outside the picture",
        "요청한 범위가 사진 크기를 벗어납니다",
    ),
    (
        "only a picture can be a cover",
        "사진만 대표 이미지로 쓸 수 있습니다",
    ),
    (
        "the payment provider could not refund the payment",
        "결제사가 환불하지 못했습니다",
    ),
    (
        "refunds are possible within {} days of payment",
        "환불은 결제 후 {}일 이내에만 가능합니다",
    ),
    (
        "refunds are not possible once the wedding has taken place",
        "예식이 끝난 뒤에는 환불할 수 없습니다",
    ),
    ("malformed webhook: {}", "웹훅 형식이 올바르지 않습니다: {}"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_tag() {
        assert_eq!(Lang::from_accept_language(None), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("ko")), Lang::Ko);
        assert_eq!(
            Lang::from_accept_language(Some("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7")),
            Lang::Ko
        );
        assert_eq!(
            Lang::from_accept_language(Some("en-US,en;q=0.9,ko;q=0.8")),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language(Some("fr, ko;q=0.5")), Lang::Ko);
        assert_eq!(Lang::from_accept_language(Some("fr, de")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("ko;q=0")), Lang::En);
    }

    #[test]
    fn patterns_capture_and_fill() {
        assert_eq!(
            korean("page not found").unwrap(),
            "페이지를 찾을 수 없습니다"
        );
        assert_eq!(
            korean("guestbook entry not found").unwrap(),
            "방명록 글을 찾을 수 없습니다"
        );
        assert_eq!(
            korean("must be 8 to 128 characters").unwrap(),
            "8~128자여야 합니다"
        );
        assert_eq!(
            korean("the uploaded object has 10 bytes, 12 were declared").unwrap(),
            "업로드된 크기는 10바이트인데 12바이트로 신고되었습니다"
        );
        assert_eq!(
            korean("must be one of: groom, bride").unwrap(),
            "다음 중 하나여야 합니다: groom, bride"
        );
        assert_eq!(korean("must be text").unwrap(), "문자열이어야 합니다");
        assert!(korean("must be textual").is_none());
        assert!(korean("no such message anywhere").is_none());
    }

    #[test]
    fn text_falls_back_to_english() {
        let t = Text::en("no such message anywhere");
        assert_eq!(t.get(Lang::Ko), "no such message anywhere");
        assert_eq!(Text::new("a", "가").get(Lang::Ko), "가");
        assert_eq!(
            Text::en("account is suspended").get(Lang::Ko),
            "정지된 계정입니다"
        );
    }
}

/// Every error message written in the source has its Korean in the catalog. Scans
/// the calls that take a message (`Error::new`, `Error::validation`, ... and the
/// validators' `with_message`) for their literal or `format!` text.
#[cfg(test)]
mod coverage {
    use super::korean;

    /// Constructor → index of its message argument.
    const CALLS: &[(&str, usize)] = &[
        ("Error::new(", 2),
        ("Error::bad_request(", 1),
        ("Error::conflict(", 1),
        ("Error::unavailable(", 1),
        ("Error::validation(", 1),
        ("Error::forbidden(", 0),
        ("Error::unauthorized(", 0),
        ("with_message(", 0),
        ("invalid(", 1),
    ];

    /// The top-level arguments of the call whose `(` ends at `start`.
    fn arguments(text: &str) -> Vec<String> {
        let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
        let mut args = vec![String::new()];
        for c in text.chars() {
            if in_str {
                args.last_mut().unwrap().push(c);
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => return args,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    args.push(String::new());
                    continue;
                }
                _ => {}
            }
            args.last_mut().unwrap().push(c);
        }
        args
    }

    /// The message an argument spells out, with `{...}` as `{}`; `None` when it is
    /// not written in place (a variable, `e.to_string()`, ...).
    fn message(arg: &str) -> Option<String> {
        let arg = arg.trim();
        let arg = arg
            .strip_prefix("format!(")
            .map(str::trim_start)
            .unwrap_or(arg);
        let arg = arg.strip_prefix("Cow::Borrowed(").unwrap_or(arg);
        let body = arg.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    // A line continuation: the newline and the next line's indent go.
                    Some('\n') => {
                        let rest: String = chars.clone().collect();
                        let trimmed = rest.trim_start();
                        chars = body[body.len() - trimmed.len()..].chars();
                    }
                    Some(other) => out.push(other),
                    None => {}
                },
                '{' => {
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                    out.push_str("{}");
                }
                c => out.push(c),
            }
        }
        Some(out)
    }

    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn every_error_message_in_the_source_has_korean() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut missing = Vec::new();
        let mut checked = 0;
        for (path, text) in &files {
            // Socket and storage errors have their own wording; tests are not answers.
            let text = text.split("#[cfg(test)]").next().unwrap();
            for (call, index) in CALLS {
                for (at, _) in text.match_indices(call) {
                    let preceded = text[..at].chars().last();
                    if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue; // `Storage` + `Error::new(`, `fn invalid(`, ...
                    }
                    if text[..at].ends_with("fn ") {
                        continue;
                    }
                    let args = arguments(&text[at + call.len()..]);
                    let Some(msg) = args.get(*index).and_then(|a| message(a)) else {
                        continue;
                    };
                    checked += 1;
                    if korean(&msg).is_none() {
                        missing.push(format!("{path}: {msg:?}"));
                    }
                }
            }
        }
        assert!(
            checked > 80,
            "only {checked} messages found: the scan is broken"
        );
        assert!(
            missing.is_empty(),
            "add these to the Korean catalog in i18n.rs:\n{}",
            missing.join("\n")
        );
    }
}
