//! [`SseDecoder`]: server-sent events out of a byte stream, however it is split.

use bytes::{Buf, BytesMut};

/// Splits a byte stream of server-sent events into the data of each event: the `data:`
/// lines of an event joined by newlines. Events end with a blank line (`\n\n` or
/// `\r\n\r\n`); events without data (comments, keep-alives) are skipped.
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

    /// Bytes received but not yet part of a complete event.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The data of the next complete event, if one is buffered.
    pub fn next_data(&mut self) -> Option<String> {
        loop {
            let (end, skip) = self.find_end()?;
            let event = &self.buffer[..end];
            let data = std::str::from_utf8(event)
                .map(|text| {
                    text.lines()
                        .map(|l| l.strip_suffix('\r').unwrap_or(l))
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(|l| l.strip_prefix(' ').unwrap_or(l))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_else(|_| String::from_utf8_lossy(event).into_owned());
            self.buffer.advance(end + skip);
            self.scanned = 0;
            if !data.is_empty() {
                return Some(data);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_split_and_both_line_endings() {
        let stream =
            b": keep-alive\n\ndata: {\"a\":1}\n\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\n\n";
        for split in 1..stream.len() {
            let mut decoder = SseDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(split) {
                decoder.push(piece);
                while let Some(data) = decoder.next_data() {
                    got.push(data);
                }
            }
            assert_eq!(
                got,
                ["{\"a\":1}", "one\ntwo", "[DONE]"],
                "split every {split} bytes"
            );
            assert_eq!(decoder.pending(), 0);
        }
    }
}
