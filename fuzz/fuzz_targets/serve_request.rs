//! Arbitrary bytes on one connection to `serve`'s HTTP/1 handling
//! (`server::respond` behind the server's own hyper settings), in memory.
//! Whatever comes back is HTTP/1, and the connection always ends.
#![no_main]

use irsa_doctor::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let answer = fuzzing::serve_request(data).expect("a connection to serve hung");
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/1."),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
});
