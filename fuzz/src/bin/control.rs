//! Fuzz target `control`: the controller's control API action bodies, fed to the engine when
//! accepted; see `ramp_live::fuzzing::control_body`.

fn main() {
    // Builds the engines once, before the loop, so that AFL++ sees the same code paths on
    // every execution.
    ramp_live::fuzzing::control_body(br#"{"who": "alice"}"#);
    afl::fuzz!(|data: &[u8]| {
        ramp_live::fuzzing::control_body(data);
    });
}
