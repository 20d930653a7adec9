//! The model client's cost: a non-streaming call against the simulator on loopback beside
//! the same call made with a bare hyper client, and the SSE parser's cost per chunk.
//!
//! Run: `cargo bench -p hive-benches --bench client`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, time::Duration};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive_openai::{ChatChunk, ChatRequest, ChatResponse, OpenAiClient, SseDecoder};
use hive_sim::ANSWER;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::ServiceExt;

fn client_call(c: &mut Criterion) {
    let (runtime, sim) = hive_benches::runtime_with_simulator();
    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(1));

    // Both clients set TCP_NODELAY, as hive's does.
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let bare = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let body = serde_json::to_vec(&ChatRequest::new("m", "Vote on BIP-01")).unwrap();
    group.bench_function("bare_hyper", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = http::Request::post(&url)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.clone())))
                    .unwrap();
                let response = bare.request(request).await.unwrap();
                black_box(response.into_body().collect().await.unwrap().to_bytes())
            })
        })
    });

    let client = OpenAiClient::builder("m", sim.base_url()).build().unwrap();
    let request = ChatRequest::new("m", "Vote on BIP-01");
    group.bench_function("hive_openai", |b| {
        b.iter(|| {
            runtime.block_on(async {
                match client.clone().oneshot(request.clone()).await.unwrap() {
                    ChatResponse::Complete(answer) => black_box(answer.choices.len()),
                    ChatResponse::Stream(_) => unreachable!("not asked to stream"),
                }
            })
        })
    });
    group.finish();
}

fn sse_parser(c: &mut Criterion) {
    const CHUNKS: u64 = 1_000;
    let event = format!(
        "data: {}\n\n",
        serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "token "}, "finish_reason": null}]
        })
    );
    let stream: Vec<u8> = event.repeat(CHUNKS as usize).into_bytes();
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Elements(CHUNKS));
    group.bench_function("decode_and_parse_per_chunk", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            // Delivered in 1 KiB reads, as a socket would.
            let mut parsed = 0usize;
            for piece in stream.chunks(1024) {
                decoder.push(piece);
                while let Some(data) = decoder.next_data() {
                    let chunk: ChatChunk = serde_json::from_str(&data).unwrap();
                    parsed += chunk.choices.len();
                }
            }
            black_box(parsed)
        })
    });
    group.finish();
    let _ = ANSWER;
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = client_call, sse_parser
}
criterion_main!(benches);
