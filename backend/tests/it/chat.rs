//! Chat storage rules that need no socket (the gateway itself is tested end to end in
//! `e2e/`, with real Socket.IO clients).

use backend::{
    chat::{
        outbox::claim,
        persist::store_completion,
        store::{active_session, finish_turn, store_user_message},
    },
    db::{
        chat_message::{self, Status},
        chat_session, chat_turn,
    },
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::{common::TestApp, pages::create_page};

#[tokio::test]
async fn simultaneous_first_joins_of_a_page_share_one_session() {
    let app = TestApp::spawn_with(&[]).await;
    let owner = app.register().await;
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let joins = (0..8).map(|_| active_session(&app.state.db, &page, &owner.user_id, false));
    let sessions = futures::future::join_all(joins).await;
    let ids: Vec<String> = sessions.into_iter().map(|s| s.unwrap().id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let stored = chat_session::Entity::find()
        .filter(chat_session::Column::PageId.eq(page.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Asking for a new conversation does start one, and it becomes the active one.
    let fresh = active_session(&app.state.db, &page, &owner.user_id, true)
        .await
        .unwrap();
    assert_ne!(fresh.id, ids[0]);
    let again = active_session(&app.state.db, &page, &owner.user_id, false)
        .await
        .unwrap();
    assert_eq!(again.id, fresh.id);
}

/// A user message, stored the way the gateway stores it.
async fn question(app: &TestApp) -> (String, String) {
    let owner = app.register().await;
    let page = create_page(app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = active_session(&app.state.db, &page, &owner.user_id, false)
        .await
        .unwrap();
    let (message, is_new) = store_user_message(
        &app.state.db,
        &session.id,
        &page,
        &owner.user_id,
        "언제예요?",
        None,
    )
    .await
    .unwrap();
    assert!(is_new);
    (message.id, session.id)
}

#[tokio::test]
async fn an_accepted_message_has_its_hand_off_recorded_with_it() {
    let app = TestApp::spawn_with(&[]).await;
    let (mid, session) = question(&app).await;
    let turn = chat_turn::Entity::find_by_id(mid.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the outbox row is written with the message");
    assert_eq!(turn.session_id, session);
    assert!(turn.handoff_due_ms.is_some(), "due for hand-off at once");

    // The same client_msg_id again: the stored message, no second turn.
    let owner = chat_message::Entity::find_by_id(mid.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let (first, _) = store_user_message(
        &app.state.db,
        &session,
        &owner.page_id,
        owner.user_id.as_deref().unwrap(),
        "hi",
        Some("c-1"),
    )
    .await
    .unwrap();
    let (again, is_new) = store_user_message(
        &app.state.db,
        &session,
        &owner.page_id,
        owner.user_id.as_deref().unwrap(),
        "hi",
        Some("c-1"),
    )
    .await
    .unwrap();
    assert!(!is_new);
    assert_eq!(first.id, again.id);
}

#[tokio::test]
async fn of_simultaneous_claims_of_a_hand_off_exactly_one_wins() {
    let app = TestApp::spawn_with(&[]).await;
    let (mid, _) = question(&app).await;
    let now = chrono::Utc::now().timestamp_millis() + 10;
    let claims = (0..6).map(|i| {
        let db = app.state.db.clone();
        let mid = mid.clone();
        async move { claim(&db, &format!("instance-{i}"), &mid, now, 5_000).await }
    });
    let won: Vec<bool> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    // While the lease lives nobody else takes it; once it ran out (a dead instance),
    // another does.
    assert!(
        !claim(&app.state.db, "late", &mid, now + 4_999, 5_000)
            .await
            .unwrap()
    );
    assert!(
        claim(&app.state.db, "rescuer", &mid, now + 5_001, 5_000)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_late_answer_to_a_failed_turn_is_not_stored() {
    let app = TestApp::spawn_with(&[]).await;
    let (mid, session) = question(&app).await;
    assert!(
        finish_turn(&app.state.db, &mid, Status::Failed, Some("deadline".into()))
            .await
            .unwrap()
    );
    // A second failure (another instance's sweeper) changes nothing.
    assert!(
        !finish_turn(&app.state.db, &mid, Status::Failed, None)
            .await
            .unwrap()
    );
    let done = json!({"session_id": session, "message_id": mid, "seq": 3, "role": "assistant",
        "type": "done", "content": "too late", "components": [], "stopped": false});
    store_completion(&app.state, &done).await.unwrap();
    let rows = chat_message::Entity::find()
        .filter(chat_message::Column::SessionId.eq(session.as_str()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "no assistant row: {rows:?}");
    assert_eq!(rows[0].status, Status::Failed);
    assert!(
        chat_turn::Entity::find_by_id(mid)
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none(),
        "the turn is closed"
    );
}

#[tokio::test]
async fn an_answer_in_time_is_stored_once_and_closes_the_turn() {
    let app = TestApp::spawn_with(&[]).await;
    let (mid, session) = question(&app).await;
    let done = json!({"session_id": session, "message_id": mid, "seq": 3, "role": "assistant",
        "type": "done", "content": "5월 15일입니다", "components": [], "stopped": false});
    store_completion(&app.state, &done).await.unwrap();
    store_completion(&app.state, &done).await.unwrap();
    let rows = chat_message::Entity::find()
        .filter(chat_message::Column::SessionId.eq(session.as_str()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .any(|m| m.id == mid && m.status == Status::Answered)
    );
    assert!(
        rows.iter()
            .any(|m| m.answer_to.as_deref() == Some(mid.as_str()))
    );
    // A deadline failure after the answer does nothing.
    assert!(
        !finish_turn(&app.state.db, &mid, Status::Failed, None)
            .await
            .unwrap()
    );
}
