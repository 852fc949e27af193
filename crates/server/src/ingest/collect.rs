//! The first-party snippet `/t.js` and its endpoint `/collect`.

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
