//! The template error type (parse and execution errors read like Go's).

/// A template error, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

pub(super) fn perr(line: usize, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!(":{line}: {msg}"))
}
