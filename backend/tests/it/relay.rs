//! The chat relay (Redis → sockets) with real Socket.IO clients (Engine.IO v4 over
//! WebSocket), a Redis server of the test's own and the test database: a stalled
//! database stalls no room, a client that stops reading is disconnected instead
//! of silently missing items, and the presence of joined sockets is renewed.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::atomic::Ordering,
    time::Duration,
};

use backend::chat::relay::SLOW_SOCKETS_DISCONNECTED;
use futures::{SinkExt, StreamExt};
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    common::{TestApp, database_url},
    pages::create_page,
};

/// Bound for every wait in these tests (a hang fails the test, it never blocks CI).
const WAIT: Duration = Duration::from_secs(20);

/// A `redis-server` of the test's own on a free port, so heavy publishing stays out of
/// the shared server and other runs' relays.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        let url = format!("redis://127.0.0.1:{port}/0");
        let client = redis::Client::open(url.as_str()).unwrap();
        for _ in 0..100 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return OwnRedis { child, url };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {port} did not start");
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of PostgreSQL that can stop forwarding bytes: the database
/// "stalls" for the backend (queries hang, nothing errors) without touching the server.
struct PausableProxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
}

impl PausableProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, _) = watch::channel(false);
        let gate = paused.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, gate.subscribe()));
                tokio::spawn(pump(sr, cw, gate.subscribe()));
            }
        });
        PausableProxy { addr, paused }
    }

    fn pause(&self, on: bool) {
        self.paused.send_replace(on);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// How the test holds the database still: a paused proxy (PostgreSQL) or every
/// connection of the backend's pool taken (SQLite, a file that cannot be proxied).
enum Stall {
    Proxy(PausableProxy),
    Pool(Vec<sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Sqlite>>),
}

/// A started backend whose database the test can stall, on its own Redis.
async fn app_with_stallable_db(redis: &OwnRedis) -> (TestApp, Option<PausableProxy>) {
    let url = database_url();
    if url.starts_with("sqlite:") {
        let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url)]).await;
        return (app, None);
    }
    // postgres://user:pass@host:port/db → the same through the proxy.
    let at = url.find('@').expect("database url has a host") + 1;
    let slash = at + url[at..].find('/').expect("database url has a name");
    let proxy = PausableProxy::start(url[at..slash].to_owned()).await;
    let through = format!("{}{}{}", &url[..at], proxy.addr, &url[slash..]);
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url), ("DATABASE_URL", &through)]).await;
    (app, Some(proxy))
}

async fn stall(app: &TestApp, proxy: Option<PausableProxy>) -> Stall {
    match proxy {
        Some(p) => {
            p.pause(true);
            Stall::Proxy(p)
        }
        None => {
            let pool = app.state.db.get_sqlite_connection_pool();
            let mut held = Vec::new();
            for _ in 0..pool.options().get_max_connections() {
                held.push(pool.acquire().await.unwrap());
            }
            Stall::Pool(held)
        }
    }
}

fn release(stall: Stall) {
    match stall {
        Stall::Proxy(p) => p.pause(false),
        Stall::Pool(held) => drop(held),
    }
}

/// A minimal Socket.IO v5 client on namespace `/chat`: frames arrive on `frames`; with
/// `reading` false it stops reading its WebSocket (a client that does not keep up).
struct SioClient {
    frames: mpsc::UnboundedReceiver<String>,
    out: mpsc::UnboundedSender<String>,
    reading: watch::Sender<bool>,
}

