//! Continuation measured against the simulator: a stream cut (or broken, or stalled) after
//! 40 of its 60 tokens, continued by a second simulated model from the partial answer as an
//! assistant prefill, read directly and through the SSE encoder by the client over
//! loopback. Paused time: stalls and limits are exact.

#![allow(clippy::unwrap_used)]

mod support;

use std::{pin::Pin, time::Duration};

use hive_core::{FailureClass, Outcome};
use hive_openai::{
    ChatChunk, ChatRequest, ChatResponse, ChatStream, ContinuationError, ContinueRequest,
    ContinuedStream, NotContinued, OpenAiClient, OpenAiError, server::SseEncoder,
};
use hive_sim::{Behaviour, Script, Simulator, long_answer};
use support::gateway::Gateway;
use tower::ServiceExt;

fn client(model: &str, base_url: &str) -> OpenAiClient {
    OpenAiClient::builder(model, base_url)
        .first_token_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(2))
        .total_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest::new("primary", "Vote on BIP-01").streamed()
}

async fn open(client: OpenAiClient, request: ChatRequest) -> Result<Box<ChatStream>, OpenAiError> {
    match client.oneshot(request).await? {
        ChatResponse::Stream(stream) => Ok(stream),
        ChatResponse::Complete(_) => panic!("asked for a stream"),
    }
}

/// A continuation's future: boxed, to name it.
type Next = Pin<Box<dyn Future<Output = Result<Box<ChatStream>, OpenAiError>> + Send>>;

/// `primary`'s stream, continued by `next`.
async fn continued(
    sim: &Simulator,
    next: &'static str,
) -> ContinuedStream<Box<ChatStream>, impl FnMut(ContinueRequest) -> Next + Send + Unpin, Next> {
    let first = open(client("primary", &sim.base_url()), request())
        .await
        .unwrap();
    let next = client(next, &sim.base_url());
    ContinuedStream::new(first, request(), move |ask: ContinueRequest| -> Next {
        Box::pin(open(next.clone(), ask.request))
    })
}

/// The chunks until the end, and the error that ended the stream.
async fn drain<S, F, Fut, E>(
    stream: &mut ContinuedStream<S, F, Fut>,
) -> (Vec<ChatChunk>, Option<ContinuationError>)
where
    S: futures_core::Stream<Item = Result<ChatChunk, OpenAiError>> + Unpin,
    F: FnMut(ContinueRequest) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    E: Into<hive_core::BoxError>,
{
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => return (chunks, Some(error)),
        }
    }
    (chunks, None)
}

/// The content of each chunk that carries some.
fn tokens(chunks: &[ChatChunk]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.clone())
        .filter(|c| !c.is_empty())
        .collect()
}

fn first_tokens(n: usize) -> String {
    long_answer(60).split_inclusive(' ').take(n).collect()
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_after_40_of_60_tokens_reaches_the_caller_as_60_tokens() {
    let answer = long_answer(60);
    for cut in [
        Behaviour::StreamCut { after_tokens: 40 },
        Behaviour::StreamReset { after_tokens: 40 },
        Behaviour::Stall { after_tokens: 40 },
    ] {
        let sim = Simulator::start([
            (
                "primary",
                Script::new().answer(answer.clone()).always(cut.clone()),
            ),
            ("secondary", Script::new().answer(answer.clone())),
        ])
        .await
        .unwrap();
        let mut stream = continued(&sim, "secondary").await;
        let (chunks, error) = drain(&mut stream).await;
        assert!(error.is_none(), "{cut:?}: {error:?}");
        // 60 tokens, each once, in order: the whole text, exactly.
        let received = tokens(&chunks);
        assert_eq!(received.len(), 60, "{cut:?}");
        assert_eq!(received.concat(), answer, "{cut:?}");
        // One answer: every chunk named as the model asked, a proper finish, usage.
        assert!(chunks.iter().all(|c| c.model == "primary"), "{cut:?}");
        let last = chunks.last().unwrap();
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("stop"));
        let usage = last.usage.unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (12 + 40, 20),
            "{cut:?}: the continuation's prompt holds the prefill, the cut stream never reported"
        );
        assert_eq!(stream.continued_by(), ["secondary"]);
        // The continuation carried the 40 tokens sent as its prefill.
        let log = sim.attempts_of("secondary");
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].prefill, Some(first_tokens(40)), "{cut:?}");
        assert_eq!(log[0].behaviour, "healthy");
        assert_eq!(sim.attempts_of("primary")[0].prefill, None);
    }
}

