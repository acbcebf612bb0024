//! Chat relay load generator.
//!
//! Opens N Socket.IO clients (WebSocket, namespace `/chat`) across M rooms on one
//! backend, publishes agent items into `chat:<session_id>` at a fixed rate, and
//! reports delivered items/s, publish→receive latency (p50/p99/max) and the backend's
//! RSS. It also measures the backend's own hand-off latency: from `chat-message` sent
//! to the agent receiving `POST /chat`, with a fake agent endpoint it serves itself
//! (start the backend with `AGENT_MANAGER_URL` pointing at `--agent-port`).
//!
//! It speaks only the contract (Engine.IO v4 / Socket.IO v5 over WebSocket, the
//! `joinRoom` / `session-info` / `newMessage` events, the Redis channel), so it can be
//! pointed at any server that does. Rooms are made through the REST API unless given
//! with `--rooms` and `--token`. Loopback only; bounded in clients and duration.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use bench::{cpu_seconds, memory_mib, percentile};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How long one client may take to connect, authenticate and join its room.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    url: String,
    redis: String,
    clients: usize,
    rooms: usize,
    /// Items published per second (each reaches every client of its room).
    publish_rate: u64,
    duration: Duration,
    backend_pid: Option<u32>,
    agent_port: u16,
    handoff_samples: usize,
    token: Option<String>,
    room_ids: Vec<String>,
    /// Run as `sh -c "<cmd> before"` once the rooms exist and `"<cmd> connected"` once
    /// every client has joined (the heap profile takes its snapshots there).
    snapshot_cmd: Option<String>,
    /// Clients setting up at the same time.
    setup_concurrency: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        redis: "redis://127.0.0.1:6379/0".into(),
        clients: 5000,
        rooms: 1000,
        publish_rate: 4000,
        duration: Duration::from_secs(20),
        backend_pid: None,
        agent_port: 0,
        handoff_samples: 300,
        token: None,
        room_ids: Vec::new(),
        snapshot_cmd: None,
        setup_concurrency: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--redis" => a.redis = value()?,
            "--clients" => a.clients = value()?.parse()?,
            "--rooms" => a.rooms = value()?.parse()?,
            "--publish-rate" => a.publish_rate = value()?.parse()?,
            "--duration-secs" => a.duration = Duration::from_secs(value()?.parse()?),
            "--backend-pid" => a.backend_pid = Some(value()?.parse()?),
            "--agent-port" => a.agent_port = value()?.parse()?,
            "--handoff-samples" => a.handoff_samples = value()?.parse()?,
            "--token" => a.token = Some(value()?),
            "--room-ids" => a.room_ids = value()?.split(',').map(str::to_owned).collect(),
            "--snapshot-cmd" => a.snapshot_cmd = Some(value()?),
            "--setup-concurrency" => a.setup_concurrency = value()?.parse::<usize>()?.max(1),
            "-h" | "--help" => {
                println!(
                    "chat-load [--url U] [--redis R] [--clients N] [--rooms M] [--publish-rate P] [--duration-secs S] [--backend-pid PID] [--agent-port PORT] [--handoff-samples K] [--token JWT --room-ids id,id] [--snapshot-cmd CMD] [--setup-concurrency C]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}"),
        }
    }
    if a.clients > 20_000 || a.duration > Duration::from_secs(300) {
        bail!("bounded: at most 20000 clients and 300 s");
    }
    Ok(a)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Sets up an account and `rooms` pages through the REST API; returns the token and page ids.
