//! Parents' contacts (혼주 연락처) with per-field visibility, the 故 marker, and
//! KakaoPay/Toss transfer links on gift accounts: clear 422s for bad input; guests'
//! views, the share preview, the calendar and the assistant's context leave hidden
//! fields out.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    common::{Session, TestApp, error_code},
    pages::page_body,
};

const FATHER_PHONE: &str = "010-5555-6666";
const MOTHER_PHONE: &str = "010-7777-8888";
const BRIDE_FATHER_PHONE: &str = "010-9999-0000";

/// The groom's father with a shown phone, his mother deceased (with a phone on file
/// that must never be shown); the bride's father's name hidden, his phone on file
/// but hidden.
fn body_with_parents() -> Value {
    let mut body = page_body();
    body["groom"] = json!({
        "name": "김민수", "father": "김아버지", "mother": "이어머니",
        "fatherDetails": {"phone": FATHER_PHONE, "showPhone": true},
        "motherDetails": {"phone": MOTHER_PHONE, "deceased": true},
    });
    body["bride"] = json!({
        "name": "이지영", "father": "이숨김", "mother": "박어머니",
        "fatherDetails": {"phone": BRIDE_FATHER_PHONE, "showName": false},
    });
    body["giftAccounts"] = json!([
        {"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789",
         "kakaopayUrl": "https://qr.kakaopay.com/FZx2bq1Tq",
         "tossUrl": "supertoss://send?bank=%EC%8B%A0%ED%95%9C&accountNo=110123456789&origin=qr"},
        {"side": "bride", "holder": "이지영", "bank": "국민은행", "number": "123-45-678901",
         "tossUrl": "https://toss.me/jiyoung"}
    ]);
    body
}

async fn publish(app: &TestApp, owner: &Session, body: Value) -> Value {
    let page = app.post("/api/pages", Some(&owner.access), body, 201).await;
    let id = page["id"].as_str().unwrap();
    app.post(
        &format!("/api/pages/{id}/publish"),
        Some(&owner.access),
        json!({}),
        200,
    )
    .await;
    page
}

#[tokio::test]
async fn guests_see_only_what_the_couple_shows_of_the_parents() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = publish(&app, &owner, body_with_parents()).await;
    let (id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());

    // The owner's view keeps everything as entered.
    assert_eq!(page["groom"]["motherDetails"]["phone"], MOTHER_PHONE);
    assert_eq!(page["groom"]["motherDetails"]["deceased"], true);
    assert_eq!(page["bride"]["fatherDetails"]["showName"], false);
    assert_eq!(
        page["groom"]["fatherDetails"]["showName"], true,
        "shown by default"
    );
    assert_eq!(
        page["giftAccounts"][0]["kakaopayUrl"],
        "https://qr.kakaopay.com/FZx2bq1Tq"
    );

    let public = app
        .get(&format!("/api/public/pages/{slug}"), None, 200)
        .await;
    let groom = &public["groom"];
    assert_eq!(groom["father"], "김아버지");
    assert_eq!(
        groom["fatherDetails"],
        json!({"displayName": "김아버지", "deceased": false, "phone": FATHER_PHONE})
    );
    assert_eq!(groom["mother"], "이어머니");
    assert_eq!(
        groom["motherDetails"],
        json!({"displayName": "故 이어머니", "deceased": true})
    );
    let bride = &public["bride"];
    assert!(
        bride["father"].is_null(),
        "a hidden name is left out: {bride}"
    );
    assert!(
        bride.get("fatherDetails").is_none(),
        "nothing of him to show: {bride}"
    );
    assert_eq!(bride["motherDetails"]["displayName"], "박어머니");
    assert_eq!(
        public["giftAccounts"][1]["tossUrl"],
        "https://toss.me/jiyoung"
    );
    let text = public.to_string();
    for hidden in [MOTHER_PHONE, BRIDE_FATHER_PHONE, "이숨김"] {
        assert!(!text.contains(hidden), "{hidden} reached the public page");
    }

    // Share preview, its HTML and the calendar name only the visible parents.
    let share = app
        .get(&format!("/api/public/pages/{slug}/share"), None, 200)
        .await;
    assert_eq!(
        share["hosts"],
        "신랑측 혼주 김아버지 · 故 이어머니 / 신부측 혼주 박어머니"
    );
    for path in ["share.html", "calendar.ics"] {
        let text = app
            .http
            .get(format!("{}/api/public/pages/{slug}/{path}", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // iCalendar folds long lines and escapes commas; unfold before looking.
        let text = text.replace("\r\n ", "");
        assert!(text.contains("故 이어머니"), "{path}: {text}");
        for hidden in ["이숨김", MOTHER_PHONE, BRIDE_FATHER_PHONE, FATHER_PHONE] {
            assert!(!text.contains(hidden), "{path} names {hidden}");
        }
    }

    // The assistant's context: names for the couple, a phone only when it is shown.
    let ctx = app
        .get(
            &format!("/api/pages/{id}/context"),
            Some(&owner.access),
            200,
        )
        .await;
    let couple = &ctx["couple"];
    assert_eq!(couple["groom"]["fatherDetails"]["phone"], FATHER_PHONE);
    assert_eq!(
        couple["groom"]["motherDetails"],
        json!({"deceased": true, "phone": null})
    );
    assert!(couple["bride"]["fatherDetails"]["phone"].is_null());
    let text = ctx.to_string();
    assert!(
        !text.contains(MOTHER_PHONE) && !text.contains(BRIDE_FATHER_PHONE),
        "{text}"
    );

    // Hiding the phone again takes it off the public page.
    let mut groom = page["groom"].clone();
    groom["fatherDetails"]["showPhone"] = json!(false);
    app.call(
        Method::PATCH,
        &format!("/api/pages/{id}"),
        Some(&owner.access),
        Some(json!({"groom": groom})),
        200,
    )
    .await;
    let public = app
        .get(&format!("/api/public/pages/{slug}"), None, 200)
        .await;
    assert!(!public.to_string().contains(FATHER_PHONE));
    assert_eq!(
        public["groom"]["fatherDetails"],
        json!({"displayName": "김아버지", "deceased": false})
    );
}

#[tokio::test]
async fn pages_saved_before_parents_details_read_as_before() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    // The body every client sent so far: parents as plain names.
    let page = publish(&app, &owner, page_body()).await;
    assert!(page["groom"]["fatherDetails"].is_null());
    assert!(page["giftAccounts"][0]["tossUrl"].is_null());
    let public = app
        .get(
            &format!("/api/public/pages/{}", page["slug"].as_str().unwrap()),
            None,
            200,
        )
        .await;
    assert_eq!(public["groom"]["father"], "김아버지");
    assert_eq!(public["groom"]["fatherDetails"]["displayName"], "김아버지");
    assert!(public["bride"].get("fatherDetails").is_none());
}

