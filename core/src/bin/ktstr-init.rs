//! PID 1 of a ktstr guest. All logic lives in `ktstr_core::guest`.

fn main() {
    ktstr_core::guest::main()
}
