//! Parsing helpers shared by ktstr's first-party extractor plugins.
//!
//! - [`json`]: find the JSON document in a captured stream and flatten it into
//!   metrics named by JSON-Pointer-escaped paths.
//! - [`number`]: number parsing and formatting shared by the name rules.
//! - [`tool`]: for tests that run a real benchmark binary.

pub mod json;
pub mod number;
pub mod tool;

pub use json::{escape_key, find_json_document, flatten_json};
pub use number::{parse_finite, trim_decimal};
