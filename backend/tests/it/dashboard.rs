//! What an admin dashboard is built on: escaped, case-insensitive search on both
//! databases, 422 for unknown filters and sorts, `sort` on lists, one user with their
//! pages, payments and audit trail, audit rows naming the admin, payments by user and
//! page, and daily series in Seoul days.

use chrono::Utc;
use chrono_tz::Asia::Seoul;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

use crate::{
    common::{PASSWORD, TestApp, error_code, session_from},
    pages::published_page,
};

async fn register_as(app: &TestApp, email: &str, name: &str) -> crate::common::Session {
    let out = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "displayName": name}),
            201,
        )
        .await;
    session_from(&out)
}

fn emails(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn user_search_takes_wildcards_literally_and_ignores_case() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let under = format!("kim_minsu.{tag}@example.com");
    let other = format!("kimxminsu.{tag}@example.com");
    register_as(&app, &under, &format!("Kim Minsu {tag}")).await;
    register_as(&app, &other, &format!("김민수 {tag}")).await;
    let search = |q: String| {
        let url = format!("/api/admin/users?q={}", urlencode(&q));
        let app = &app;
        let token = admin.access.clone();
        async move { app.get(&url, Some(&token), 200).await }
    };

    // `_` is a literal underscore, not "any character", and not dropped.
    assert_eq!(
        emails(&search(format!("kim_minsu.{tag}")).await),
        [under.as_str()]
    );
    // `%` is literal too: no address contains it.
    assert_eq!(search(format!("%{tag}")).await["total"], 0);
    // Case does not matter, on PostgreSQL as on SQLite.
    assert_eq!(
        emails(&search(format!("KIM MINSU {}", tag.to_uppercase())).await),
        [under.as_str()]
    );
    assert_eq!(
        emails(&search(format!("KIM_MINSU.{tag}")).await),
        [under.as_str()]
    );

    // Sorting on a whitelisted field, both ways.
    let asc = app
        .get(
            &format!("/api/admin/users?q={tag}&sort=email&order=asc"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(emails(&asc), [under.as_str(), other.as_str()]);
    let desc = app
        .get(
            &format!("/api/admin/users?q={tag}&sort=email&order=desc"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(emails(&desc), [other.as_str(), under.as_str()]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn unknown_filters_values_and_sorts_are_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let victim = app.register().await;
    app.post(
        &format!("/api/admin/users/{}/suspend", victim.user_id),
        Some(&admin.access),
        json!({"reason": "spam"}),
        200,
    )
    .await;
    // `status` is a real filter now: only suspended users come back.
    let suspended = app
        .get(
            "/api/admin/users?status=suspended&perPage=100",
            Some(&admin.access),
            200,
        )
        .await;
    assert!(
        suspended["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["status"] == "suspended")
    );
    assert!(emails(&suspended).contains(&victim.email.as_str()));

    for (url, field) in [
        ("/api/admin/users?stauts=suspended", "stauts"),
        ("/api/admin/users?sort=passwordHash", "sort"),
        ("/api/admin/pages?owner=x", "owner"),
        ("/api/admin/payments?user=x", "user"),
        ("/api/admin/guestbook?page=1&pageid=x", "pageid"),
        ("/api/admin/audit?sort=reason", "sort"),
    ] {
        let out = app.get(url, Some(&admin.access), 422).await;
        assert_eq!(error_code(&out), "validation_failed", "{url}");
        assert_eq!(out["error"]["field"], field, "{url}: {out}");
    }
    for url in [
        "/api/admin/users?status=gone",
        "/api/admin/users?role=root",
        "/api/admin/users?order=sideways",
        "/api/admin/stats/series?days=3",
    ] {
        app.get(url, Some(&admin.access), 422).await;
    }
}

#[tokio::test]
async fn one_user_with_pages_payments_and_audit_trail_naming_the_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let page_id = page["id"].as_str().unwrap();
    let paid = insert_paid_payment(&app, &owner.user_id, page_id, 19_900).await;
    app.post(
        &format!("/api/admin/pages/{page_id}/unpublish"),
        Some(&admin.access),
        json!({"reason": "reported"}),
        200,
    )
    .await;
    app.post(
        &format!("/api/admin/users/{}/suspend", owner.user_id),
        Some(&admin.access),
        json!({"reason": "chargeback"}),
        200,
    )
    .await;

    let detail = app
        .get(
            &format!("/api/admin/users/{}", owner.user_id),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(detail["user"]["id"], owner.user_id);
    assert_eq!(detail["user"]["status"], "suspended");
    assert_eq!(detail["pages"][0]["id"], page_id);
    assert_eq!(detail["payments"][0]["id"], paid);
    let actions: Vec<&str> = detail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.suspend", "page.unpublish"], "{detail}");
    assert_eq!(detail["audit"][0]["adminEmail"], admin.email);
    assert_eq!(detail["audit"][0]["adminName"], "Admin");
    app.get(
        "/api/admin/users/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        Some(&admin.access),
        404,
    )
    .await;

    let audit = app
        .get(
            &format!("/api/admin/audit?targetId={page_id}"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(audit["items"][0]["adminEmail"], admin.email);

    // Payments by user and by page.
    let by_user = app
        .get(
            &format!("/api/admin/payments?userId={}", owner.user_id),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(by_user["total"], 1);
    assert_eq!(by_user["items"][0]["id"], paid);
    let by_page = app
        .get(
            &format!("/api/admin/payments?pageId={page_id}&sort=amount&order=asc"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(by_page["total"], 1);
    let stranger = app.register().await;
    let none = app
        .get(
            &format!("/api/admin/payments?userId={}", stranger.user_id),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(none["total"], 0);
}

async fn insert_paid_payment(app: &TestApp, user_id: &str, page_id: &str, amount: i64) -> String {
    use backend::db::{page::Plan, payment};
    let id = backend::db::new_id();
    let now = Utc::now();
    payment::ActiveModel {
        id: Set(id.clone()),
        page_id: Set(Some(page_id.to_owned())),
        user_id: Set(user_id.to_owned()),
        plan: Set(Plan::Premium),
        order_name: Set("premium".into()),
        amount: Set(amount),
        currency: Set("KRW".into()),
        store_id: Set("store-test".into()),
        status: Set(payment::PaymentStatus::Paid),
        cancelled_amount: Set(0),
        provider_status: Set(Some("PAID".into())),
        failure_reason: Set(None),
        paid_at: Set(Some(now)),
        cancelled_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn daily_series_count_each_kind_per_seoul_day() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let owner = app.register().await;
    let page = published_page(&app, &owner).await;
    let (page_id, slug) = (page["id"].as_str().unwrap(), page["slug"].as_str().unwrap());
    app.post(
        &format!("/api/public/pages/{slug}/rsvp"),
        None,
        json!({"name": "하객", "phone": "010-8888-1234", "attending": true}),
        201,
    )
    .await;
    insert_paid_payment(&app, &owner.user_id, page_id, 9_900).await;

    let today = Utc::now().with_timezone(&Seoul).date_naive();
    let url = format!("/api/admin/stats/series?from={today}&to={today}");
    let series = app.get(&url, Some(&admin.access), 200).await;
    assert_eq!(series["timeZone"], "Asia/Seoul");
    let days = series["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    let day = &days[0];
    assert_eq!(day["date"], today.to_string());
    // The database is shared with other tests: at least what this test did.
    assert!(day["signups"].as_u64().unwrap() >= 2, "{day}");
    assert!(day["pagesCreated"].as_u64().unwrap() >= 1, "{day}");
    assert!(day["pagesPublished"].as_u64().unwrap() >= 1, "{day}");
    assert!(day["rsvps"].as_u64().unwrap() >= 1, "{day}");
    assert!(day["chatTurns"].is_u64());
    assert!(day["revenueKrw"].as_i64().unwrap() >= 9_900, "{day}");

    // A month ending today: every day present, oldest first.
    let month = app
        .get("/api/admin/stats/series", Some(&admin.access), 200)
        .await;
    let days = month["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["date"], today.to_string());
    let yesterday = today - chrono::Duration::days(1);
    app.get(
        &format!("/api/admin/stats/series?from={today}&to={yesterday}"),
        Some(&admin.access),
        422,
    )
    .await;
    app.get(
        "/api/admin/stats/series?from=2020-01-01&to=2026-01-01",
        Some(&admin.access),
        422,
    )
    .await;
}
