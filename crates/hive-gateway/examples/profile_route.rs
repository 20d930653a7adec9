//! Runs N calls through the drill's route (`stack`) or to its first model's client alone
//! (`bare`), one at a time on one thread, against a simulator that answers at once: for
//! callgrind, to see where the stack's CPU goes.
//!
//! `valgrind --tool=callgrind target/release/examples/profile_route stack 2000`

use std::sync::Arc;

use hive_gateway::{
    drill::{GatewaySettings, gateway_yaml, models_yaml},
    fleet::Fleet,
};
use hive_openai::{ChatRequest, OpenAiClient};
use hive_sim::{Latency, Script, Simulator};
use tower::ServiceExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "stack".into());
    let calls: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let models = ["gpt-4o", "claude-4-sonnet", "deepseek-v3.1"].map(|m| {
            (
                m,
                Script::new().latency(Latency::Fixed(std::time::Duration::ZERO)),
            )
        });
        let sim = Simulator::start_seeded(models.to_vec(), 7)
            .await
            .expect("sim");
        sim.keep_log(false);
        let dir = std::env::temp_dir();
        let config = hive_config::Loader::new()
            .load_str(
                &dir,
                Some(&gateway_yaml(&GatewaySettings::default())),
                Some(&models_yaml(&sim.base_url())),
            )
            .expect("config");
        let fleet = Fleet::build(Arc::new(config), None, None, Some(7)).expect("fleet");
        let router = fleet.routes().get("council").expect("route").router.clone();
        let bare = OpenAiClient::builder("gpt-4o", sim.base_url())
            .build()
            .expect("client");
        for n in 0..calls {
            let request = ChatRequest::new(
                if which == "bare" { "gpt-4o" } else { "council" },
                format!("vote {n}"),
            );
            let ok = if which == "bare" {
                bare.clone().oneshot(request).await.is_ok()
            } else {
                router.clone().oneshot(request).await.is_ok()
            };
            assert!(ok, "call {n} failed");
        }
    });
}
