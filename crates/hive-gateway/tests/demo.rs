//! `hive demo` as the whole product's smoke test: the first 35 s of its story in real time
//! (the simulator, the gateway and the workload over loopback HTTP: a paused clock would jump
//! to the next timer whenever the runtime waits on a socket, and streams would seem to take
//! seconds), checked against what the story makes happen by then: the primary down from
//! 20 s, the second model cutting streams from 28 s to 32 s.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_gateway::{
    demo::{self, DemoOptions},
    story,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_answers_every_request_through_an_overlapping_outage() {
    let options = DemoOptions {
        duration: Duration::from_secs(35),
        listen: "127.0.0.1:0".parse().unwrap(),
        clients: 4,
        seed: Some(7),
    };
    let summary = demo::run(options, std::future::pending()).await.unwrap();
    println!("{summary}");
    assert!(summary.requests > 150, "{summary}");
    assert_eq!(
        summary.answered, summary.requests,
        "every request answered: {summary}"
    );
    assert_eq!(
        summary.streams.0, summary.streams.1,
        "every stream intact: {summary}"
    );
    for model in [story::PRIMARY, story::SECOND, story::THIRD] {
        assert!(
            summary.by_model.get(model).is_some_and(|n| *n > 0),
            "{model} answered: {summary}"
        );
    }
    assert!(
        summary
            .openings
            .get(story::PRIMARY)
            .is_some_and(|n| *n >= 1),
        "{summary}"
    );
    assert!(
        summary.continuations >= 1,
        "a cut stream was continued: {summary}"
    );
    // The primary is down 15 of the 35 s: a direct client loses about 40% of its calls.
    let (direct, answered) = summary.direct;
    assert!(direct > 50 && answered * 10 < direct * 7, "{summary}");
}
