//! Idle SSE load: opens many `GET /api/events/sse` streams on one backend instance,
//! reads the backend's memory from `/proc/<pid>/status`, then publishes ONE event
//! addressed to every stream's user on the Redis channel `user-events` (exactly as
//! another backend instance would) and measures how long it takes to reach all of them.
//!
//! Run it through `bench/sse-idle.sh`, which raises the file-descriptor limit and
//! starts a throwaway Redis and a release backend on loopback. Bounded: it stops by
//! itself after `--budget-secs` whatever happens.
//!
//! ```text
//! sse-idle --base http://127.0.0.1:18080 --redis redis://127.0.0.1:16390/0 \
//!          --pid <backend pid> [--streams 10000] [--users 100] [--budget-secs 300] \
//!          [--http2 <streams per connection>]
//! ```
//!
//! By default every stream is its own HTTP/1.1 connection (a browser behind a proxy
//! that speaks HTTP/1.1 to the backend, such as nginx). `--http2 N` multiplexes N
//! streams per HTTP/2 (h2c) connection instead, as a proxy that speaks HTTP/2 to the
//! backend does (the backend allows 200 concurrent streams per connection).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bench::{memory_mib, percentile};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

struct Args {
    base: String,
    redis: String,
    pid: u32,
    streams: usize,
    users: usize,
    budget: Duration,
    /// Streams per HTTP/2 connection; `None` = one HTTP/1.1 connection per stream.
    http2: Option<usize>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut given: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else {
            bail!("unexpected argument {flag:?}");
        };
        let value = it
            .next()
            .with_context(|| format!("--{name} needs a value"))?;
        given.insert(name.to_owned(), value);
    }
    let get = |k: &str| given.get(k).cloned();
    Ok(Args {
        base: get("base").context("--base is required")?,
        redis: get("redis").context("--redis is required")?,
        pid: get("pid").context("--pid is required")?.parse()?,
        streams: get("streams").map_or(Ok(10_000), |v| v.parse())?,
        users: get("users").map_or(Ok(100), |v| v.parse())?,
        budget: Duration::from_secs(get("budget-secs").map_or(Ok(300), |v| v.parse())?),
        http2: get("http2").map(|v| v.parse()).transpose()?,
    })
}

async fn register(http: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let email = format!(
        "bench-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "password": "bench password 42", "displayName": "Bench"}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("register answered {}: {}", res.status(), res.text().await?);
    }
    let out: serde_json::Value = res.json().await?;
    Ok((
        out["user"]["id"].as_str().context("user id")?.to_owned(),
        out["accessToken"].as_str().context("token")?.to_owned(),
    ))
}

/// Holds one stream open: reports when it is open, then when the marker event arrives.
async fn hold_stream(
    http: reqwest::Client,
    url: String,
    token: String,
    marker: Arc<String>,
    opened: mpsc::UnboundedSender<bool>,
    received: mpsc::UnboundedSender<Instant>,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let res = match http.get(&url).bearer_auth(&token).send().await {
        Ok(res) if res.status().is_success() => res,
        _ => {
            let _ = opened.send(false);
            return;
        }
    };
    drop(permit);
    let _ = opened.send(true);
    let mut res = res;
    let mut tail = String::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if tail.contains(marker.as_str()) {
            let _ = received.send(Instant::now());
            // Keep the stream open (idle) until the process ends.
            while let Ok(Some(_)) = res.chunk().await {}
            return;
        }
        // The marker may straddle chunks; keep only what could still match.
        if tail.len() > 256 {
            let cut = tail.len() - 128;
            let cut = (cut..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(0);
            tail.drain(..cut);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let budget = args.budget;
    match tokio::time::timeout(budget, measure(args)).await {
        Ok(result) => result,
        Err(_) => bail!("gave up after the {budget:?} budget"),
    }
}

async fn measure(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()?;
    let (rss, _) = memory_mib(args.pid)?;
    println!("backend pid {} before: VmRSS {rss:.1} MiB", args.pid);

    let mut users = Vec::new();
    for _ in 0..args.users.max(1) {
        users.push(register(&http, &args.base).await?);
    }
    // Registration hashes passwords (argon2id, ~19 MiB each), and the allocator keeps
    // some of that memory: this is the baseline the streams are measured against.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_users, _) = memory_mib(args.pid)?;
    println!(
        "registered {} users; backend VmRSS {rss_users:.1} MiB",
        users.len()
    );

    let event_id = ulid::Ulid::new().to_string();
    let marker = Arc::new(format!("id: {event_id}"));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let (received_tx, mut received_rx) = mpsc::unbounded_channel();
    // Bounds concurrent connection set-ups, not open streams.
    let gate = Arc::new(Semaphore::new(256));
    let url = format!("{}/api/events/sse", args.base);
    // HTTP/2: one client (one connection) per `per_conn` streams.
    let h2_clients = match args.http2 {
        None => Vec::new(),
        Some(per_conn) => (0..args.streams.div_ceil(per_conn.max(1)))
            .map(|_| reqwest::Client::builder().http2_prior_knowledge().build())
            .collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(per_conn) = args.http2 {
        println!(
            "HTTP/2: {} connections, up to {per_conn} streams each",
            h2_clients.len()
        );
    }
    let started = Instant::now();
    for i in 0..args.streams {
        let (_, token) = &users[i % users.len()];
        let client = match args.http2 {
            None => http.clone(),
            Some(per_conn) => h2_clients[i / per_conn.max(1)].clone(),
        };
        tokio::spawn(hold_stream(
            client,
            url.clone(),
            token.clone(),
            marker.clone(),
            opened_tx.clone(),
            received_tx.clone(),
            gate.clone(),
        ));
    }
    drop(opened_tx);
    let (mut open, mut failed) = (0usize, 0usize);
    while open + failed < args.streams {
        match opened_rx.recv().await {
            Some(true) => open += 1,
            Some(false) => failed += 1,
            None => break,
        }
    }
    println!(
        "opened {open} streams ({failed} failed) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if open == 0 {
        bail!("no stream could be opened");
    }
    // Let the backend settle (allocations, TCP buffers) before reading its memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_idle, hwm_idle) = memory_mib(args.pid)?;
    println!(
        "backend with {open} idle streams: VmRSS {rss_idle:.1} MiB (peak {hwm_idle:.1} MiB), \
         {:.1} KiB per stream over the baseline",
        (rss_idle - rss_users) * 1024.0 / open as f64
    );

    let client = redis::Client::open(args.redis.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let message = json!({
        "id": event_id,
        "user_ids": users.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "event_type": "page.published",
        "data": {"bench": true},
        "server_id": "bench",
    });
    let sent_at = Instant::now();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("user-events")
        .arg(message.to_string())
        .query_async(&mut conn)
        .await?;
    drop(received_tx);
    let mut latencies = Vec::with_capacity(open);
    let collect = async {
        while let Some(at) = received_rx.recv().await {
            latencies.push(at.duration_since(sent_at));
            if latencies.len() == open {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), collect).await;
    latencies.sort();
    let (rss_after, hwm_after) = memory_mib(args.pid)?;
    println!("published one event to {receivers} subscriber(s) of user-events");
    println!(
        "delivered to {}/{open} streams: p50 {:.1} ms, p99 {:.1} ms, all {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5)
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0,
        percentile(&latencies, 0.99)
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    println!("backend after delivery: VmRSS {rss_after:.1} MiB (peak {hwm_after:.1} MiB)");
    if latencies.len() < open {
        bail!(
            "{} streams did not receive the event",
            open - latencies.len()
        );
    }
    Ok(())
}
