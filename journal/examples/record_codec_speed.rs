//! Per-record costs of the codec, in release mode:
//! `cargo run --release -p ferry-journal --example record_codec_speed`.
//! Used to choose poly1305's backend (see `.cargo/config.toml`).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use ferry_journal::record::{GENESIS, OpenCache, RecordCodec, chain_hash};

const RECORDS: u64 = 200_000;
/// The size of a typical encoded event.
const PLAIN_BYTES: usize = 86;

fn per_record_ns(started: Instant) -> f64 {
    started.elapsed().as_nanos() as f64 / RECORDS as f64
}

fn main() {
    let codec = RecordCodec::new(&[1; 32], [2; 16]);
    let plain = vec![7_u8; PLAIN_BYTES];
    // One batch key per 256 records, as the journal draws one per appended batch.
    let started = Instant::now();
    let mut key = codec.batch_key().unwrap();
    let stored: Vec<Vec<u8>> = (1..=RECORDS)
        .map(|seq| {
            if seq % 256 == 0 {
                key = codec.batch_key().unwrap();
            }
            codec.seal(seq, &GENESIS, &plain, &key).unwrap()
        })
        .collect();
    println!("seal        {:>6.0} ns/record", per_record_ns(started));
    let started = Instant::now();
    for (seq, record) in (1..).zip(&stored) {
        std::hint::black_box(codec.open(seq, &GENESIS, record).unwrap());
    }
    println!(
        "open        {:>6.0} ns/record (subkey derived every time)",
        per_record_ns(started)
    );
    let started = Instant::now();
    let mut cache = OpenCache::default();
    for (seq, record) in (1..).zip(&stored) {
        std::hint::black_box(
            codec
                .open_cached(seq, &GENESIS, record, &mut cache)
                .unwrap(),
        );
    }
    println!(
        "open cached {:>6.0} ns/record (subkey reused within a batch)",
        per_record_ns(started)
    );
    let started = Instant::now();
    for record in &stored {
        std::hint::black_box(chain_hash(record));
    }
    println!("chain hash  {:>6.0} ns/record", per_record_ns(started));
}
