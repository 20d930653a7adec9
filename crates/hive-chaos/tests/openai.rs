//! With hive-openai's client: every injected failure gives the error the real provider's
//! failure gives (hive-sim on loopback), classified the same by `OpenAiClassifier`; every
//! stream fault ends the stream with the same `ChatStream` error after exactly N chunks.

#![allow(clippy::unwrap_used, clippy::print_stdout)]
#![cfg(feature = "openai")]

use std::time::Duration;

use hive_chaos::{ChaosLayer, ChaosRules, Fault, OpenAiFaults, Rule, StreamFault};
use hive_core::{BoxError, Classified, Classify, FailureClass, Outcome};
use hive_openai::{
    ChatRequest, ChatResponse, ChatStream, OpenAiClassifier, OpenAiClient, OpenAiError,
};
use hive_sim::{ANSWER, Behaviour, RetryAfter, Script, Simulator};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

fn client(
    sim: &Simulator,
    configure: impl Fn(hive_openai::OpenAiClientBuilder) -> hive_openai::OpenAiClientBuilder,
) -> OpenAiClient {
    configure(OpenAiClient::builder("m", sim.base_url()))
        .build()
        .unwrap()
}

/// A chaos layer with one rule for model `m`, over `client`.
fn chaotic(
    client: OpenAiClient,
    fault: Fault,
) -> impl tower::Service<ChatRequest, Response = ChatResponse, Error = OpenAiError> + Clone {
    ChaosLayer::new(ChaosRules::new().seed(1).rule(Rule::new(fault).model("m")))
        .unwrap()
        .model("m")
        .with_faults(OpenAiFaults)
        .layer(client)
}

type Answer = Result<ChatResponse, OpenAiError>;

fn verdict(answer: &Answer) -> (Classified, Option<http::StatusCode>, String) {
    (
        Classify::<ChatResponse, OpenAiError>::classify(&OpenAiClassifier, answer),
        Classify::<ChatResponse, OpenAiError>::status(&OpenAiClassifier, answer),
        match answer {
            Ok(_) => "answer".to_owned(),
            Err(error) => error.to_string(),
        },
    )
}