impl SioClient {
    async fn connect(app: &TestApp, token: &str) -> Self {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
        // A small receive buffer, so a client that stops reading is felt soon.
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(4096).unwrap();
        let stream = tcp.connect(app.addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (reading, mut reading_rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let reading_now = *reading_rx.borrow();
                tokio::select! {
                    msg = out_rx.recv() => match msg {
                        Some(text) => if sink.send(Message::text(text)).await.is_err() { return },
                        None => return,
                    },
                    changed = reading_rx.changed() => if changed.is_err() { return },
                    msg = stream.next(), if reading_now => {
                        let Some(Ok(msg)) = msg else { return };
                        let Ok(text) = msg.into_text() else { continue };
                        if text.as_str() == "2" {
                            let _ = sink.send(Message::text("3")).await;
                        } else if frames_tx.send(text.as_str().to_owned()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut client = SioClient {
            frames,
            out,
            reading,
        };
        client.next_frame(|f| f.starts_with('0')).await;
        client.send(format!("40/chat,{}", json!({"token": token})));
        client.next_frame(|f| f.starts_with("40/chat")).await;
        client
    }

    fn send(&self, frame: String) {
        self.out.send(frame).unwrap();
    }

    /// The next frame matching `pred` (others are skipped); `None` when the
    /// connection ended.
    async fn try_next_frame(&mut self, pred: impl Fn(&str) -> bool) -> Option<String> {
        tokio::time::timeout(WAIT, async {
            while let Some(frame) = self.frames.recv().await {
                if pred(&frame) {
                    return Some(frame);
                }
            }
            None
        })
        .await
        .expect("no frame within the wait bound")
    }

    async fn next_frame(&mut self, pred: impl Fn(&str) -> bool) -> String {
        self.try_next_frame(pred).await.expect("connection ended")
    }

    /// Joins `page-<page_id>` and returns the session id.
    async fn join(&mut self, page_id: &str) -> String {
        let room = format!("page-{page_id}");
        self.send(format!("42/chat,{}", json!(["joinRoom", {"room": room}])));
        let frame = self
            .next_frame(|f| f.starts_with(r#"42/chat,["session-info""#))
            .await;
        event_body(&frame).unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The `seq` of the next relayed agent item.
    async fn next_item_seq(&mut self) -> i64 {
        let frame = self
            .next_frame(|f| f.starts_with(r#"42/chat,["newMessage""#))
            .await;
        event_body(&frame).unwrap()["seq"].as_i64().unwrap()
    }
}

fn event_body(frame: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(frame.strip_prefix("42/chat,")?).ok()?;
    Some(v[1].clone())
}

fn item(session_id: &str, seq: i64, content: &str) -> String {
    json!({"session_id": session_id, "message_id": "01RELAYTEST", "seq": seq, "role": "assistant",
           "type": "text-delta", "content": content})
    .to_string()
}

#[tokio::test]
async fn a_stalled_database_stalls_no_room() {
    let redis = OwnRedis::start().await;
    let (app, proxy) = app_with_stallable_db(&redis).await;
    let owner = app.register().await;
    let page_a = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page_b = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a = SioClient::connect(&app, &owner.access).await;
    let mut b = SioClient::connect(&app, &owner.access).await;
    let session_a = a.join(&page_a).await;
    let session_b = b.join(&page_b).await;
    let mut pubsub = redis.conn().await;
    let publish = |session: &str, seq: i64| (format!("chat:{session}"), item(session, seq, "x"));

    // Room A has had an item relayed; room B has not. Neither needs the database:
    // the relay listens only to channels of rooms joined here, so it knows their rooms.
    let (ch, it) = publish(&session_a, 0);
    let _: i64 = pubsub.publish(ch, it).await.unwrap();
    assert_eq!(a.next_item_seq().await, 0);

    let held = stall(&app, proxy).await;
    for (session, seq) in [(&session_b, 0), (&session_b, 1), (&session_a, 1)] {
        let (ch, it) = publish(session, seq);
        let _: i64 = pubsub.publish(ch, it).await.unwrap();
    }
    // Every item arrives, in order, while the database is still stalled.
    assert_eq!(a.next_item_seq().await, 1);
    assert_eq!(b.next_item_seq().await, 0);
    assert_eq!(b.next_item_seq().await, 1);
    release(held);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_after_the_last_item_it_can_take() {
    let redis = OwnRedis::start().await;
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url)]).await;
    let owner = app.register().await;
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut slow = SioClient::connect(&app, &owner.access).await;
    let session = slow.join(&page).await;
    let mut conn = redis.conn().await;
    let padding = "가".repeat(700);
    let before = SLOW_SOCKETS_DISCONNECTED.load(Ordering::Relaxed);

    // The client stops reading; items are published until its buffer is full.
    slow.reading.send_replace(false);
    let mut seq = 0;
    while SLOW_SOCKETS_DISCONNECTED.load(Ordering::Relaxed) == before {
        assert!(
            seq < 50_000,
            "the relay never noticed the client stopped reading"
        );
        let mut pipe = redis::pipe();
        for _ in 0..200 {
            pipe.publish(format!("chat:{session}"), item(&session, seq, &padding))
                .ignore();
            seq += 1;
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Items published after that must not reach it either.
    for _ in 0..20 {
        let _: i64 = conn
            .publish(format!("chat:{session}"), item(&session, seq, "late"))
            .await
            .unwrap();
        seq += 1;
    }

    // It reads again: what it gets is a gap-free prefix, then the disconnect.
    slow.reading.send_replace(true);
    let mut got = Vec::new();
    loop {
        let frame = slow
            .try_next_frame(|f| {
                f.starts_with(r#"42/chat,["newMessage""#) || f.starts_with("41/chat")
            })
            .await;
        match frame {
            Some(f) if f.starts_with("41/chat") => break,
            Some(f) => got.push(event_body(&f).unwrap()["seq"].as_i64().unwrap()),
            None => break,
        }
    }
    assert!(
        !got.is_empty() && (got.len() as i64) < seq,
        "{} of {seq}",
        got.len()
    );
    let expected: Vec<i64> = (0..got.len() as i64).collect();
    assert_eq!(
        got, expected,
        "the client saw a gap instead of a disconnect"
    );
}

/// `PUBSUB NUMSUB` of a session's channel: how many connections listen to it.
async fn listeners(conn: &mut redis::aio::MultiplexedConnection, session: &str) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("chat:{session}"))
        .query_async::<Vec<(String, i64)>>(conn)
        .await
        .unwrap()
        .remove(0);
    n
}

#[tokio::test]
async fn the_instance_listens_to_a_room_only_while_it_holds_a_member() {
    let redis = OwnRedis::start().await;
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url)]).await;
    let owner = app.register().await;
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut conn = redis.conn().await;

    // The join is answered only once the subscription is confirmed.
    let mut a = SioClient::connect(&app, &owner.access).await;
    let session = a.join(&page).await;
    assert_eq!(listeners(&mut conn, &session).await, 1);
    let mut b = SioClient::connect(&app, &owner.access).await;
    assert_eq!(b.join(&page).await, session);
    assert_eq!(listeners(&mut conn, &session).await, 1, "one per instance");

    // One member leaves: the other still gets the room's items.
    drop(a);
    let _: i64 = conn
        .publish(format!("chat:{session}"), item(&session, 0, "x"))
        .await
        .unwrap();
    assert_eq!(b.next_item_seq().await, 0);
    assert_eq!(listeners(&mut conn, &session).await, 1);

    // The last member leaves: the instance stops listening.
    drop(b);
    let deadline = tokio::time::Instant::now() + WAIT;
    while listeners(&mut conn, &session).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still subscribed after the last member left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The samples of `mocheong_chat_relay_lag_seconds` so far (process-wide recorder).
fn relay_lag_samples() -> f64 {
    backend::metrics::install()
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("mocheong_chat_relay_lag_seconds_count "))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Items stamped with their publication time (as the worker's and the deadline's
/// scripts stamp them) are counted in the lag histogram when relayed; unstamped ones
/// are relayed all the same.
#[tokio::test]
async fn relayed_items_record_their_lag_from_the_publication_stamp() {
    let redis = OwnRedis::start().await;
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url)]).await;
    let owner = app.register().await;
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut client = SioClient::connect(&app, &owner.access).await;
    let session = client.join(&page).await;
    let mut conn = redis.conn().await;
    let (secs, micros): (String, String) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now_ms = secs.parse::<i64>().unwrap() * 1000 + micros.parse::<i64>().unwrap() / 1000;

    let before = relay_lag_samples();
    let unstamped = item(&session, 0, "a");
    let stamped = format!(
        r#"{{"published_at_ms":{now_ms},{}"#,
        &item(&session, 1, "b")[1..]
    );
    for text in [unstamped, stamped] {
        let _: i64 = conn.publish(format!("chat:{session}"), text).await.unwrap();
    }
    assert_eq!(client.next_item_seq().await, 0);
    assert_eq!(client.next_item_seq().await, 1);
    // Other tests of this process relay items too: at least ours.
    assert!(relay_lag_samples() >= before + 1.0);
}

/// A revocation whose event never comes (the editor row deleted straight in the
/// database, as if Redis had lost `page.access.revoked`): the periodic re-check takes
/// the editor's socket out of the room within its interval; the owner's stays.
#[tokio::test]
async fn an_editor_removed_without_an_event_is_taken_out_by_the_membership_recheck() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let redis = OwnRedis::start().await;
    let app = TestApp::spawn_with(&[
        ("REDIS_URL", &redis.url),
        ("CHAT_MEMBERSHIP_RECHECK_MS", "200"),
    ])
    .await;
    let owner = app.register().await;
    let editor = app.register().await;
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::pages::add_editor(&app, &owner, &page, &editor).await;
    let mut owner_socket = SioClient::connect(&app, &owner.access).await;
    let mut editor_socket = SioClient::connect(&app, &editor.access).await;
    let session = owner_socket.join(&page).await;
    editor_socket.join(&page).await;
    // Several rounds pass while both are members: nobody is taken out.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut conn = redis.conn().await;
    let _: i64 = conn
        .publish(format!("chat:{session}"), item(&session, 0, "both"))
        .await
        .unwrap();
    assert_eq!(editor_socket.next_item_seq().await, 0);
    assert_eq!(owner_socket.next_item_seq().await, 0);

    backend::db::page_editor::Entity::delete_many()
        .filter(backend::db::page_editor::Column::PageId.eq(page.as_str()))
        .filter(backend::db::page_editor::Column::UserId.eq(editor.user_id.as_str()))
        .exec(&app.state.db)
        .await
        .unwrap();
    let closed = editor_socket
        .next_frame(|f| f.starts_with(r#"42/chat,["room-closed""#))
        .await;
    assert_eq!(event_body(&closed).unwrap()["room"], format!("page-{page}"));

    let _: i64 = conn
        .publish(format!("chat:{session}"), item(&session, 1, "owner only"))
        .await
        .unwrap();
    assert_eq!(owner_socket.next_item_seq().await, 1, "the owner stays");
    // The owner got it, so the relay handed it to the room: the editor is not in it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(frame) = editor_socket.frames.try_recv() {
        assert!(
            !frame.starts_with(r#"42/chat,["newMessage""#),
            "the removed editor still received {frame}"
        );
    }
}

#[tokio::test]
async fn presence_entries_of_joined_sockets_are_renewed() {
    let redis = OwnRedis::start().await;
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url)]).await;
    let (owner, editor) = (app.register().await, app.register().await);
    let page = create_page(&app, &owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::pages::add_editor(&app, &owner, &page, &editor).await;
    let mut conn = redis.conn().await;
    // Two sockets of one user and one of another: each user is one entry.
    let mut sockets = Vec::new();
    for user in [&owner, &owner, &editor] {
        let mut s = SioClient::connect(&app, &user.access).await;
        s.join(&page).await;
        sockets.push(s);
    }
    let key = format!("presence:page-{page}");
    // The joins' own writes are done (they come after the join's answer), then the
    // entries are removed: only a heartbeat can bring them back.
    tokio::time::timeout(WAIT, async {
        while conn.zcard::<_, i64>(&key).await.unwrap() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the joins wrote their presence");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _: i64 = conn.del(&key).await.unwrap();

    // The next heartbeat (every 10 s) writes them back, expiring in the future.
    let deadline = tokio::time::Instant::now() + WAIT;
    let entries = loop {
        let entries: Vec<(String, i64)> = conn.zrange_withscores(&key, 0, -1).await.unwrap();
        if !entries.is_empty() || tokio::time::Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut users: Vec<&str> = entries.iter().map(|(u, _)| u.as_str()).collect();
    users.sort_unstable();
    let mut expected = vec![owner.user_id.as_str(), editor.user_id.as_str()];
    expected.sort_unstable();
    assert_eq!(users, expected, "{entries:?}");
    let now_ms = chrono::Utc::now().timestamp_millis();
    assert!(
        entries.iter().all(|(_, expiry)| *expiry > now_ms),
        "{entries:?}"
    );
}
