//! Arbitrary bytes through `inject`'s stream (`inject_stream`, with the
//! options the `inject` command builds). Never panics; an output, fed
//! back, comes out unchanged.
#![no_main]

use std::sync::LazyLock;

use irsa_doctor_injector::{inject_stream, Mode, Options, Template};
use libfuzzer_sys::fuzz_target;

static OPTIONS: LazyLock<Options> = LazyLock::new(|| Options {
    template: Template::embedded().expect("the embedded template parses"),
    image: Some("registry.example/irsa-doctor:fuzz".to_owned()),
    mode: Mode::Sidecar,
});

fuzz_target!(|data: &[u8]| {
    let Ok((once, _)) = inject_stream(data, &OPTIONS) else {
        return;
    };
    let (twice, _) = inject_stream(once.as_bytes(), &OPTIONS)
        .unwrap_or_else(|e| panic!("the output does not read back: {e}\n{once}"));
    assert_eq!(once, twice, "not idempotent");
});
