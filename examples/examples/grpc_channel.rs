//! A tonic gRPC client channel behind health gate → retry → breaker → timeout, calling a
//! tiny model service (its proto's messages derived by hand, no protoc) on loopback. The
//! code is in `examples/src/grpc_channel.rs`.
//!
//! Run: `cargo run -p hive-examples --example grpc_channel`

#![allow(clippy::print_stdout)]

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), hive_resilience::BoxError> {
    let (answer, refused, calls) = hive_examples::grpc_channel::run().await?;
    println!("tonic Channel behind health gate → retry → breaker → timeout");
    println!("  answer           {answer:?} (after two UNAVAILABLE, retried)");
    println!("  an empty prompt  {refused:?} (a client error: not retried)");
    println!("  the server saw   {calls} calls");
    Ok(())
}
