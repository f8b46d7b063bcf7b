//! `primes`: an example third-party plugin suite, one library exporting a
//! payload and the extractor that reads it.

mod extractor;
mod payload;

pub use extractor::{parse, PrimesExtractor};
pub use payload::Primes;

ktstr_plugin_api::export_plugins!(Primes, PrimesExtractor);