#[tokio::test(start_paused = true)]
async fn every_injected_failure_is_the_real_ones_error_and_class() {
    let s = Duration::from_secs;
    let cases: Vec<(Behaviour, Fault)> = vec![
        (
            Behaviour::RateLimited(Some(RetryAfter::Seconds(3))),
            Fault::rate_limited(Some(s(3))),
        ),
        (Behaviour::RateLimited(None), Fault::rate_limited(None)),
        (Behaviour::Status(500), Fault::status(500)),
        (Behaviour::Status(502), Fault::status(502)),
        (Behaviour::Status(503), Fault::status(503)),
        (Behaviour::Status(529), Fault::status(529)),
        (Behaviour::ResetBeforeHeaders, Fault::ConnectionReset),
        (
            Behaviour::WrongModel("gpt-3.5".into()),
            Fault::WrongModel {
                answered: "gpt-3.5".into(),
            },
        ),
        (
            Behaviour::ContextLengthExceeded,
            Fault::ContextLengthExceeded,
        ),
        (Behaviour::ContentFilter, Fault::ContentPolicy),
    ];
    let mut script = Script::new();
    for (i, (behaviour, _)) in cases.iter().enumerate() {
        script = script.until_call(i as u32 + 1, behaviour.clone());
    }
    let real = Simulator::start([("m", script)]).await.unwrap();
    let healthy = Simulator::start([("m", Script::new())]).await.unwrap();
    let real_client = client(&real, |b| b);
    for (behaviour, fault) in cases {
        let expected = real_client
            .clone()
            .oneshot(ChatRequest::new("m", "q"))
            .await;
        let injected = chaotic(client(&healthy, |b| b), fault.clone())
            .oneshot(ChatRequest::new("m", "q"))
            .await;
        assert!(expected.is_err(), "{behaviour:?}");
        assert_eq!(
            verdict(&injected),
            verdict(&expected),
            "{behaviour:?} / {fault:?}"
        );
        // Boxed by a layer above, still the same.
        let boxed = |a: Answer| a.map_err(BoxError::from);
        let (e, i) = (boxed(expected), boxed(injected));
        assert_eq!(
            Classify::<ChatResponse, BoxError>::classify(&OpenAiClassifier, &i),
            Classify::<ChatResponse, BoxError>::classify(&OpenAiClassifier, &e),
        );
    }
    assert!(
        healthy.attempts().is_empty(),
        "an injected failure never calls the model"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_the_clients_own_and_a_hang_ends_at_the_attempt_timeout() {
    let s = Duration::from_secs;
    let real = Simulator::start([("m", Script::new().always(Behaviour::Hang))])
        .await
        .unwrap();
    let healthy = Simulator::start([("m", Script::new())]).await.unwrap();
    let start = Instant::now();
    let expected = client(&real, |b| b.first_token_timeout(s(5)))
        .oneshot(ChatRequest::new("m", "q"))
        .await;
    assert_eq!(start.elapsed(), s(5));
    let start = Instant::now();
    let injected = chaotic(client(&healthy, |b| b), Fault::Timeout { after: s(5) })
        .oneshot(ChatRequest::new("m", "q"))
        .await;
    assert_eq!(start.elapsed(), s(5));
    assert_eq!(verdict(&injected), verdict(&expected));
    assert_eq!(
        verdict(&injected).0,
        Classified::Now(Outcome::failure(FailureClass::Timeout))
    );

    // A hang: only the attempt timeout outside ends it, as with the real one.
    let timeout = tower::timeout::TimeoutLayer::new(s(9));
    let start = Instant::now();
    let expected = timeout
        .layer(client(&real, |b| b.first_token_timeout(s(60))))
        .oneshot(ChatRequest::new("m", "q"))
        .await;
    let injected = timeout
        .layer(chaotic(client(&healthy, |b| b), Fault::Hang))
        .oneshot(ChatRequest::new("m", "q"))
        .await;
    assert_eq!(start.elapsed(), s(18));
    let classify = |a: &Result<ChatResponse, BoxError>| {
        Classify::<ChatResponse, BoxError>::classify(&OpenAiClassifier, a)
    };
    assert_eq!(classify(&injected), classify(&expected));
    assert_eq!(
        classify(&injected),
        Classified::Now(Outcome::failure(FailureClass::Timeout))
    );
}

async fn stream_of(
    service: impl tower::Service<ChatRequest, Response = ChatResponse, Error = OpenAiError>,
) -> Box<ChatStream> {
    match service
        .oneshot(ChatRequest::new("m", "Vote on BIP-01").streamed())
        .await
        .unwrap()
    {
        ChatResponse::Stream(stream) => stream,
        ChatResponse::Complete(_) => panic!("asked for a stream"),
    }
}

/// The stream's chunks (counted) and text, and the error that ended it.
async fn drain(mut stream: Box<ChatStream>) -> (usize, String, Option<OpenAiError>, usize) {
    let (mut chunks, mut text) = (0, String::new());
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                chunks += 1;
                for choice in chunk.choices {
                    text.push_str(choice.delta.content.as_deref().unwrap_or(""));
                }
            }
            Err(error) => return (chunks, text, Some(error), stream.malformed()),
        }
    }
    (chunks, text, None, stream.malformed())
}

fn first(tokens: usize) -> String {
    ANSWER.split_inclusive(' ').take(tokens).collect()
}

