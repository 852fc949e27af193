//! Postback tokens: the secret in a program's server-to-server postback URL.
//!
//! Like API keys, a token is shown once (when it is made or rotated) and
//! stored only as its SHA-256 hash, with a short hint so an owner can tell
//! which token a network was given without the database revealing it.

use crate::apikey::hash_token;
use crate::ids::random_base62;

/// The prefix of tokens made since they are stored hashed; tokens made
/// before (32 base62 characters, no prefix) keep working.
const PREFIX: &str = "trb_pb_";

/// A newly made postback token: the token (shown once), its hash and hint.
pub struct NewPostbackToken {
    pub token: String,
    pub hash: String,
    pub hint: String,
}

impl NewPostbackToken {
    /// A random token: `trb_pb_<40 base62>` (≈238 bits, like API keys, so
    /// a fast hash is right; the prefix helps secret scanners find leaks).
    pub fn generate() -> Self {
        Self::from_token(format!("{PREFIX}{}", random_base62(40)))
    }

    /// The stored form of an existing token (used when migrating tokens
    /// that were stored in clear).
    pub fn from_token(token: String) -> Self {
        Self {
            hash: hash_token(&token),
            hint: hint(&token),
            token,
        }
    }
}

/// Whether `token` is the one whose hash is `stored_hash`. Compares hashes
/// in constant time, so the time taken says nothing about the stored hash.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    let given = hash_token(token);
    given.len() == stored_hash.len()
        && given
            .bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The prefix and the last four characters: enough to tell tokens apart,
/// far too little to guess one.
fn hint(token: &str) -> String {
    let prefix = if token.starts_with(PREFIX) {
        PREFIX
    } else {
        ""
    };
    let tail: String = {
        let chars: Vec<char> = token.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_stored_as_its_hash_and_only_it_matches() {
        let a = NewPostbackToken::generate();
        let b = NewPostbackToken::generate();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("trb_pb_"), "{}", a.token);
        assert_eq!(a.hash, hash_token(&a.token));
        assert!(!a.hash.contains(&a.token[PREFIX.len()..]));
        assert!(token_matches(&a.token, &a.hash));
        assert!(!token_matches(&b.token, &a.hash));
        assert!(!token_matches(&a.hash, &a.hash), "the hash is not a token");
    }

    #[test]
    fn the_hint_shows_the_prefix_and_last_four_characters_only() {
        let t = NewPostbackToken::from_token("trb_pb_abcdefghWXYZ".into());
        assert_eq!(t.hint, "trb_pb_…WXYZ");
        let legacy = NewPostbackToken::from_token("0123456789abcdefghijklmnopqrWXYZ".into());
        assert_eq!(legacy.hint, "…WXYZ");
    }
}
