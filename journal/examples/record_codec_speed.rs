//! Per-record costs of the codec, in release mode:
//! `cargo run --release -p ferry-journal --example record_codec_speed`.
//! Used to choose poly1305's backend (see `.cargo/config.toml`).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use ferry_journal::record::{GENESIS, NonceSource, RecordCodec, chain_hash};

const RECORDS: u64 = 200_000;
/// The size of a typical encoded event.
const PLAIN_BYTES: usize = 86;

fn per_record_ns(started: Instant) -> f64 {
    started.elapsed().as_nanos() as f64 / RECORDS as f64
}

fn main() {
    let codec = RecordCodec::new(&[1; 32], [2; 16]);
    let plain = vec![7_u8; PLAIN_BYTES];
    let mut nonces = NonceSource::for_records(RECORDS as usize).unwrap();
    let started = Instant::now();
    let stored: Vec<Vec<u8>> = (1..=RECORDS)
        .map(|seq| codec.seal(seq, &GENESIS, &plain, &mut nonces).unwrap())
        .collect();
    println!("seal        {:>6.0} ns/record", per_record_ns(started));
    let started = Instant::now();
    for (seq, record) in (1..).zip(&stored) {
        std::hint::black_box(codec.open(seq, &GENESIS, record).unwrap());
    }
    println!("open        {:>6.0} ns/record", per_record_ns(started));
    let started = Instant::now();
    for record in &stored {
        std::hint::black_box(chain_hash(record));
    }
    println!("chain hash  {:>6.0} ns/record", per_record_ns(started));
}
