//! Finding plugins on the host: where to look, what loaded, what is shadowed,
//! and where the binaries they need live.

mod binary;
mod cache;
mod discovery;

pub use binary::{find_in_path, locate};
pub use discovery::{Catalog, Discovery};
