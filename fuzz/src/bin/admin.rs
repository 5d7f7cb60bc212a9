//! Fuzz target `admin`: the proxy admin API's request bodies (`PUT /weights`,
//! `POST /faults`); see `ramp_proxy::fuzzing::admin_body`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ramp_proxy::fuzzing::admin_body(data);
    });
}
