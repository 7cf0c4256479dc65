//! Integration tests of `tandem-proto`, in one binary so they link once.
//!
//! The threat model is `docs/security.md` (vectors V1–V40, response vectors R1–R8, checklist
//! A 1–28). Every request input goes through [`support::check_request`], which parses it
//! whole, split in two at every byte boundary and one byte per read, and requires the same
//! outcome from all three, as llhttp's test fixture does: a parser whose answer depends on
//! how TCP segmented the bytes is a smuggling primitive of its own.

/// Returns `Err(format!(..))` from the enclosing function unless `cond` holds. Table
/// checks return errors rather than panicking, so one run reports every failing case.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

mod bodies;
mod differential;
mod fuzz_seeds;
mod hostile;
mod responses;
mod roundtrip;
mod smuggler;
mod support;
