//! A plain hyper client behind health gate → retry → breaker → timeout, calling a flaky
//! hyper server (503 and 429 with `Retry-After`, then 200) on loopback. The code is in
//! `examples/src/hyper_client.rs`.
//!
//! Run: `cargo run -p hive-examples --example hyper_client`

#![allow(clippy::print_stdout)]

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), hive_resilience::BoxError> {
    let (status, arrivals, breaker) = hive_examples::hyper_client::run().await?;
    println!("hyper client behind health gate → retry → breaker → timeout");
    println!("  the caller got  {status}");
    for (n, at) in arrivals.iter().enumerate() {
        println!(
            "  attempt {} reached the server at {:.1} s",
            n + 1,
            at.as_secs_f64()
        );
    }
    let (state, calls, failed) = (breaker.state, breaker.calls, breaker.failed_calls);
    println!("  breaker         {state} ({calls} calls, {failed} failed)");
    Ok(())
}
