//! Fuzz target `flags_file`: flags files, read by `ramp_flags::flags::parse_flags_file` and
//! evaluated when accepted; see `ramp_flags::fuzzing::flags_file`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ramp_flags::fuzzing::flags_file(data);
    });
}
