//! An axum app with a different stack per route over per-model stacks both routes share:
//! `/vote` falls back in order under a strict deadline, `/chat` hedges. The code is in
//! `examples/src/axum_routes.rs`.
//!
//! Run: `cargo run -p hive-examples --example axum_routes`

#![allow(clippy::print_stdout)]

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), hive_resilience::BoxError> {
    let (calls, attempts) = hive_examples::axum_routes::run().await?;
    println!("axum: /vote in order under a 1 s deadline, /chat hedged after 250 ms");
    for (path, model, tries, time) in calls {
        let (model, tries) = (model.unwrap_or_default(), tries.unwrap_or_default());
        println!("  POST {path}  answered by {model:<16} attempts {tries}  in {time:?}");
    }
    for model in ["gpt-4o", "claude-4-sonnet", "deepseek-v3.1"] {
        let calls = attempts.iter().filter(|a| a.model == model).count();
        println!("  the provider saw {calls} call(s) to {model}");
    }
    Ok(())
}
