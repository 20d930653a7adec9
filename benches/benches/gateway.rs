//! What the `hive` gateway adds to a call: the same chat completion against the simulator on
//! loopback, made directly and through the gateway (an extra loopback hop, the request parsed
//! and routed through a model's stack, the answer written back), whole and streamed.
//!
//! Run: `cargo bench -p hive-benches --bench gateway`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive_config::Environment;
use hive_gateway::server::{ConfigSource, Options, Server};
use hive_openai::{ChatRequest, ChatResponse, OpenAiClient};
use tower::ServiceExt;

fn gateway(c: &mut Criterion) {
    let (runtime, sim) = hive_benches::runtime_with_simulator();
    let source = ConfigSource::Text {
        dir: std::env::temp_dir(),
        resilience: Some(
            "metrics: false\ndefaults:\n  health: { probe: none }\nalerts: { rules: [] }\naudit: { path: off }\n"
                .to_owned(),
        ),
        models: Some(format!("models:\n  - id: m\n    base_url: {}\n", sim.base_url())),
    };
    let options = Options {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        env: Environment::vars(Vec::<(String, String)>::new()),
        seed: Some(1),
        watch: false,
        ..Options::default()
    };
    let server = runtime.block_on(Server::start(source, options)).unwrap();

    let direct = OpenAiClient::builder("m", sim.base_url()).build().unwrap();
    let through = OpenAiClient::builder("m", server.base_url())
        .build()
        .unwrap();
    let mut group = c.benchmark_group("gateway");
    group.throughput(Throughput::Elements(1));
    for (stream, kind) in [(false, "whole"), (true, "streamed")] {
        let request = ChatRequest::new("m", "Vote on BIP-01");
        let request = if stream { request.streamed() } else { request };
        for (client, path) in [(&direct, "direct"), (&through, "through_hive")] {
            group.bench_function(format!("{kind}/{path}"), |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        match client.clone().oneshot(request.clone()).await.unwrap() {
                            ChatResponse::Complete(answer) => black_box(answer.choices.len()),
                            ChatResponse::Stream(stream) => {
                                black_box(stream.collect_text().await.unwrap().len())
                            }
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gateway);
criterion_main!(benches);
