//! The domain's validation error: which field was wrong and why.
//!
//! It knows nothing of HTTP; the server maps it to a 4xx response body that
//! names the field, and the CLI to a message naming the line.

use std::fmt;

/// A value that failed to parse, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// The field (in API naming, snake_case) that holds the bad value.
    pub field: String,
    /// A human-readable sentence saying what is wrong.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, reported under another field name (e.g. nested input).
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
