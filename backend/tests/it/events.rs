//! Notification streams (`GET /api/events/sse`) across two backend instances sharing
//! one database and a real Redis. Events are raised through real routes (a guest signs
//! the guestbook on instance 2) and read from streams held by instance 1.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::time::timeout;

use crate::{
    common::{Session, TestApp, error_code, redis_url},
    pages::published_page,
};

/// Every wait in this file is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Guestbook posts are rate-limited per IP; every test posts from 127.0.0.1.
const WRITES: (&str, &str) = ("PUBLIC_WRITE_RATE_PER_IP", "10000");

/// One frame of a `text/event-stream`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Frame {
    pub(crate) event: Option<String>,
    id: Option<String>,
    pub(crate) data: String,
    comments: Vec<String>,
}

impl Frame {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

/// A small SSE reader over a streaming reqwest response.
pub(crate) struct SseReader {
    res: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// The next frame, or `None` when the server closed the stream.
    pub(crate) async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut frame = Frame::default();
                for line in raw.lines().filter(|l| !l.is_empty()) {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "" => frame.comments.push(value.to_owned()),
                        "event" => frame.event = Some(value.to_owned()),
                        "id" => frame.id = Some(value.to_owned()),
                        "data" => {
                            if !frame.data.is_empty() {
                                frame.data.push('\n');
                            }
                            frame.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                return Some(frame);
            }
            let chunk = self.res.chunk().await.ok()??;
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
        }
    }

    /// The next `guestbook.posted` event, failing the test after [`WAIT`]. Comments
    /// are skipped, and so are other events: the `page.published` of the test's own
    /// set-up may be delivered just after the stream opens.
    async fn next_event(&mut self) -> Frame {
        timeout(WAIT, async {
            loop {
                let frame = self.next_frame().await.expect("stream stays open");
                if frame.event.as_deref() == Some("guestbook.posted") {
                    return frame;
                }
            }
        })
        .await
        .expect("an event arrives in time")
    }
}

pub(crate) enum Cred<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
    Ticket(&'a str),
}

pub(crate) async fn try_open(
    app: &TestApp,
    cred: Cred<'_>,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = app.http.get(format!("{}/api/events/sse", app.base));
    req = match cred {
        Cred::Bearer(t) => req.bearer_auth(t),
        Cred::Cookie(t) => req.header("cookie", format!("theme=dark; mocheong_access={t}")),
        Cred::Ticket(t) => req.query(&[("ticket", t)]),
    };
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    timeout(WAIT, req.send())
        .await
        .expect("headers arrive in time")
        .expect("request sent")
}

/// Opens a stream and waits for its greeting, so it is registered when this returns.
pub(crate) async fn open(app: &TestApp, cred: Cred<'_>, last_event_id: Option<&str>) -> SseReader {
    let res = try_open(app, cred, last_event_id).await;
    assert_eq!(
        res.status(),
        200,
        "stream refused: {}",
        res.text().await.unwrap_or_default()
    );
    let headers = res.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    let mut reader = SseReader {
        res,
        buf: String::new(),
    };
    let hello = timeout(WAIT, reader.next_frame())
        .await
        .expect("greeting in time")
        .expect("greeting");
    assert_eq!(hello.comments, ["connected"]);
    reader
}

async fn ticket(app: &TestApp, session: &Session) -> String {
    let out = app
        .post("/api/events/ticket", Some(&session.access), json!({}), 201)
        .await;
    out["ticket"].as_str().expect("ticket").to_owned()
}

/// Signs the guestbook of `slug` on `app`; returns the entry id.
async fn sign(app: &TestApp, slug: &str, message: &str) -> String {
    let out = app
        .post(
            &format!("/api/public/pages/{slug}/guestbook"),
            None,
            json!({"name": "하객", "message": message, "password": "1234"}),
            201,
        )
        .await;
    out["id"].as_str().unwrap().to_owned()
}

/// A published page of `owner`; returns its slug.
async fn page_of(app: &TestApp, owner: &Session) -> String {
    published_page(app, owner).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned()
}

async fn status(app: &TestApp, admin: &Session) -> Value {
    app.get("/api/admin/events/status", Some(&admin.access), 200)
        .await
}

