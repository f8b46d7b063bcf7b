//! Errors that are the user's to fix (exit code 2), told apart from host
//! failures (exit code 5) by type.

#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The exit code for an error: usage errors anywhere in the chain give 2.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.downcast_ref::<UsageError>().is_some()) {
        crate::exit::USAGE
    } else {
        crate::exit::INFRA_ERROR
    }
}