#[tokio::test(start_paused = true)]
async fn stream_faults_end_with_the_real_streams_error_after_exactly_n_chunks() {
    let s = Duration::from_secs;
    let cases = [
        (
            Behaviour::StreamCut { after_tokens: 3 },
            StreamFault::Cut { after: 3 },
            3,
        ),
        (
            Behaviour::StreamReset { after_tokens: 4 },
            StreamFault::Reset { after: 4 },
            4,
        ),
        (
            Behaviour::Stall { after_tokens: 2 },
            StreamFault::Stall { after: 2 },
            2,
        ),
    ];
    for (behaviour, fault, n) in cases {
        let real = Simulator::start([("m", Script::new().always(behaviour.clone()))])
            .await
            .unwrap();
        let healthy = Simulator::start([("m", Script::new())]).await.unwrap();
        let idle = |b: hive_openai::OpenAiClientBuilder| b.idle_timeout(s(1));
        let (e_chunks, e_text, e_error, _) = drain(stream_of(client(&real, idle)).await).await;
        let start = Instant::now();
        let (chunks, text, error, _) =
            drain(stream_of(chaotic(client(&healthy, idle), Fault::Stream(fault))).await).await;
        let (error, e_error) = (error.unwrap(), e_error.unwrap());
        assert_eq!((chunks, text.as_str()), (n, first(n).as_str()), "{fault:?}");
        assert_eq!(
            (e_chunks, e_text.as_str()),
            (n, first(n).as_str()),
            "{behaviour:?}"
        );
        assert_eq!(error.to_string(), e_error.to_string(), "{fault:?}");
        assert_eq!(error.outcome(), e_error.outcome());
        match (&error, &e_error) {
            (
                OpenAiError::StreamCut { chunks, source, .. },
                OpenAiError::StreamCut {
                    chunks: e_chunks,
                    source: e_source,
                    ..
                },
            ) => {
                assert_eq!(chunks, e_chunks);
                assert_eq!(
                    source.is_some(),
                    e_source.is_some(),
                    "a reset keeps a cause"
                );
            }
            (OpenAiError::Stalled { limit, .. }, OpenAiError::Stalled { .. }) => {
                assert_eq!(*limit, s(1));
                assert_eq!(
                    start.elapsed(),
                    s(1),
                    "stalled one idle limit after chunk {n}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_malformed_chunk_fails_or_is_skipped_as_the_client_is_set() {
    let real = Simulator::start([(
        "m",
        Script::new().always(Behaviour::MalformedChunk { at: 2 }),
    )])
    .await
    .unwrap();
    let healthy = Simulator::start([("m", Script::new())]).await.unwrap();
    let fault = Fault::Stream(StreamFault::Malformed { after: 2 });
    // Failing: the same error (the same event number, the same parse error).
    let strict = |b: hive_openai::OpenAiClientBuilder| b.skip_malformed(false);
    let (e_chunks, _, e_error, _) = drain(stream_of(client(&real, strict)).await).await;
    let (chunks, text, error, _) =
        drain(stream_of(chaotic(client(&healthy, strict), fault.clone())).await).await;
    let (error, e_error) = (error.unwrap(), e_error.unwrap());
    assert!(matches!(error, OpenAiError::Malformed { .. }), "{error:?}");
    assert_eq!((chunks, e_chunks, text), (2, 2, first(2)));
    assert_eq!(error.to_string(), e_error.to_string());
    assert_eq!(error.outcome(), Outcome::failure(FailureClass::Malformed));
    // Skipped: counted, and the answer goes on (here whole: the event was added, where
    // hive-sim's replaced a token).
    let (_, text, error, malformed) =
        drain(stream_of(chaotic(client(&healthy, |b| b), fault)).await).await;
    assert!(error.is_none());
    assert_eq!((text.as_str(), malformed), (ANSWER, 1));
    let (_, _, e_error, e_malformed) = drain(stream_of(client(&real, |b| b)).await).await;
    assert!(e_error.is_none());
    assert_eq!(e_malformed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_missing_done_ends_a_finished_answer_well_as_the_real_one_does() {
    let real = Simulator::start([("m", Script::new().always(Behaviour::MissingDone))])
        .await
        .unwrap();
    let healthy = Simulator::start([("m", Script::new())]).await.unwrap();
    let (e_chunks, e_text, e_error, _) = drain(stream_of(client(&real, |b| b)).await).await;
    let (chunks, text, error, _) = drain(
        stream_of(chaotic(
            client(&healthy, |b| b),
            Fault::Stream(StreamFault::MissingDone),
        ))
        .await,
    )
    .await;
    assert!(error.is_none() && e_error.is_none());
    assert_eq!((chunks, text.as_str()), (e_chunks, e_text.as_str()));
    assert_eq!(text, ANSWER);
}

#[tokio::test(start_paused = true)]
async fn a_stream_fault_leaves_a_whole_answer_untouched_and_is_recorded_at_its_end() {
    let healthy = Simulator::start([("m", Script::new())]).await.unwrap();
    let service = chaotic(
        client(&healthy, |b| b),
        Fault::Stream(StreamFault::Cut { after: 1 }),
    );
    let whole = service
        .clone()
        .oneshot(ChatRequest::new("m", "q"))
        .await
        .unwrap();
    assert!(matches!(whole, ChatResponse::Complete(_)));
    // The end-of-stream classification (breakers, health) sees the cut.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut response = service
        .oneshot(ChatRequest::new("m", "q").streamed())
        .await
        .unwrap();
    Classify::<ChatResponse, OpenAiError>::attach_end_of_stream(
        &OpenAiClassifier,
        &mut response,
        hive_core::EosRecorder::new(move |o| tx.send(o).unwrap()),
    );
    let ChatResponse::Stream(stream) = response else {
        panic!()
    };
    let (chunks, _, error, _) = drain(stream).await;
    assert_eq!(chunks, 1);
    assert!(matches!(
        error,
        Some(OpenAiError::StreamCut { chunks: 1, .. })
    ));
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        [Outcome::failure(FailureClass::StreamCut)]
    );
}