/// Polls the admin status of `app` until `check` holds (bounded by [`WAIT`]).
async fn wait_for_status(app: &TestApp, admin: &Session, check: impl Fn(&Value) -> bool) -> Value {
    timeout(WAIT, async {
        loop {
            let s = status(app, admin).await;
            if check(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("status reached in time")
}

async fn two_instances(extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    let url = redis_url();
    let mut vars = vec![("REDIS_URL", url.as_str()), WRITES];
    vars.extend_from_slice(extra);
    (
        TestApp::spawn_with(&vars).await,
        TestApp::spawn_with(&vars).await,
    )
}

#[tokio::test]
async fn an_event_raised_on_one_instance_reaches_every_tab_on_another() {
    let (one, two) = two_instances(&[]).await;
    let owner = one.register().await;
    let stranger = one.register().await;
    let admin = one.admin().await;
    let slug = page_of(&one, &owner).await;
    let stranger_slug = page_of(&one, &stranger).await;

    // Two tabs of the owner, each authenticated the way a browser would.
    let first_ticket = ticket(&one, &owner).await;
    let mut tab1 = open(&one, Cred::Ticket(&first_ticket), None).await;
    let mut tab2 = open(&one, Cred::Cookie(&owner.access), None).await;
    let mut other = open(&one, Cred::Bearer(&stranger.access), None).await;

    let entry = sign(&two, &slug, "축하해요").await;
    for tab in [&mut tab1, &mut tab2] {
        let got = tab.next_event().await;
        assert_eq!(got.json()["entryId"], entry.as_str());
        assert!(ulid::Ulid::from_string(got.id.as_deref().unwrap()).is_ok());
    }

    // The stranger's stream skips the owner's event: the first thing it receives is
    // its own, published on the same instance after the owner's.
    let own_entry = sign(&two, &stranger_slug, "저도요").await;
    let got = other.next_event().await;
    assert_eq!(got.json()["entryId"], own_entry.as_str(), "got {got:?}");

    // Figures: this instance holds 3 streams of 2 users; both instances are listed.
    let s = status(&one, &admin).await;
    assert_eq!(s["instance"]["openStreams"], 3);
    assert_eq!(s["instance"]["connectedUsers"], 2);
    assert_eq!(s["instance"]["redisConnected"], true);
    assert_eq!(s["redisConfigured"], true);
    let two_id = status(&two, &admin).await["instance"]["serverId"].clone();
    let listed: Vec<&Value> = s["cluster"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["serverId"])
        .collect();
    assert!(
        listed.contains(&&two_id),
        "{two_id} missing from {listed:?}"
    );
    assert!(s["cluster"]["openStreams"].as_u64().unwrap() >= 3);

    // Admin only.
    one.get("/api/admin/events/status", Some(&owner.access), 403)
        .await;
}

/// A proxy that speaks HTTP/2 to the backend multiplexes many users' streams over one
/// connection (the cheap way to hold many streams: docs/benchmarks.md).
#[tokio::test]
async fn streams_work_multiplexed_over_one_http2_connection() {
    let app = TestApp::spawn_with(&[WRITES]).await;
    let owner = app.register().await;
    let slug = page_of(&app, &owner).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let res = timeout(
            WAIT,
            h2.get(format!("{}/api/events/sse", app.base))
                .bearer_auth(&owner.access)
                .send(),
        )
        .await
        .expect("headers in time")
        .expect("request sent");
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        let mut tab = SseReader {
            res,
            buf: String::new(),
        };
        let hello = timeout(WAIT, tab.next_frame()).await.unwrap().unwrap();
        assert_eq!(hello.comments, ["connected"]);
        tabs.push(tab);
    }
    let entry = sign(&app, &slug, "축하해요").await;
    for tab in &mut tabs {
        assert_eq!(tab.next_event().await.json()["entryId"], entry.as_str());
    }
}

#[tokio::test]
async fn keep_alive_flows_and_streams_are_freed_on_disconnect_and_shutdown() {
    let app = TestApp::spawn_with(&[("SSE_KEEPALIVE_SECS", "1")]).await;
    let admin = app.admin().await;
    let user = app.register().await;

    let mut stream = open(&app, Cred::Bearer(&user.access), None).await;
    let keep_alive = timeout(WAIT, async {
        loop {
            let frame = stream.next_frame().await.expect("stream stays open");
            if frame.event.is_none() && frame.comments == [""] {
                return frame;
            }
        }
    })
    .await
    .expect("keep-alive comment in time");
    assert!(keep_alive.data.is_empty());
    let s = status(&app, &admin).await;
    assert_eq!(s["instance"]["openStreams"], 1);
    assert_eq!(s["redisConfigured"], false);

    // The client goes away: the stream is removed from the instance.
    drop(stream);
    wait_for_status(&app, &admin, |s| s["instance"]["openStreams"] == 0).await;

    // Shutdown ends open streams instead of keeping the process alive.
    let mut stream = open(&app, Cred::Bearer(&user.access), None).await;
    app.state.shutdown.cancel();
    let ended = timeout(WAIT, async { while stream.next_frame().await.is_some() {} }).await;
    assert!(ended.is_ok(), "stream still open after shutdown");
    timeout(WAIT, async {
        while app.state.notifications.hub.counts() != (0, 0) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("streams removed after shutdown");
}

/// Misses two events while disconnected, resumes with `Last-Event-ID`, gets exactly
/// those two in order, then live events again with no repeats.
async fn resume_after_a_drop(one: &TestApp, two: &TestApp) {
    let owner = one.register().await;
    let slug = page_of(one, &owner).await;

    let mut stream = open(one, Cred::Bearer(&owner.access), None).await;
    let first = sign(two, &slug, "one").await;
    let seen = stream.next_event().await;
    assert_eq!(seen.json()["entryId"], first.as_str());
    drop(stream);

    let missed = [
        sign(two, &slug, "two").await,
        sign(two, &slug, "three").await,
    ];
    let last_id = seen.id.clone().unwrap();
    let mut resumed = open(one, Cred::Bearer(&owner.access), Some(&last_id)).await;
    let mut replayed_ids = Vec::new();
    for entry in &missed {
        let got = resumed.next_event().await;
        assert_eq!(got.json()["entryId"], entry.as_str(), "replay order");
        replayed_ids.push(got.id.unwrap());
    }
    let live = sign(two, &slug, "four").await;
    let got = resumed.next_event().await;
    assert_eq!(
        got.json()["entryId"],
        live.as_str(),
        "no event twice: {got:?}"
    );
    assert!(!replayed_ids.contains(&got.id.unwrap()));
}

#[tokio::test]
async fn last_event_id_replays_what_was_missed_once_across_instances() {
    let (one, two) = two_instances(&[]).await;
    resume_after_a_drop(&one, &two).await;
}

#[tokio::test]
async fn last_event_id_replays_on_a_single_instance_without_redis() {
    let app = TestApp::spawn_with(&[WRITES]).await;
    resume_after_a_drop(&app, &app).await;
}

#[tokio::test]
async fn tickets_are_required_single_use_and_short_lived() {
    let (one, two) = two_instances(&[("SSE_TICKET_TTL_SECS", "1")]).await;
    let user = one.register().await;

    let res = try_open(&one, Cred::Ticket("not-a-ticket"), None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_code(&res.json().await.unwrap()), "invalid_ticket");
    let res = one
        .http
        .get(format!("{}/api/events/sse", one.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(error_code(&res.json().await.unwrap()), "missing_token");
    one.post("/api/events/ticket", None, json!({}), 401).await;

    // Issued on one instance, redeemed on the other: once.
    let t = ticket(&one, &user).await;
    let stream = open(&two, Cred::Ticket(&t), None).await;
    drop(stream);
    let res = try_open(&one, Cred::Ticket(&t), None).await;
    assert_eq!(res.status(), 401, "a ticket works only once");

    let t = ticket(&one, &user).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let res = try_open(&one, Cred::Ticket(&t), None).await;
    assert_eq!(res.status(), 401, "an expired ticket is refused");
}

#[tokio::test]
async fn tickets_work_once_without_redis() {
    let app = TestApp::spawn().await;
    let user = app.register().await;
    let t = ticket(&app, &user).await;
    drop(open(&app, Cred::Ticket(&t), None).await);
    let res = try_open(&app, Cred::Ticket(&t), None).await;
    assert_eq!(res.status(), 401);
}

/// A throwaway Redis of this test only, so restarting it disturbs nobody (also used
/// by the readiness tests).
pub(crate) struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    pub(crate) fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = OwnRedis { port, child };
        redis.wait_ready();
        redis
    }

    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn wait_ready(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn streams_keep_working_after_redis_restarts() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let vars = [("REDIS_URL", url.as_str()), WRITES];
    let one = TestApp::spawn_with(&vars).await;
    let two = TestApp::spawn_with(&vars).await;
    let owner = one.register().await;
    let admin = one.admin().await;
    let slug = page_of(&one, &owner).await;
    let mut stream = open(&one, Cred::Bearer(&owner.access), None).await;

    let before = sign(&two, &slug, "before").await;
    assert_eq!(stream.next_event().await.json()["entryId"], before.as_str());

    redis.stop();
    wait_for_status(&one, &admin, |s| s["instance"]["redisConnected"] == false).await;
    let redis = OwnRedis::start_on(redis.port);
    wait_for_status(&one, &admin, |s| s["instance"]["redisConnected"] == true).await;
    // Instance two's command connection reconnects on first use after the restart.
    timeout(WAIT, async {
        while !two
            .http
            .get(format!("{}/health/ready", two.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("instance two sees Redis again");

    // The same stream, never reopened, still gets events raised on the other instance.
    let after = sign(&two, &slug, "after").await;
    let got = stream.next_event().await;
    assert_eq!(got.json()["entryId"], after.as_str());
    drop(redis);
}
