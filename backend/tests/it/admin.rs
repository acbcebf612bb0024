use serde_json::json;

use crate::common::{TestApp, error_code};

#[tokio::test]
async fn admin_routes_refuse_anonymous_and_ordinary_users() {
    let app = TestApp::spawn().await;
    let user = app.register().await;
    assert_eq!(
        error_code(&app.get("/api/admin/users", None, 401).await),
        "missing_token"
    );
    assert_eq!(
        error_code(&app.get("/api/admin/users", Some(&user.access), 403).await),
        "forbidden"
    );

    let admin = app.admin().await;
    let page = app
        .get(
            &format!("/api/admin/users?q={}&perPage=5", user.email),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], user.user_id);
    assert_eq!(page["perPage"], 5);
}

#[tokio::test]
async fn admin_list_validates_its_paging() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let body = app
        .get("/api/admin/users?perPage=1000", Some(&admin.access), 422)
        .await;
    assert_eq!(body["error"]["field"], json!("perPage"));
    app.get("/api/admin/users?page=abc", Some(&admin.access), 422)
        .await;
}
