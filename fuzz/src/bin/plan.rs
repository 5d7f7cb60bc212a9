//! Fuzz target `plan`: plan files, read by `ramp_core::parse_plan` and then run by the
//! engine when accepted; see `ramp_core::fuzzing::plan`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ramp_core::fuzzing::plan(data);
    });
}
