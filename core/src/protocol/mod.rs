//! The wire protocol between the guest init and the host: versioned postcard
//! messages in frames with a length and CRCs, so the host decoder can
//! resynchronise after garbage, corruption and truncation.

mod fit;
mod frame;
mod message;
pub mod terminal;

pub use frame::{encode, DecodeEvent, Decoder, HEADER_LEN, MAGIC, MAX_PAYLOAD};
pub use message::{
    Finish, Message, MonitorSummary, OutputSource, SchedulerFailure, Stall, MONITOR_STALL,
    PROTOCOL_VERSION, STUCK_DISABLING,
};
