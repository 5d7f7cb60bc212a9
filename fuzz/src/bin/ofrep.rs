//! Fuzz target `ofrep`: OFREP evaluation request bodies (single and bulk), `If-None-Match`
//! fields and flag-key path segments; see `ramp_flags::fuzzing::ofrep_request`.

fn main() {
    // Builds the flag snapshot once, before the loop, so that AFL++ sees the same code paths
    // on every execution.
    ramp_flags::fuzzing::ofrep_request(b"{}");
    afl::fuzz!(|data: &[u8]| {
        ramp_flags::fuzzing::ofrep_request(data);
    });
}
