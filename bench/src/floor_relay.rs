//! The floor relay: the least a relay must do to serve the chat contract to the load
//! generator, as a yardstick for the backend's relay (docs/benchmarks.md "Side by
//! side"). One `PSUBSCRIBE chat:*`; each item framed once as
//! `42/chat,["newMessage",<item>]` and the same bytes handed to every socket of its
//! room; one task per socket (reads, heartbeat and writes); a bounded queue per socket
//! (a socket that falls 128 frames behind is closed). No authentication and no
//! database: the session id it hands out is the page id, so `chat:<page id>` is the
//! room `page-<page id>`.
//!
//!   floor-relay --port 18090 --redis redis://127.0.0.1:16394/0

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes, protocol::WebSocketConfig};

const QUEUE: usize = 128;
const READ_BUFFER: usize = 1024;
const PING_INTERVAL: Duration = Duration::from_secs(25);

type Rooms = Arc<RwLock<HashMap<String, Vec<(u64, mpsc::Sender<Utf8Bytes>)>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut port = 18090u16;
    let mut redis_url = "redis://127.0.0.1:6379/0".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse()?,
            "--redis" => redis_url = value,
            other => bail!("unknown flag {other}"),
        }
    }
    let rooms: Rooms = Arc::default();
    tokio::spawn(relay(
        redis::Client::open(redis_url.as_str())?,
        Arc::clone(&rooms),
    ));
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("floor relay on 127.0.0.1:{port}");
    let ids = AtomicU64::new(0);
    loop {
        let (tcp, _) = listener.accept().await?;
        // As the backend and Node's `ws` do: each frame goes out when written. With
        // Nagle's algorithm the kernel would hold a frame back while an earlier one is
        // unacknowledged and coalesce them, which a token-by-token stream cannot wait for.
        tcp.set_nodelay(true)?;
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve_socket(tcp, id, Arc::clone(&rooms)));
    }
}

/// Redis → rooms: frame once, clone the bytes per socket.
async fn relay(client: redis::Client, rooms: Rooms) -> anyhow::Result<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe("chat:*").await?;
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let Some(page) = msg.get_channel_name().strip_prefix("chat:") else {
            continue;
        };
        let Ok(item) = std::str::from_utf8(msg.get_payload_bytes()) else {
            continue;
        };
        let frame = Utf8Bytes::from(format!("42/chat,[\"newMessage\",{item}]"));
        let room = format!("page-{page}");
        let mut full = Vec::new();
        if let Some(members) = rooms.read().unwrap().get(&room) {
            for (id, tx) in members {
                if tx.try_send(frame.clone()).is_err() {
                    full.push(*id);
                }
            }
        }
        if !full.is_empty() {
            leave(&rooms, &room, &full);
        }
    }
    Ok(())
}

fn leave(rooms: &Rooms, room: &str, ids: &[u64]) {
    if let Some(members) = rooms.write().unwrap().get_mut(room) {
        members.retain(|(id, _)| !ids.contains(id));
    }
}

/// One socket: the Engine.IO open packet, the namespace connect, `joinRoom`, then
/// frames from the room's queue, pings, and the client's pongs, in one task.
async fn serve_socket(tcp: tokio::net::TcpStream, id: u64, rooms: Rooms) -> anyhow::Result<()> {
    // The backend's read buffer size (backend/src/chat/mod.rs): tungstenite's default
    // (128 KiB) is zero-filled on every read attempt, a cost no relay needs to pay.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let ws = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(format!(
        r#"0{{"sid":"floor{id}","upgrades":[],"pingInterval":{},"pingTimeout":20000,"maxPayload":1000000}}"#,
        PING_INTERVAL.as_millis()
    )))
    .await?;
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let mut joined: Vec<String> = Vec::new();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let result = async {
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(frame) => sink.send(Message::Text(frame)).await?,
                    None => break,
                },
                _ = ping.tick() => sink.send(Message::text("2")).await?,
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Message::Text(text) = msg? else { continue };
                    if text.starts_with("40/chat") {
                        sink.send(Message::text(format!(r#"40/chat,{{"sid":"floor{id}"}}"#))).await?;
                    } else if let Some(body) = text.strip_prefix("42/chat,") {
                        let v: serde_json::Value = serde_json::from_str(body)?;
                        if v[0] == "joinRoom"
                            && let Some(room) = v[1]["room"].as_str()
                            && let Some(page) = room.strip_prefix("page-")
                        {
                            rooms.write().unwrap().entry(room.to_owned()).or_default().push((id, tx.clone()));
                            joined.push(room.to_owned());
                            let info = serde_json::json!(["session-info", {"session_id": page, "room": room, "page_id": page}]);
                            sink.send(Message::text(format!("42/chat,{info}"))).await?;
                        }
                    }
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    for room in &joined {
        leave(&rooms, room, &[id]);
    }
    result
}