#[tokio::test(start_paused = true)]
async fn through_the_encoder_the_client_reads_one_whole_answer() {
    let answer = long_answer(60);
    let sim = Simulator::start([
        (
            "primary",
            Script::new()
                .answer(answer.clone())
                .always(Behaviour::StreamCut { after_tokens: 40 }),
        ),
        ("secondary", Script::new().answer(answer.clone())),
    ])
    .await
    .unwrap();
    let base_url = sim.base_url();
    let gateway = Gateway::start(move |request: ChatRequest| {
        let (first, next) = (client("primary", &base_url), client("secondary", &base_url));
        async move {
            let stream = open(first, request.clone()).await.unwrap();
            let continued = ContinuedStream::new(stream, request, move |ask: ContinueRequest| {
                let next = next.clone();
                open(next, ask.request)
            });
            SseEncoder::new(continued).route("vote").into_response()
        }
    })
    .await;
    // The caller asks the gateway for `primary`, and checks the answer names it.
    let caller = client("primary", &gateway.base_url());
    let mut received = open(caller, request()).await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = received.next().await {
        chunks.push(chunk.unwrap());
    }
    let tokens = tokens(&chunks);
    assert_eq!(tokens.len(), 60);
    assert_eq!(tokens.concat(), answer);
    assert_eq!(received.usage().unwrap().completion_tokens, 20);
    assert_eq!(
        sim.attempts_of("secondary")[0].prefill,
        Some(first_tokens(40))
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_prefill_ends_the_answer_with_the_cut_not_the_refusal() {
    let answer = long_answer(60);
    let sim = Simulator::start([
        (
            "primary",
            Script::new()
                .answer(answer.clone())
                .always(Behaviour::StreamCut { after_tokens: 40 }),
        ),
        (
            "refuser",
            Script::new().answer(answer.clone()).refuse_prefill(),
        ),
    ])
    .await
    .unwrap();

    // Read directly: 40 tokens, then the cut, the refusal only as the reason.
    let mut stream = continued(&sim, "refuser").await;
    let (chunks, error) = drain(&mut stream).await;
    assert_eq!(tokens(&chunks).concat(), first_tokens(40));
    let Some(ContinuationError::Cut {
        cut,
        chunks,
        reason,
    }) = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(cut.outcome(), Outcome::failure(FailureClass::StreamCut));
    assert_eq!(chunks, 40);
    let NotContinued::PrefillRefused { model, .. } = reason else {
        panic!("{reason:?}")
    };
    assert_eq!(model, "refuser", "the model to stop sending prefills to");
    let log = sim.attempts_of("refuser");
    assert_eq!(
        (log[0].behaviour, log[0].prefill.clone()),
        ("prefill_refused", Some(first_tokens(40)))
    );

    // Through the encoder: the caller's client reads 40 tokens, then an error event that
    // names the cut (never a 400, never [DONE]).
    let base_url = sim.base_url();
    let gateway = Gateway::start(move |request: ChatRequest| {
        let (first, next) = (client("primary", &base_url), client("refuser", &base_url));
        async move {
            let stream = open(first, request.clone()).await.unwrap();
            let continued = ContinuedStream::new(stream, request, move |ask: ContinueRequest| {
                open(next.clone(), ask.request)
            });
            SseEncoder::new(continued).route("vote").into_response()
        }
    })
    .await;
    let mut received = open(client("primary", &gateway.base_url()), request())
        .await
        .unwrap();
    let mut text = String::new();
    let error = loop {
        match received.next().await {
            Some(Ok(chunk)) => text.push_str(&tokens(&[chunk]).concat()),
            Some(Err(error)) => break error,
            None => panic!("a truncated answer must not end like a whole one"),
        }
    };
    assert_eq!(text, first_tokens(40));
    assert_eq!(error.outcome(), Outcome::failure(FailureClass::StreamCut));
    let OpenAiError::ErrorEvent {
        chunks,
        code,
        provider_message,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((*chunks, code.as_deref()), (40, Some("stream_cut")));
    assert_eq!(
        provider_message,
        "the answer of route `vote` broke off after 40 chunks (stream_cut) and is incomplete"
    );
}

#[tokio::test(start_paused = true)]
async fn continuations_are_bounded_and_each_carries_all_text_sent() {
    let answer = long_answer(60);
    let sim = Simulator::start([
        (
            "primary",
            Script::new()
                .answer(answer.clone())
                .always(Behaviour::StreamCut { after_tokens: 10 }),
        ),
        (
            "secondary",
            Script::new()
                .answer(answer.clone())
                .always(Behaviour::StreamCut { after_tokens: 10 }),
        ),
    ])
    .await
    .unwrap();
    let mut stream = continued(&sim, "secondary").await;
    let (chunks, error) = drain(&mut stream).await;
    // 10 tokens, and 10 more by each of the 2 continuations allowed.
    assert_eq!(tokens(&chunks).concat(), first_tokens(30));
    let Some(ContinuationError::Cut {
        chunks: sent,
        reason,
        ..
    }) = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(sent, 30);
    assert!(matches!(reason, NotContinued::Limit(2)), "{reason:?}");
    let prefills: Vec<_> = sim
        .attempts_of("secondary")
        .into_iter()
        .map(|a| a.prefill)
        .collect();
    assert_eq!(prefills, [Some(first_tokens(10)), Some(first_tokens(20))]);
}
