//! The user's terminal during `ktstr shell`: raw mode that is always undone
//! (`raw`), and the relay between it and the guest's shell port (`relay`).

pub mod raw;
pub mod relay;

pub use raw::{eprint_line, restore};
pub use relay::{require_terminal, Relay};
