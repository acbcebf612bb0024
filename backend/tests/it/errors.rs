//! Errors people can read: every invalid field listed, messages in Korean or English
//! by `Accept-Language`, the same stable codes, no serde wording, retry times on 429.

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::{
    common::{PASSWORD, TestApp, unique_email},
    pages::{page_body, published_page},
};

/// Sends `body` (or none) with an optional `Accept-Language`; returns status, the
/// `Vary` and `Retry-After` headers and the JSON body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    lang: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut req = app.http.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(l) = lang {
        req = req.header(header::ACCEPT_LANGUAGE, l);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

/// `(field, code)` of every listed field.
fn listed(body: &Value) -> Vec<(String, String)> {
    body["error"]["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no details.fields: {body}"))
        .iter()
        .map(|f| {
            assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{f}");
            (
                f["field"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect()
}

/// No Rust or serde wording reaches people.
fn assert_readable(body: &Value) {
    let text = body.to_string();
    for internal in [
        "invalid type",
        "expected i32",
        "expected u64",
        "premature end",
        "at line",
        "struct ",
        "Failed to deserialize",
    ] {
        assert!(!text.contains(internal), "{internal:?} in {text}");
    }
}

fn has_hangul(text: &str) -> bool {
    text.chars().any(|c| ('가'..='힣').contains(&c))
}

#[tokio::test]
async fn every_invalid_field_is_listed_and_the_first_is_field() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "not-an-email", "password": "short", "displayName": ""});
    let (status, _, out) = send(
        &app,
        Method::POST,
        "/api/auth/register",
        None,
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "validation_failed");
    assert_eq!(
        listed(&out),
        pairs(&[
            ("displayName", "display_name"),
            ("email", "email"),
            ("password", "length")
        ])
    );
    assert_eq!(out["error"]["field"], "displayName");
    let password = &out["error"]["details"]["fields"][2];
    assert_eq!(password["message"], "must be 8 to 128 characters");
    assert_readable(&out);
}

