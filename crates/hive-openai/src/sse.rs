//! [`SseDecoder`]: server-sent events out of a byte stream, however it is split.

use bytes::{Buf, BytesMut};

/// Splits a byte stream of server-sent events into the data of each event, as the SSE
/// specification reads them, line by line:
///
/// * an event ends with a blank line (`\n\n` or `\r\n\r\n`); lines end with `\n` or
///   `\r\n` (a lone `\r` is not a line end here: no provider writes one);
/// * a line that starts with `:` is a comment (a keep-alive), skipped whatever its bytes;
/// * `data:` lines give the event's data, joined by newlines (one space after the colon is
///   dropped); a line `data` without a colon is an empty data line;
/// * other fields (`event:`, `id:`, `retry:` …) are ignored;
/// * a data line that is not UTF-8 is decoded lossily (its bad bytes become U+FFFD), so it
///   fails to parse as JSON rather than taking the rest of the event with it;
/// * an event without a data line (comments only) is skipped.
///
/// The decoder holds the bytes of the event being received; the caller caps that size by
/// [`pending`](Self::pending) (the client does, by its `max_event_bytes` setting).
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: BytesMut,
    /// Bytes already searched for an event's end.
    scanned: usize,
}

impl SseDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet given out. Once [`next_data`](Self::next_data) has
    /// answered `None`, these are the bytes of the one incomplete event.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The data of the next complete event that has data, if one is buffered.
    pub fn next_data(&mut self) -> Option<String> {
        loop {
            let (end, skip) = self.find_end()?;
            let data = event_data(&self.buffer[..end]);
            self.buffer.advance(end + skip);
            self.scanned = 0;
            if data.is_some() {
                return data;
            }
        }
    }

    /// Where the first event ends, and the length of its blank line.
    fn find_end(&mut self) -> Option<(usize, usize)> {
        let bytes = &self.buffer[..];
        let start = self.scanned.saturating_sub(3);
        for i in start..bytes.len() {
            if bytes[i] != b'\n' {
                continue;
            }
            match bytes.get(i + 1..) {
                Some([b'\n', ..]) => return Some((i, 2)),
                Some([b'\r', b'\n', ..]) => return Some((i, 3)),
                _ => {}
            }
        }
        self.scanned = bytes.len();
        None
    }
}

/// The data of one event (its lines, without the blank line that ends it), or `None` when
/// it has no data line.
fn event_data(event: &[u8]) -> Option<String> {
    let mut data: Option<String> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field != b"data" {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        match &mut data {
            Some(data) => {
                data.push('\n');
                data.push_str(&value);
            }
            None => data = Some(value.into_owned()),
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `stream` split every 1, 2, … bytes; each split must give `expected` and leave
    /// nothing pending.
    fn assert_decodes_at_every_split(stream: &[u8], expected: &[&str]) {
        for split in 1..stream.len() {
            let mut decoder = SseDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(split) {
                decoder.push(piece);
                while let Some(data) = decoder.next_data() {
                    got.push(data);
                }
            }
            assert_eq!(got, expected, "split every {split} bytes");
            assert_eq!(decoder.pending(), 0);
        }
    }

    #[test]
    fn events_survive_any_split_and_both_line_endings() {
        assert_decodes_at_every_split(
            b": keep-alive\n\ndata: {\"a\":1}\n\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\n\n",
            &["{\"a\":1}", "one\ntwo", "[DONE]"],
        );
    }

    #[test]
    fn line_by_line_decoding_survives_any_split() {
        assert_decodes_at_every_split(
            b":\x80\n\nevent: m\r\nid: 1\r\ndata: caf\xc3\xa9\r\n: \xff\r\n\r\ndata\ndata: b\x80\n\n",
            &["caf\u{e9}", "\nb\u{FFFD}"],
        );
    }

    fn decode(stream: &[u8]) -> Vec<String> {
        let mut decoder = SseDecoder::new();
        decoder.push(stream);
        std::iter::from_fn(|| decoder.next_data()).collect()
    }

    #[test]
    fn comments_are_skipped_whatever_their_bytes() {
        assert!(
            decode(b":\x80\n\n").is_empty(),
            "a keep-alive with a bad byte"
        );
        assert!(decode(b": ping\r\n\r\n:\xff\xfe\n\n").is_empty());
        assert_eq!(
            decode(b": \xff keep-alive\ndata: {\"a\":1}\n:\x80\n\n"),
            ["{\"a\":1}"],
            "comments around a data line leave it whole"
        );
    }

    #[test]
    fn a_data_line_that_is_not_utf8_is_decoded_lossily_alone() {
        assert_eq!(decode(b"data: a\x80b\n\n"), ["a\u{FFFD}b"]);
        assert_eq!(
            decode(b"data: one\ndata: \xc3\n\ndata: next\n\n"),
            ["one\n\u{FFFD}", "next"],
            "the bad line spoils neither its neighbour nor the next event"
        );
    }

    #[test]
    fn other_fields_are_ignored_and_a_bare_data_line_is_empty() {
        assert_eq!(
            decode(b"event: message\nid: 7\nretry: 100\ndata: x\nunknown\n\n"),
            ["x"]
        );
        assert!(
            decode(b"event: ping\nid: 8\n\n").is_empty(),
            "no data line, no event"
        );
        assert_eq!(decode(b"data\ndata: y\n\n"), ["\ny"]);
        assert_eq!(decode(b"data\n\n"), [""]);
        assert_eq!(
            decode(b"data:x\n\n"),
            ["x"],
            "the space after the colon is optional"
        );
        assert_eq!(decode(b"data:  x\n\n"), [" x"], "only one space is dropped");
        assert_eq!(decode(b"datum: x\n\n"), Vec::<String>::new());
    }

    #[test]
    fn pending_is_the_incomplete_event_once_the_complete_ones_are_taken() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: 1\n\ndata: 23");
        assert_eq!(decoder.next_data().as_deref(), Some("1"));
        assert_eq!(decoder.next_data(), None);
        assert_eq!(decoder.pending(), "data: 23".len());
    }
}
