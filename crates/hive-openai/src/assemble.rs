//! A whole answer ([`ChatCompletion`]) assembled from the chunks of a stream, for a buffered
//! commit.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{
    ChatChunk, ChatCompletion, Choice, Content, Delta, Extra, Message, Usage,
    types::holds_something,
};

/// A whole answer built from the chunks of a stream as they arrive, keeping only what the
/// answer needs (its size is bounded by the stream's byte cap, whatever the chunk count).
///
/// * One [`Choice`] per choice index seen, sorted by index.
/// * Text is appended. Tool calls (`delta.tool_calls`) are merged by their `index`: the
///   first delta of a call gives its `id`, `type` and `function.name`, later ones append to
///   `function.arguments` (a field given again replaces the one before, as OpenAI's SDKs
///   do); a call without an `index` is a new call when it brings an `id` not seen, else it
///   continues the last one. The merged calls, without their `index`, go in the message's
///   `tool_calls`. A legacy `function_call` is merged the same way.
/// * Other delta fields are kept in the message: text (`refusal`, `reasoning_content` …)
///   appended, anything else the last value sent; `null`, `""` and `[]` are skipped.
/// * The message's content is `None` (`null`) when no text came and something else did
///   (tool calls, a refusal …), as OpenAI answers unstreamed; else the text.
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    id: String,
    model: String,
    /// `created` and `system_fingerprint`, from the first chunk that gives them.
    extra: Extra,
    choices: BTreeMap<u32, ChoiceAssembly>,
}

/// One choice being assembled.
#[derive(Debug, Default)]
struct ChoiceAssembly {
    role: Option<String>,
    text: String,
    /// Tool calls by their index.
    tool_calls: BTreeMap<u64, Map<String, Value>>,
    /// Other fields of the message (`function_call`, `refusal` …).
    extra: Extra,
    finish_reason: Option<String>,
}

impl Assembly {
    /// Adds a chunk.
    pub(crate) fn add(&mut self, chunk: ChatChunk) {
        if self.model.is_empty() {
            self.model = chunk.model;
        }
        if self.id.is_empty()
            && let Some(value) = chunk.extra.get("id").and_then(Value::as_str)
        {
            value.clone_into(&mut self.id);
        }
        for key in ["created", "system_fingerprint"] {
            if !self.extra.contains_key(key)
                && let Some(value) = chunk.extra.get(key).filter(|v| !v.is_null())
            {
                self.extra.insert(key.to_owned(), value.clone());
            }
        }
        for choice in chunk.choices {
            let assembly = self.choices.entry(choice.index).or_default();
            assembly.add(choice.delta);
            if choice.finish_reason.is_some() {
                assembly.finish_reason = choice.finish_reason;
            }
        }
    }

    /// The whole answer, with the stream's usage.
    pub(crate) fn finish(mut self, usage: Option<Usage>) -> ChatCompletion {
        if self.choices.is_empty() {
            self.choices.insert(0, ChoiceAssembly::default());
        }
        self.extra
            .insert("object".to_owned(), Value::from("chat.completion"));
        ChatCompletion {
            id: self.id,
            model: self.model,
            choices: self
                .choices
                .into_iter()
                .map(|(index, choice)| choice.finish(index))
                .collect(),
            usage,
            extra: self.extra,
        }
    }
}

impl ChoiceAssembly {
    fn add(&mut self, delta: Delta) {
        if let Some(content) = delta.content {
            self.text.push_str(&content);
        }
        for (key, value) in delta.extra {
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                ("role", Value::String(role)) => {
                    self.role.get_or_insert(role);
                }
                ("tool_calls", Value::Array(calls)) => {
                    for call in calls {
                        if let Value::Object(call) = call {
                            self.add_tool_call(call);
                        }
                    }
                }
                ("function_call", Value::Object(call)) => {
                    let merged = self
                        .extra
                        .entry(key)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(merged) = merged {
                        merge_function(merged, call);
                    }
                }
                (_, value) if !holds_something(&value) => {}
                (_, value) => append(self.extra.entry(key).or_insert(Value::Null), value),
            }
        }
    }

    /// Merges a tool call's delta into the call of its index.
    fn add_tool_call(&mut self, mut call: Map<String, Value>) {
        let index = match call.remove("index").as_ref().and_then(Value::as_u64) {
            Some(index) => index,
            None => {
                let id = call.get("id").filter(|id| !id.is_null());
                let last = self.tool_calls.last_key_value().map(|(index, _)| *index);
                match id {
                    Some(id) => self
                        .tool_calls
                        .iter()
                        .find(|(_, known)| known.get("id") == Some(id))
                        .map(|(index, _)| *index)
                        .unwrap_or_else(|| last.map_or(0, |last| last.saturating_add(1))),
                    None => last.unwrap_or(0),
                }
            }
        };
        let merged = self.tool_calls.entry(index).or_default();
        for (key, value) in call {
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                ("function", Value::Object(function)) => {
                    let entry = merged
                        .entry(key)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(entry) = entry {
                        merge_function(entry, function);
                    }
                }
                (_, value) => {
                    merged.insert(key, value);
                }
            }
        }
    }

    fn finish(self, index: u32) -> Choice {
        let mut extra = self.extra;
        if !self.tool_calls.is_empty() {
            let calls = self
                .tool_calls
                .into_values()
                .map(|mut call| {
                    if let Some(Value::Object(function)) = call.get_mut("function") {
                        function
                            .entry("arguments")
                            .or_insert_with(|| Value::from(""));
                    }
                    Value::Object(call)
                })
                .collect();
            extra.insert("tool_calls".to_owned(), Value::Array(calls));
        }
        let content =
            (!self.text.is_empty() || extra.is_empty()).then_some(Content::Text(self.text));
        Choice {
            index,
            message: Message {
                role: self.role.unwrap_or_else(|| "assistant".to_owned()),
                content,
                extra,
            },
            finish_reason: self.finish_reason,
            extra: Extra::new(),
        }
    }
}

