//! Opening a store: a database that cannot be reached is reported with its
//! real cause at once, not as a pool timeout after 30 s.

use std::time::{Duration, Instant};

use tribute_store::Store;

#[tokio::test]
async fn a_closed_postgres_port_is_reported_as_connection_refused_within_seconds() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = Store::connect(&format!("postgres://postgres@127.0.0.1:{port}/tribute"))
        .await
        .expect_err("nothing listens there");
    let took = started.elapsed();
    let message = format!("{err:#}");
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    assert!(message.contains("PostgreSQL"), "{message}");
    // A failure bound, not a measurement: the pool used to wait 30 s.
    assert!(took < Duration::from_secs(5), "took {took:?}: {message}");
}
