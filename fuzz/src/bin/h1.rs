//! Fuzz target `h1`: upstream HTTP/1.1 responses (heads, framing, chunked bodies) as the
//! proxy's connection pool reads them; see `ramp_proxy::fuzzing::h1_response`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        ramp_proxy::fuzzing::h1_response(data);
    });
}
