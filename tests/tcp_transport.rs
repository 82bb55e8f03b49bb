//! The TCP transport against a plain loopback listener: messages are framed by
//! Content-Length across arbitrary read boundaries, one connection is reused, and a dropped
//! connection is re-opened on the next send.

use std::time::Duration;

use outdial::sip::transport::SipSocket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MSG: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKt\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: tcp-1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 5\r\n\r\nhello";

#[tokio::test]
async fn framing_reuse_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trunk = listener.local_addr().unwrap();
    let (mut sock, mut inbound) = SipSocket::tcp("127.0.0.1:0".parse().unwrap(), &[trunk])
        .await
        .unwrap();
    let (mut conn, _) = listener.accept().await.unwrap();

    // Two messages written in awkward pieces arrive as two whole messages.
    let two = format!("\r\n{MSG}{MSG}");
    for chunk in two.as_bytes().chunks(7) {
        conn.write_all(chunk).await.unwrap();
        conn.flush().await.unwrap();
    }
    for _ in 0..2 {
        let r = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.bytes, MSG.as_bytes());
        assert_eq!(r.src, trunk);
    }

    // Sends reuse the same connection.
    sock.send(trunk, b"A".to_vec()).await.unwrap();
    sock.send(trunk, b"B".to_vec()).await.unwrap();
    let mut buf = [0u8; 2];
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"AB");

    // The far end drops the connection; the next send opens a new one.
    drop(conn);
    let mut reconnected = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sock.send(trunk, b"C".to_vec()).await.unwrap();
        if let Ok(Ok((mut c2, _))) =
            tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
        {
            let mut b = [0u8; 1];
            c2.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"C");
            reconnected = true;
            break;
        }
    }
    assert!(reconnected, "no new connection after the first one closed");
}