#[tokio::test]
async fn messages_follow_accept_language_and_codes_do_not() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "not-an-email", "password": "short", "displayName": "Kim"});
    let mut answers = Vec::new();
    for lang in [
        None,
        Some("en-US,en;q=0.9"),
        Some("ko-KR,ko;q=0.9,en;q=0.8"),
    ] {
        let res = app
            .http
            .post(format!("{}/api/auth/register", app.base))
            .headers(
                lang.map(|l| {
                    [(header::ACCEPT_LANGUAGE, l.parse().unwrap())]
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default(),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        assert!(
            res.headers()
                .get_all(header::VARY)
                .iter()
                .any(|v| v.to_str().unwrap().contains("accept-language")),
            "Vary: Accept-Language"
        );
        answers.push(res.json::<Value>().await.unwrap());
    }
    let [default, en, ko] = &answers[..] else {
        unreachable!()
    };
    assert_eq!(default, en, "English is the default");
    assert_eq!(listed(ko), listed(en), "fields and codes are the same");
    assert_eq!(ko["error"]["code"], en["error"]["code"]);
    assert_eq!(
        en["error"]["message"],
        "email: must be a valid email address (and 1 more)"
    );
    assert_eq!(
        ko["error"]["message"],
        "email: 올바른 이메일 주소여야 합니다 (외 1개)"
    );
    assert_eq!(
        ko["error"]["details"]["fields"][1]["message"],
        "8~128자여야 합니다"
    );

    // Errors of the handlers, not only of validation, are translated.
    let (status, _, out) = send(
        &app,
        Method::GET,
        "/api/pages/01HZZZZZZZZZZZZZZZZZZZZZZZ",
        None,
        Some("ko"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(out["error"]["code"], "missing_token");
    assert!(
        has_hangul(out["error"]["message"].as_str().unwrap()),
        "{out}"
    );
    let owner = app.register().await;
    let (status, _, out) = send(
        &app,
        Method::GET,
        "/api/pages/01HZZZZZZZZZZZZZZZZZZZZZZZ",
        Some(&owner.access),
        Some("ko"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(out["error"]["code"], "not_found");
    assert_eq!(out["error"]["message"], "페이지를 찾을 수 없습니다");
}

#[tokio::test]
async fn query_errors_name_the_parameter() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    for (query, code) in [
        ("perPage=abc", "invalid_type"),
        ("perPage=0", "range"),
        ("perPage=101", "range"),
        ("page=-1", "invalid_type"),
    ] {
        let path = format!("/api/pages?{query}");
        let (status, _, out) =
            send(&app, Method::GET, &path, Some(&owner.access), None, None).await;
        assert_eq!(status, 422, "{query}: {out}");
        let field = query.split('=').next().unwrap();
        assert_eq!(out["error"]["field"], field, "{query}: {out}");
        assert_eq!(listed(&out), pairs(&[(field, code)]), "{query}");
        assert_readable(&out);
    }
    let (_, _, out) = send(
        &app,
        Method::GET,
        "/api/pages?perPage=0",
        Some(&owner.access),
        None,
        None,
    )
    .await;
    assert_eq!(
        out["error"]["details"]["fields"][0]["message"],
        "must be between 1 and 100"
    );
}

#[tokio::test]
async fn mistyped_fields_are_422_naming_them_however_deep() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let mut nested = page_body();
    nested["venue"]["lat"] = json!("north");
    let mut object = page_body();
    object["groom"] = json!("김민수");
    let mut listed_item = page_body();
    listed_item["giftAccounts"][0]["side"] = json!("uncle");
    let mut missing = page_body();
    missing["bride"].as_object_mut().unwrap().remove("name");
    let cases = [
        (nested, "venue.lat", "invalid_type", "must be a number"),
        (object, "groom", "invalid_type", "must be an object"),
        (
            listed_item,
            "giftAccounts[0].side",
            "invalid_choice",
            "must be one of: groom, bride",
        ),
        (missing, "bride.name", "required", "is required"),
    ];
    for (body, field, code, message) in cases {
        let (status, _, out) = send(
            &app,
            Method::POST,
            "/api/pages",
            Some(&owner.access),
            None,
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{field}: {out}");
        assert_eq!(out["error"]["field"], field, "{out}");
        assert_eq!(listed(&out), pairs(&[(field, code)]));
        assert_eq!(out["error"]["details"]["fields"][0]["message"], message);
        assert_readable(&out);
    }
    // Not JSON at all is still 400.
    let res = app
        .http
        .post(format!("{}/api/pages", app.base))
        .bearer_auth(&owner.access)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"groom\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["error"]["code"], "invalid_json");
    assert_readable(&out);
}

#[tokio::test]
async fn a_datetime_local_value_is_refused_with_a_clear_message() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let mut body = page_body();
    body["weddingAt"] = json!("2027-05-15T12:30");
    for (lang, expected) in [
        (
            "en",
            "must be a date and time with its UTC offset, e.g. 2027-05-15T12:30:00+09:00",
        ),
        (
            "ko",
            "UTC 오프셋이 붙은 날짜와 시간이어야 합니다 (예: 2027-05-15T12:30:00+09:00)",
        ),
    ] {
        let (status, _, out) = send(
            &app,
            Method::POST,
            "/api/pages",
            Some(&owner.access),
            Some(lang),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{out}");
        assert_eq!(listed(&out), pairs(&[("weddingAt", "invalid_datetime")]));
        assert_eq!(out["error"]["details"]["fields"][0]["message"], expected);
        assert_readable(&out);
    }
}

#[tokio::test]
async fn public_forms_name_the_field_that_is_wrong() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let slug = page["slug"].as_str().unwrap();

    // A blank name is reported on `name`, not on `message`.
    let guestbook = format!("/api/public/pages/{slug}/guestbook");
    let body = json!({"name": "   ", "message": "축하해요", "password": "1234"});
    let (status, _, out) = send(&app, Method::POST, &guestbook, None, None, Some(body)).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "name");
    assert_eq!(listed(&out), pairs(&[("name", "blank")]));
    let body = json!({"name": " ", "message": " ", "password": "1234"});
    let (_, _, out) = send(&app, Method::POST, &guestbook, None, None, Some(body)).await;
    assert_eq!(
        listed(&out),
        pairs(&[("message", "blank"), ("name", "blank")])
    );

    // A number sent as a string in the open RSVP form names `partySize`.
    let rsvp = format!("/api/public/pages/{slug}/rsvp");
    let body =
        json!({"name": "박하객", "phone": "010-5555-6666", "attending": true, "partySize": "2"});
    let (status, _, out) = send(&app, Method::POST, &rsvp, None, None, Some(body)).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(listed(&out), pairs(&[("partySize", "invalid_type")]));
    assert_readable(&out);
    let body =
        json!({"name": "박하객", "phone": "010-5555-6666", "attending": true, "partySize": 11});
    let (status, _, out) = send(&app, Method::POST, &rsvp, None, None, Some(body)).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(listed(&out), pairs(&[("partySize", "range")]));
}

#[tokio::test]
async fn rate_limited_answers_say_when_to_retry() {
    let app = TestApp::spawn_with(&[("LOGIN_RATE_PER_IP", "1")]).await;
    let login = json!({"email": unique_email(), "password": PASSWORD});
    let (first, _, _) = send(
        &app,
        Method::POST,
        "/api/auth/login",
        None,
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(first, 401);
    let (status, header, out) = send(
        &app,
        Method::POST,
        "/api/auth/login",
        None,
        Some("ko"),
        Some(login),
    )
    .await;
    assert_eq!(status, 429, "{out}");
    assert_eq!(out["error"]["code"], "rate_limited");
    let secs = out["error"]["retryAfter"].as_u64().expect("retryAfter");
    assert!(secs >= 1, "{out}");
    assert_eq!(header.as_deref(), Some(secs.to_string().as_str()));
    assert_eq!(
        out["error"]["message"],
        format!("요청이 너무 많습니다. {secs}초 후에 다시 시도해 주세요")
    );
}
