//! The seeds a simulation runs and how its failures are told: `FERRY_SIM_SEED=N` replays one,
//! `FERRY_SIM_SEEDS=N` runs seeds 1..=N (2,000 by default).

/// Runs `simulate` for every seed; the failures, at most ten, each with the command that
/// replays it (`test` is the test target's name). Returns the seeds run too.
pub fn run(test: &str, simulate: impl Fn(u64) -> Result<(), String>) -> (usize, Vec<String>) {
    let seeds: Vec<u64> = match std::env::var("FERRY_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("FERRY_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("FERRY_SIM_SEEDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(2_000u64);
            (1..=count).collect()
        }
    };
    let mut failures = Vec::new();
    for seed in &seeds {
        if let Err(problem) = simulate(*seed) {
            failures.push(format!(
                "seed {seed}: {problem}\n  replay: FERRY_SIM_SEED={seed} cargo test -p ferry-tests --test {test}"
            ));
            if failures.len() >= 10 {
                break;
            }
        }
    }
    (seeds.len(), failures)
}

/// Fails the test with every failure, when there is one.
pub fn assert_none_failed(seeds: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds,
        failures.join("\n")
    );
}