/// A function's delta merged into what came before: `arguments` appended, any other field
/// replaced (`null` skipped).
fn merge_function(merged: &mut Map<String, Value>, delta: Map<String, Value>) {
    for (key, value) in delta {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("arguments", Value::String(more)) => match merged.get_mut("arguments") {
                Some(Value::String(arguments)) => arguments.push_str(&more),
                _ => {
                    merged.insert(key, Value::String(more));
                }
            },
            (_, value) => {
                merged.insert(key, value);
            }
        }
    }
}

/// A delta's field added to what came before: text appended to text, anything else
/// replacing it.
fn append(merged: &mut Value, value: Value) {
    match (merged, value) {
        (Value::String(text), Value::String(more)) => text.push_str(&more),
        (merged, value) => *merged = value,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chunk(choices: Value) -> ChatChunk {
        serde_json::from_value(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 7,
            "model": "m",
            "choices": choices,
        }))
        .unwrap()
    }

    fn assemble(chunks: impl IntoIterator<Item = ChatChunk>) -> ChatCompletion {
        let mut assembly = Assembly::default();
        for chunk in chunks {
            assembly.add(chunk);
        }
        assembly.finish(None)
    }

    #[test]
    fn tool_calls_are_merged_by_index_and_the_content_is_null() {
        // As OpenAI streams two parallel tool calls.
        let answer = assemble([
            chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                    "function": {"name": "vote", "arguments": ""}}]}, "finish_reason": null}]),
            ),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0,
                "function": {"arguments": "{\"bip\":"}}]}, "finish_reason": null}])),
            chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b",
                "type": "function", "function": {"name": "abstain", "arguments": ""}}]},
                "finish_reason": null}]),
            ),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0,
                "function": {"arguments": " 1}"}}]}, "finish_reason": null}])),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [{"index": 1,
                "function": {"arguments": "{}"}}]}, "finish_reason": null}])),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        ]);
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 7,
                "model": "m",
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [
                            {"id": "call_a", "type": "function",
                             "function": {"name": "vote", "arguments": "{\"bip\": 1}"}},
                            {"id": "call_b", "type": "function",
                             "function": {"name": "abstain", "arguments": "{}"}},
                        ],
                    },
                    "finish_reason": "tool_calls",
                }],
                "usage": null,
            })
        );
        assert_eq!(answer.text(), "");
    }

    #[test]
    fn text_with_tool_calls_keeps_its_text_and_calls_without_an_index_are_told_apart_by_id() {
        let answer = assemble([
            chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": "Voting."}}])),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "vote", "arguments": "{"}}]}}])),
            chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{"function": {"arguments": "}"}}]}}]),
            ),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
                {"id": "call_b", "type": "function", "function": {"name": "sign"}}]}}])),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        ]);
        let message = &answer.choices[0].message;
        assert_eq!(message.text(), Some("Voting."));
        assert_eq!(
            message.extra["tool_calls"],
            json!([
                {"id": "call_a", "type": "function", "function": {"name": "vote", "arguments": "{}"}},
                {"id": "call_b", "type": "function", "function": {"name": "sign", "arguments": ""}},
            ])
        );
    }

    #[test]
    fn a_refusal_and_a_legacy_function_call_are_kept_and_an_empty_answer_is_empty_text() {
        let refused = assemble([
            chunk(
                json!([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": "I can"}}]),
            ),
            chunk(json!([{"index": 0, "delta": {"refusal": "not vote."}}])),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
        ]);
        let message = &refused.choices[0].message;
        assert_eq!(message.content, None);
        assert_eq!(message.extra["refusal"], "I cannot vote.");

        let legacy = assemble([
            chunk(json!([{"index": 0, "delta": {"role": "assistant",
                "function_call": {"name": "vote", "arguments": "{\"b"}}}])),
            chunk(json!([{"index": 0, "delta": {"function_call": {"arguments": "ip\": 1}"}}}])),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "function_call"}])),
        ]);
        assert_eq!(
            legacy.choices[0].message.extra["function_call"],
            json!({"name": "vote", "arguments": "{\"bip\": 1}"})
        );
        assert_eq!(legacy.choices[0].message.content, None);

        let empty = assemble([chunk(
            json!([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": "stop"}]),
        )]);
        assert_eq!(empty.choices[0].message.text(), Some(""));
    }

    #[test]
    fn several_choices_give_one_choice_each_sorted_by_index() {
        let answer = assemble([
            chunk(json!([
                {"index": 1, "delta": {"role": "assistant", "content": "No"}},
                {"index": 0, "delta": {"role": "assistant", "content": "Yes"}},
            ])),
            chunk(json!([{"index": 2, "delta": {"content": "Maybe"}, "finish_reason": "length"}])),
            chunk(json!([{"index": 0, "delta": {"content": "."}, "finish_reason": "stop"}])),
            chunk(json!([{"index": 1, "delta": {"content": "!"}, "finish_reason": "stop"}])),
        ]);
        let choices: Vec<(u32, Option<&str>, Option<&str>)> = answer
            .choices
            .iter()
            .map(|c| (c.index, c.message.text(), c.finish_reason.as_deref()))
            .collect();
        assert_eq!(
            choices,
            [
                (0, Some("Yes."), Some("stop")),
                (1, Some("No!"), Some("stop")),
                (2, Some("Maybe"), Some("length")),
            ]
        );
    }
}
