//! Who is asking: the client's address, as the redirect records it and the
//! rate limits count it.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client's address: the peer, or the last `X-Forwarded-For` hop when
/// the server is configured to trust its proxy. The last hop is the one the
/// proxy appended; earlier ones are whatever the client chose to send.
pub fn client_ip(trust_proxy: bool, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if trust_proxy {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}
