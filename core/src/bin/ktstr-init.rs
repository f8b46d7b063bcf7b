//! PID 1 of a ktstr guest. All logic lives in `ktstr_core::guest`.
//!
//! Run as `ktstr-init __plugin-call`, it is instead the child that makes one
//! contained plugin call for PID 1 (see `ktstr_core::plugin::call`).

fn main() {
    if std::env::args_os().nth(1).is_some_and(|a| a == ktstr_core::plugin::call::CALL_ARG) {
        std::process::exit(ktstr_core::plugin::call::serve());
    }
    ktstr_core::guest::main()
}