async fn make_rooms(
    http: &reqwest::Client,
    url: &str,
    rooms: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let email = format!(
        "bench-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let res: Value = http
        .post(format!("{url}/api/auth/register"))
        .json(&json!({"email": email, "password": "bench password 1", "displayName": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = res["accessToken"].as_str().context("no token")?.to_owned();
    let ids = Arc::new(Mutex::new(Vec::with_capacity(rooms)));
    futures::stream::iter(0..rooms)
        .for_each_concurrent(16, |_| {
            let (http, token, ids) = (http.clone(), token.clone(), Arc::clone(&ids));
            async move {
                let body = json!({"groom": {"name": "A"}, "bride": {"name": "B"}, "weddingAt": "2099-05-15T12:30:00+09:00",
                                  "venue": {"name": "Hall"}});
                if let Ok(r) = http.post(format!("{url}/api/pages")).bearer_auth(&token).json(&body).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && let Some(id) = v["id"].as_str()
                {
                    ids.lock().unwrap().push(id.to_owned());
                }
            }
        })
        .await;
    let ids = ids.lock().unwrap().clone();
    if ids.len() != rooms {
        bail!("created {} of {rooms} pages", ids.len());
    }
    Ok((token, ids))
}

/// A minimal Socket.IO v5 client over one WebSocket: connect to `/chat` with the token,
/// join a room, then record the latency of every `newMessage` carrying `bench_ts`.
struct ClientHandle {
    room: String,
    session_id: String,
    sender: tokio::sync::mpsc::UnboundedSender<String>,
}

async fn open_client(
    ws_url: &str,
    token: &str,
    room: &str,
    latencies: Arc<Mutex<Vec<u64>>>,
    delivered: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<ClientHandle> {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .context("websocket connect")?;
    let (mut sink, mut stream) = ws.split();
    // The next Engine.IO frame other than a ping; pings are answered on the way, as any
    // client must (the server pings right after the open packet and closes the
    // connection when no pong arrives within its ping timeout).
    macro_rules! next_frame {
        ($stage:literal) => {
            loop {
                let msg = stream
                    .next()
                    .await
                    .context(concat!("closed ", $stage))?
                    .context(concat!("failed ", $stage))?;
                let text = msg.into_text()?;
                seen.lock()
                    .unwrap()
                    .push(text.as_str().chars().take(60).collect());
                if text.as_str() == "2" {
                    sink.send(Message::text("3")).await?;
                    continue;
                }
                break text;
            }
        };
    }
    // Engine.IO open packet, then the namespace connect with the auth payload.
    let open = next_frame!("before the Engine.IO open packet");
    if !open.starts_with('0') {
        bail!("unexpected open packet");
    }
    sink.send(Message::text(format!(
        "40/chat,{}",
        json!({"token": token})
    )))
    .await?;
    loop {
        let text = next_frame!("before the namespace connect");
        if text.starts_with("40/chat") {
            break;
        }
        if text.starts_with("44/chat") {
            bail!("refused: {}", text.as_str());
        }
    }
    sink.send(Message::text(format!(
        "42/chat,{}",
        json!(["joinRoom", {"room": room}])
    )))
    .await?;
    let session_id = loop {
        let text = next_frame!("before session-info");
        if let Some(body) = text.strip_prefix("42/chat,") {
            let v: Value = serde_json::from_str(body)?;
            if v[0] == "session-info" {
                break v[1]["session_id"]
                    .as_str()
                    .context("no session id")?
                    .to_owned();
            }
            if v[0] == "chat-error" {
                bail!("join refused: {}", v[1]);
            }
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(text) => {
                        if sink.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                msg = stream.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    let Ok(text) = msg.to_text() else { continue };
                    if text == "2" {
                        let _ = sink.send(Message::text("3")).await;
                    } else if let Some(ts) = bench_timestamp(text) {
                        latencies.lock().unwrap().push(now_ns().saturating_sub(ts));
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    Ok(ClientHandle {
        room: room.to_owned(),
        session_id,
        sender: tx,
    })
}

/// The `bench_ts` of a relayed `newMessage`, found without parsing the whole JSON.
fn bench_timestamp(frame: &str) -> Option<u64> {
    let body = frame.strip_prefix("42/chat,[\"newMessage\",")?;
    let at = body.find("\"bench_ts\":")? + "\"bench_ts\":".len();
    let digits = &body[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Runs the `--snapshot-cmd` hook, if any, with `stage` as its argument.
fn snapshot(args: &Args, stage: &str) -> anyhow::Result<()> {
    if let Some(cmd) = &args.snapshot_cmd {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} {stage}"))
            .status()?;
        if !status.success() {
            bail!("snapshot command failed at {stage}: {status}");
        }
    }
    Ok(())
}

/// The `p` quantile of sorted nanosecond samples, in milliseconds (NaN when empty).
fn quantile_ms(sorted: &[u64], p: f64) -> f64 {
    percentile(sorted, p).map_or(f64::NAN, |ns| ns as f64 / 1e6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let http = reqwest::Client::new();
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        args.url.replacen("http", "ws", 1)
    );

    // The fake agent: records when each hand-off arrives.
    let arrivals: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let agent = {
        let arrivals = Arc::clone(&arrivals);
        let app = axum::Router::new().route(
            "/chat",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let arrivals = Arc::clone(&arrivals);
                async move {
                    let at = now_ns();
                    if let Some(m) = body["message"].as_str() {
                        arrivals.lock().unwrap().insert(m.to_owned(), at);
                    }
                    (
                        axum::http::StatusCode::ACCEPTED,
                        axum::Json(json!({"status": "accepted"})),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.agent_port)).await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    };
    println!("fake agent on http://127.0.0.1:{agent}");

    let (token, room_ids) = match (&args.token, args.room_ids.is_empty()) {
        (Some(t), false) => (t.clone(), args.room_ids.clone()),
        _ => {
            let t0 = Instant::now();
            let made = make_rooms(&http, &args.url, args.rooms).await?;
            println!(
                "created {} rooms in {:.1}s",
                made.1.len(),
                t0.elapsed().as_secs_f64()
            );
            made
        }
    };
    snapshot(&args, "before")?;
    let rss_idle = args.backend_pid.and_then(|pid| memory_mib(pid).ok());

    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let delivered = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let failures = Mutex::new(Vec::new());
    let mut failed = 0usize;
    let clients: Vec<ClientHandle> = futures::stream::iter(0..args.clients)
        .map(|i| {
            let room = format!("page-{}", room_ids[i % room_ids.len()]);
            let (ws_url, token, lat, del) = (
                ws_url.clone(),
                token.clone(),
                Arc::clone(&latencies),
                Arc::clone(&delivered),
            );
            async move {
                let seen = Arc::new(Mutex::new(Vec::new()));
                // A set-up that stalls is a failure to report, not a reason to hang.
                tokio::time::timeout(
                    SETUP_TIMEOUT,
                    open_client(&ws_url, &token, &room, lat, del, Arc::clone(&seen)),
                )
                .await
                .unwrap_or_else(|_| {
                    bail!(
                        "no session-info within {SETUP_TIMEOUT:?}; frames seen: {:?}",
                        seen.lock().unwrap()
                    )
                })
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(c) => Some(c),
            Err(e) => {
                let mut errors = failures.lock().unwrap();
                if errors.len() < 5 {
                    errors.push(format!("{e:#}"));
                }
                failed += 1;
                None
            }
        })
        .collect();
    if failed > 0 {
        bail!(
            "{failed} of {} clients failed to connect and join; first errors: {:?}",
            args.clients,
            failures.lock().unwrap()
        );
    }
    println!(
        "{} clients connected and joined in {:.1}s",
        clients.len(),
        t0.elapsed().as_secs_f64()
    );
    let rss_connected = args.backend_pid.and_then(|pid| memory_mib(pid).ok());
    snapshot(&args, "connected")?;

    // One session per room to publish into: the relay delivers a session's items to
    // every socket in its page's room, whichever session each socket was given.
    let mut by_room: HashMap<&str, String> = HashMap::new();
    for c in &clients {
        by_room
            .entry(c.room.as_str())
            .or_insert_with(|| c.session_id.clone());
    }
    let sessions: Vec<String> = by_room.into_values().collect();
    let per_room = args.clients as f64 / room_ids.len() as f64;

    // Publish at a fixed rate in 1 ms ticks, pipelined.
    let client = redis::Client::open(args.redis.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let published = Arc::new(AtomicU64::new(0));
    let cpu_before = args.backend_pid.and_then(|pid| cpu_seconds(pid).ok());
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut seq: u64 = 0;
    while start.elapsed() < args.duration {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * args.publish_rate as f64) as u64;
        let mut pipe = redis::pipe();
        let mut n = 0;
        while published.load(Ordering::Relaxed) + n < due && n < 1000 {
            let sid = &sessions[(seq as usize) % sessions.len()];
            let item = json!({"session_id": sid, "message_id": "bench", "seq": seq, "role": "assistant",
                              "type": "text-delta", "content": "축", "bench_ts": now_ns()});
            pipe.publish(format!("chat:{sid}"), item.to_string())
                .ignore();
            seq += 1;
            n += 1;
        }
        if n > 0 {
            pipe.query_async::<()>(&mut conn).await?;
            published.fetch_add(n, Ordering::Relaxed);
        }
    }
    let publish_secs = start.elapsed().as_secs_f64();
    // Let the tail arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_after = args.backend_pid.and_then(|pid| cpu_seconds(pid).ok());
    let rss_loaded = args.backend_pid.and_then(|pid| memory_mib(pid).ok());

    // Hand-off latency: chat-message sent → POST /chat received by the fake agent.
    let mut handoff = Vec::new();
    for i in 0..args.handoff_samples.min(clients.len()) {
        let c = &clients[(i * 7919) % clients.len()];
        let text = format!("bench-handoff-{}", ulid::Ulid::new());
        let sent = now_ns();
        let _ = c.sender.send(format!(
            "42/chat,{}",
            json!(["chat-message", {"text": text}])
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(at) = arrivals.lock().unwrap().get(&text) {
                handoff.push(at.saturating_sub(sent));
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort_unstable();
    handoff.sort_unstable();
    let pub_n = published.load(Ordering::Relaxed);
    let del_n = delivered.load(Ordering::Relaxed);
    let expected = (pub_n as f64 * per_room) as u64;
    println!("\n== chat relay ==");
    println!(
        "clients {} in {} rooms ({per_room:.1} per room), publish rate {}/s for {publish_secs:.1}s",
        clients.len(),
        sessions.len(),
        args.publish_rate
    );
    println!(
        "published {pub_n}, delivered {del_n} of {expected} expected ({:.2}%)",
        100.0 * del_n as f64 / expected.max(1) as f64
    );
    println!("delivered items/s {:.0}", del_n as f64 / publish_secs);
    println!(
        "latency ms  p50 {:.2}  p99 {:.2}  max {:.2}",
        quantile_ms(&lat, 0.50),
        quantile_ms(&lat, 0.99),
        lat.last().map(|v| *v as f64 / 1e6).unwrap_or(f64::NAN)
    );
    if let Some(pid) = args.backend_pid {
        let show = |label: &str, v: Option<(f64, f64)>| {
            if let Some((rss, hwm)) = v {
                println!("backend RSS {label}: {rss:.1} MB (peak {hwm:.1} MB)");
            }
        };
        println!("backend pid {pid}");
        show("before clients", rss_idle);
        show("clients connected", rss_connected);
        show("after load", rss_loaded);
    }
    // CPU per delivery: the server's CPU time while publishing (and the 2 s tail) over
    // the items delivered; KiB per socket: RSS growth from no clients to all joined.
    let cpu_us = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if del_n > 0 => (b - a) * 1e6 / del_n as f64,
        _ => f64::NAN,
    };
    let kib_per_socket = match (rss_idle, rss_connected) {
        (Some((a, _)), Some((b, _))) => (b - a) * 1024.0 / clients.len().max(1) as f64,
        _ => f64::NAN,
    };
    println!(
        "server CPU per delivered item {cpu_us:.1} µs; memory per socket {kib_per_socket:.1} KiB"
    );
    println!(
        "RESULT rate={} delivered_pct={:.3} p99_ms={:.2} cpu_us={cpu_us:.2} kib_per_socket={kib_per_socket:.1}",
        args.publish_rate,
        100.0 * del_n as f64 / expected.max(1) as f64,
        quantile_ms(&lat, 0.99)
    );
    if args.handoff_samples == 0 {
        return Ok(());
    }
    println!("\n== hand-off (chat-message → agent receives POST /chat) ==");
    println!(
        "samples {}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        handoff.len(),
        quantile_ms(&handoff, 0.5),
        quantile_ms(&handoff, 0.99),
        handoff.last().map(|v| *v as f64 / 1e6).unwrap_or(f64::NAN)
    );
    Ok(())
}
