//! The benchmark baseline: a bare axum server answering every request with
//! a 302 and no storage. `scripts/bench-redirect.sh` measures Tribute's
//! `/r/{code}` against it in the same run.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

async fn redirect() -> impl IntoResponse {
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            "https://example.com/pricing?utm_source=bench&tid=clk_0",
        )],
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18180".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().route("/r/{code}", get(redirect));
    axum::serve(listener, app).await
}
