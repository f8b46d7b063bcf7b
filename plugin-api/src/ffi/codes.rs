//! Enums as integer codes: abi_stable's "field-less enum as a struct
//! wrapping an integer", so a code added in a minor version is a value an
//! older reader can recognise as unknown.

use abi_stable::StableAbi;

macro_rules! code {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $value:expr),* $(,)? }) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub u8);

        impl $name {
            $(pub const $variant: Self = Self($value);)*
        }
    };
}

code!(
    /// [`crate::PluginKind`].
    KindCode { PAYLOAD = 0, EXTRACTOR = 1, SCHEDULER = 2 }
);
code!(
    /// [`crate::Stream`].
    StreamCode { STDOUT = 0, STDERR = 1 }
);
code!(
    /// [`crate::Polarity`].
    PolarityCode { HIGHER_IS_BETTER = 0, LOWER_IS_BETTER = 1, NEUTRAL = 2 }
);
code!(
    /// [`crate::StopSignal`].
    SignalCode { INTERRUPT = 0, TERMINATE = 1 }
);
code!(
    /// [`crate::SchedulerNeed`].
    SchedNeedCode { ANY = 0, EEVDF_ONLY = 1, SCHED_EXT_ONLY = 2 }
);
