//! The injection rate, tested statistically: at 0.001, 0.02 and 1.0, the count of
//! injected calls is inside the 99.99% binomial interval, with a fixed seed and over many
//! seeds; and a seeded run repeats exactly.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod support;

use hive_chaos::{ChaosLayer, ChaosRules, Fault, Rule};
use support::{InstantModel, injected};
use tower::Layer;

/// z of a two-sided 99.99% interval.
const Z: f64 = 3.8906;

/// The calls injected of `n`, at `rate` with `seed`, and the pattern's first 64 calls.
fn run(rate: f64, n: usize, seed: u64) -> (usize, u64) {
    let layer = ChaosLayer::new(
        ChaosRules::new()
            .seed(seed)
            .rule(Rule::new(Fault::status(503)).rate(rate)),
    )
    .unwrap();
    let mut svc = layer.layer(InstantModel);
    let mut pattern = 0u64;
    let mut count = 0;
    for i in 0..n {
        if injected(&mut svc) {
            count += 1;
            if i < 64 {
                pattern |= 1 << i;
            }
        }
    }
    let stats = layer.handle().stats()[0];
    assert_eq!((stats.matched, stats.injected), (n as u64, count as u64));
    (count, pattern)
}

/// The 99.99% interval of the count of a binomial(n, p), as (low, high).
fn interval(n: usize, p: f64) -> (f64, f64) {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    (mean - Z * sd, mean + Z * sd)
}

fn check(rate: f64, n: usize) {
    let (low, high) = interval(n, rate);
    let (fixed, _) = run(rate, n, 0x5EED);
    println!(
        "rate {rate}: {fixed} of {n} with seed 0x5EED ({:.5}), interval {low:.1}..={high:.1}",
        fixed as f64 / n as f64
    );
    assert!((low..=high).contains(&(fixed as f64)));
    let mut counts = Vec::new();
    for seed in 1..=12 {
        let (count, _) = run(rate, n, seed);
        assert!(
            (low..=high).contains(&(count as f64)),
            "seed {seed}: {count} of {n} outside {low:.1}..={high:.1}"
        );
        counts.push(count);
    }
    // Over every seed together: the pooled count is inside the pooled interval too.
    let pooled: usize = counts.iter().sum();
    let (low, high) = interval(n * counts.len(), rate);
    println!(
        "rate {rate}: seeds 1..=12: {counts:?}, pooled {pooled}, interval {low:.1}..={high:.1}"
    );
    assert!((low..=high).contains(&(pooled as f64)));
}

#[test]
fn a_rate_of_one_in_a_thousand() {
    check(0.001, 200_000);
}

#[test]
fn a_rate_of_two_percent() {
    check(0.02, 50_000);
}

#[test]
fn a_rate_of_one_injects_every_call() {
    for seed in [0x5EED, 1, 2, 3] {
        assert_eq!(run(1.0, 1_000, seed).0, 1_000);
    }
    assert_eq!(run(0.0, 1_000, 1).0, 0);
}

#[test]
fn a_seeded_run_repeats_exactly_and_another_seed_differs() {
    assert_eq!(run(0.3, 5_000, 77), run(0.3, 5_000, 77));
    assert_ne!(run(0.3, 5_000, 77).1, run(0.3, 5_000, 78).1);
}