#[tokio::test]
async fn bad_parents_details_and_transfer_links_are_clear_422s() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"groom": {"name": "김민수", "fatherDetails": {"phone": FATHER_PHONE}}}),
            "groom.fatherDetails",
            "parent_name",
        ),
        (
            json!({"groom": {"name": "김민수", "mother": "이어머니", "motherDetails": {"showPhone": true}}}),
            "groom.motherDetails.showPhone",
            "no_phone",
        ),
        (
            json!({"bride": {"name": "이지영", "father": "이아버지",
            "fatherDetails": {"phone": FATHER_PHONE, "deceased": true, "showPhone": true}}}),
            "bride.fatherDetails.showPhone",
            "deceased_phone",
        ),
        (
            json!({"groom": {"name": "김민수", "father": "김아버지", "fatherDetails": {"phone": "call me"}}}),
            "groom.fatherDetails.phone",
            "phone",
        ),
        (
            json!({"giftAccounts": [{"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789",
            "kakaopayUrl": "https://qr.kakaopay.com.evil.example/FZx"}]}),
            "giftAccounts[0].kakaopayUrl",
            "kakaopay_url",
        ),
        (
            json!({"giftAccounts": [{"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789",
            "tossUrl": "javascript:alert(1)"}]}),
            "giftAccounts[0].tossUrl",
            "toss_url",
        ),
        // An app link that would send the money to another account.
        (
            json!({"giftAccounts": [{"side": "groom", "holder": "김민수", "bank": "신한은행", "number": "110-123-456789",
            "tossUrl": "supertoss://send?bank=신한&accountNo=999999999"}]}),
            "giftAccounts[0].tossUrl",
            "toss_account",
        ),
    ];
    for (change, field, code) in cases {
        let mut body = page_body();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = app
            .http
            .post(format!("{}/api/pages", app.base))
            .bearer_auth(&owner.access)
            .header("accept-language", "ko")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{field}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(error_code(&err), "validation_failed", "{err}");
        let fields = err["error"]["details"]["fields"].as_array().unwrap();
        let found = fields
            .iter()
            .find(|f| f["field"] == field)
            .unwrap_or_else(|| panic!("{field} not in {err}"));
        assert_eq!(found["code"], code, "{err}");
        // Korean, as asked (every message has its Korean).
        let message = found["message"].as_str().unwrap();
        assert!(
            message.chars().any(|c| ('가'..='힣').contains(&c)),
            "{message}"
        );
    }
}
