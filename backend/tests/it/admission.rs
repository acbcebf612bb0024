//! Admission control: slow or greedy clients cannot hold the server's connections.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::timeout,
};

use crate::common::TestApp;

/// A TCP connection to `addr` from a chosen loopback address (Linux routes all of
/// 127.0.0.0/8 to lo), so that one test can play several client IPs.
async fn connect_from(src: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{src}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server has closed `conn` (EOF or reset) within `wait`.
async fn closed_within(conn: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    match timeout(wait, conn.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("unexpected bytes from the server"),
        Err(_) => false,
    }
}

/// A complete GET of `/health/live` on `conn`; the status line's code.
async fn live_status(conn: &mut TcpStream) -> u16 {
    conn.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0)
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() {
    let app = TestApp::spawn_with(&[("HTTP_HEADER_READ_TIMEOUT_MS", "500")]).await;
    let mut conn = connect_from("127.0.0.1", app.addr).await;
    conn.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    // One header byte every 100 ms: never idle, never complete. The server must close
    // the connection long before this client would give up (30 s).
    let mut cut_off = false;
    for _ in 0..300 {
        if conn.write_all(b"X").await.is_err()
            || closed_within(&mut conn, Duration::from_millis(100)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a slow request head kept its connection for 30 s");
    // The server itself is fine.
    let mut other = connect_from("127.0.0.1", app.addr).await;
    assert_eq!(live_status(&mut other).await, 200);
}

#[tokio::test]
async fn a_silent_connection_is_closed_when_idle() {
    let app = TestApp::spawn_with(&[("HTTP_IDLE_TIMEOUT_MS", "500")]).await;
    let mut conn = connect_from("127.0.0.1", app.addr).await;
    // Sends nothing at all (not even a protocol preface).
    assert!(closed_within(&mut conn, Duration::from_secs(20)).await);
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_are_closed_and_others_still_served() {
    let app = TestApp::spawn_with(&[("HTTP_MAX_CONNECTIONS_PER_IP", "4")]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.1", app.addr).await);
    }
    // The held ones work; make sure the server has counted all four before the fifth.
    assert_eq!(live_status(&mut held[3]).await, 200);
    let mut extra = connect_from("127.0.0.1", app.addr).await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(10)).await,
        "a fifth connection from one IP was kept"
    );
    // Another client IP is not affected, and the first IP's connections still work.
    let mut other = connect_from("127.0.0.2", app.addr).await;
    assert_eq!(live_status(&mut other).await, 200);
    assert_eq!(live_status(&mut held[0]).await, 200);
    // A freed slot is available again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut conn = connect_from("127.0.0.1", app.addr).await;
        if !closed_within(&mut conn, Duration::from_millis(100)).await {
            again = Some(conn);
            break;
        }
    }
    assert_eq!(live_status(&mut again.expect("a slot freed")).await, 200);
}

#[tokio::test]
async fn connections_over_the_total_cap_are_closed() {
    let app = TestApp::spawn_with(&[
        ("HTTP_MAX_CONNECTIONS", "3"),
        ("HTTP_MAX_CONNECTIONS_PER_IP", "0"),
    ])
    .await;
    let mut held = Vec::new();
    for src in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        held.push(connect_from(src, app.addr).await);
    }
    assert_eq!(live_status(&mut held[2]).await, 200);
    let mut extra = connect_from("127.0.0.4", app.addr).await;
    assert!(closed_within(&mut extra, Duration::from_secs(10)).await);
    assert_eq!(live_status(&mut held[0]).await, 200);
}

#[tokio::test]
async fn http2_without_tls_still_works() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);
}
