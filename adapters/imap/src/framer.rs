//! Cuts the server's byte stream into whole responses before imap-codec parses them.
//!
//! A response is a line, and when that line ends with a literal's announcement (`{n}`, or
//! `~{n}` for a literal8), the literal's n bytes and the rest of the response after them, until
//! a line ends without one. imap-codec's `Fragmentizer` does the same through a `VecDeque`,
//! moving every byte one at a time: with large message bodies that was more than a quarter of
//! ferry's CPU time. Here the bytes stay in one buffer, lines are found with `memchr` and a
//! literal's bytes are skipped over, not looked at.
//!
//! It does no I/O: the login phase (`session`) and then the connection's sans-I/O core
//! (`conn::machine::Core`, which takes it over with whatever it still holds) enqueue the bytes
//! they read and take whole responses out.

use std::ops::Range;

/// A response longer than the limit: the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TooLong;

/// See the module's documentation.
#[derive(Debug)]
pub(crate) struct Framer {
    buffer: Vec<u8>,
    /// Where the response being framed starts in `buffer`; all before it was handed out.
    start: usize,
    /// How far it is framed: the next line starts here (or the literal being skipped).
    pos: usize,
    /// Literal bytes still to come before the response's line goes on.
    literal: usize,
    max: usize,
}

impl Framer {
    /// A framer refusing responses longer than `max` bytes.
    pub fn new(max: usize) -> Framer {
        Framer {
            buffer: Vec::new(),
            start: 0,
            pos: 0,
            literal: 0,
            max,
        }
    }

    /// Adds bytes read from the server.
    pub fn enqueue(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole response in the bytes so far, if there is one.
    pub fn next(&mut self) -> Option<Result<&[u8], TooLong>> {
        self.compact();
        self.frame()
            .map(|framed| framed.map(|range| &self.buffer[range]))
    }

    /// Forgets the responses handed out (everything before `start`), moving what follows to
    /// the front once it is worth it.
    fn compact(&mut self) {
        let handed = self.start;
        if handed > 0 && (handed >= self.buffer.len() / 2 || handed >= 1 << 20) {
            self.buffer.drain(..handed);
            self.start = 0;
            self.pos -= handed;
        }
    }

    fn frame(&mut self) -> Option<Result<Range<usize>, TooLong>> {
        loop {
            if self.literal > 0 {
                let available = self.buffer.len() - self.pos;
                if available < self.literal {
                    return None;
                }
                self.pos += self.literal;
                self.literal = 0;
            }
            let Some(offset) = memchr::memchr(b'\n', &self.buffer[self.pos..]) else {
                if self.buffer.len() - self.start > self.max {
                    return Some(Err(TooLong));
                }
                return None;
            };
            let end = self.pos + offset + 1;
            if end - self.start > self.max {
                return Some(Err(TooLong));
            }
            match literal_length(&self.buffer[self.pos..end]) {
                Some(length) if length > self.max => return Some(Err(TooLong)),
                Some(length) => {
                    self.pos = end;
                    self.literal = length;
                }
                None => {
                    let range = self.start..end;
                    self.start = end;
                    self.pos = end;
                    return Some(Ok(range));
                }
            }
        }
    }
}

/// The length a line announces for the literal that follows it (`... {n}\r\n`, also `{n+}`
/// and `~{n}`; a bare `\n` is taken as a line end, as imap-codec's relaxed CRLF quirk does).
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] =
        b"* 1 FETCH (UID 7 BODY[]<0> {15}\r\nline one\r\n{3}\r\n BODY[HEADER] {0}\r\n)\r\n\
        * OK [UIDNEXT 9] ok\r\n\
        * LIST () \"/\" {5}\r\nA\r\nB}\r\n\
        t1 OK done\r\n";

    fn responses(framer: &mut Framer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(frame) = framer.next() {
            out.push(frame.expect("within the limit").to_vec());
        }
        out
    }

    #[test]
    fn responses_with_literals_come_whole_however_the_bytes_are_cut() {
        let whole: Vec<Vec<u8>> = {
            let mut framer = Framer::new(1 << 20);
            framer.enqueue(STREAM);
            responses(&mut framer)
        };
        assert_eq!(whole.len(), 4);
        assert!(whole[0].starts_with(b"* 1 FETCH") && whole[0].ends_with(b")\r\n"));
        // The literal's own "{3}\r\n" line is literal content, not an announcement.
        assert!(whole[0].windows(5).any(|w| w == b"{3}\r\n"));
        assert_eq!(whole[2], b"* LIST () \"/\" {5}\r\nA\r\nB}\r\n");
        assert_eq!(whole[3], b"t1 OK done\r\n");
        assert_eq!(whole.concat(), STREAM);
        for step in 1..STREAM.len() {
            let mut framer = Framer::new(1 << 20);
            let mut got = Vec::new();
            for piece in STREAM.chunks(step) {
                framer.enqueue(piece);
                got.extend(responses(&mut framer));
            }
            assert_eq!(got, whole, "cut every {step} bytes");
        }
    }

    #[test]
    fn a_response_over_the_limit_is_refused_even_before_it_ends() {
        let mut framer = Framer::new(64);
        framer.enqueue(b"* 1 FETCH (BODY[] {1000}\r\n");
        assert_eq!(framer.next(), Some(Err(TooLong)));
        let mut framer = Framer::new(64);
        framer.enqueue(&[b'x'; 100]);
        assert_eq!(framer.next(), Some(Err(TooLong)));
        let mut framer = Framer::new(64);
        framer.enqueue(b"* OK short\r\n* OK ");
        assert_eq!(framer.next(), Some(Ok(&b"* OK short\r\n"[..])));
        assert_eq!(framer.next(), None);
    }

    #[test]
    fn announcements_are_read_strictly() {
        assert_eq!(literal_length(b"* X {12}\r\n"), Some(12));
        assert_eq!(literal_length(b"* X ~{12}\r\n"), Some(12));
        assert_eq!(literal_length(b"* X {12+}\r\n"), Some(12));
        assert_eq!(literal_length(b"* X {12}\n"), Some(12));
        assert_eq!(literal_length(b"* X {}\r\n"), None);
        assert_eq!(literal_length(b"* X {1a}\r\n"), None);
        assert_eq!(literal_length(b"* X \"{12}\"\r\n"), None);
        assert_eq!(literal_length(b"* X {99999999999}\r\n"), None);
    }
}
