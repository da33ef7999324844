//! COMPRESS=DEFLATE (RFC 4978) under a running connection.
//!
//! [`Deflating`] wraps a session's byte stream and passes bytes through until it is switched:
//! - reading switches at the exact byte after the line of the tagged OK that answers
//!   `COMPRESS DEFLATE` (armed with that tag by [`Switch::arm`]); from there on, what the server
//!   sends is raw deflate and is inflated before the response parser sees it;
//! - writing switches when the caller says so ([`Switch::start_writing`]), after that OK and
//!   before anything else is sent; every flush ends with a sync flush, so the server can read
//!   each batch of commands as soon as it arrives.
//!
//! The reader and writer tasks own the two halves of the stream; the switch is shared.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What ferry compresses with: level 1 costs a fraction of the default level's time and
/// still shrinks IMAP text and most mail several times.
const LEVEL: u32 = 1;

/// The most bytes one write deflates before what it made is written out.
const WRITE_SLICE: usize = 64 << 10;

/// The longest line start kept while looking for the tagged OK.
const LINE_KEPT: usize = 64;

/// When each direction of a [`Deflating`] stream starts compressing.
#[derive(Debug, Default)]
pub(crate) struct Switch(Mutex<SwitchState>);

#[derive(Debug, Default)]
struct SwitchState {
    /// `TAG ` of the COMPRESS command whose OK starts inflating.
    armed: Option<Vec<u8>>,
    writing: bool,
}

impl Switch {
    /// Reading inflates after the tagged OK of the command `tag` (a NO or BAD disarms).
    pub fn arm(&self, tag: &str) {
        let mut state = self.lock();
        state.armed = Some(format!("{tag} ").into_bytes());
    }

    /// Stops waiting for an answer that will not come as expected.
    pub fn disarm(&self) {
        self.lock().armed = None;
    }

    /// Everything written from now on is deflated.
    pub fn start_writing(&self) {
        self.lock().writing = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SwitchState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A stream that can switch to raw deflate in each direction; see the module documentation.
pub(crate) struct Deflating<S> {
    inner: S,
    switch: Arc<Switch>,
    /// Set once reading switched.
    inflate: Option<Decompress>,
    /// Compressed bytes received and not yet inflated.
    raw: Vec<u8>,
    raw_at: usize,
    scratch: Vec<u8>,
    /// The start of the line being read while armed, and whether it was longer than kept.
    line: Vec<u8>,
    line_long: bool,
    /// Set once writing switched.
    deflate: Option<Compress>,
    /// Deflated bytes not yet written.
    out: Vec<u8>,
    out_at: usize,
    /// Bytes went into the compressor since its last sync flush.
    unflushed: bool,
}

impl<S> std::fmt::Debug for Deflating<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflating")
            .field("inflating", &self.inflate.is_some())
            .field("deflating", &self.deflate.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Deflating<S> {
    pub fn new(inner: S) -> (Deflating<S>, Arc<Switch>) {
        let switch = Arc::new(Switch::default());
        let stream = Deflating {
            inner,
            switch: switch.clone(),
            inflate: None,
            raw: Vec::new(),
            raw_at: 0,
            scratch: Vec::new(),
            line: Vec::new(),
            line_long: false,
            deflate: None,
            out: Vec::new(),
            out_at: 0,
            unflushed: false,
        };
        (stream, switch)
    }

    /// Where in `bytes` (just read in the clear) inflating starts, if it does: after the line
    /// of the armed tag's OK.
    fn find_switch(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut state = self.switch.lock();
        let tag = state.armed.clone()?;
        for (index, &byte) in bytes.iter().enumerate() {
            if self.line.len() < LINE_KEPT {
                self.line.push(byte);
            } else {
                self.line_long = true;
            }
            if byte != b'\n' {
                continue;
            }
            let answered = !self.line_long && self.line.starts_with(&tag);
            let ok = answered
                && self.line[tag.len()..]
                    .get(..3)
                    .is_some_and(|word| word.eq_ignore_ascii_case(b"OK "));
            self.line.clear();
            self.line_long = false;
            if answered {
                state.armed = None;
                return ok.then_some(index + 1);
            }
        }
        None
    }
}

fn invalid(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server's compressed stream is damaged: {error}"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflating<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some(inflate) = &mut this.inflate {
                // Also with no input left: the inflater may hold output that did not fit.
                {
                    let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
                    inflate
                        .decompress(
                            &this.raw[this.raw_at..],
                            buf.initialize_unfilled(),
                            FlushDecompress::None,
                        )
                        .map_err(invalid)?;
                    let consumed = usize::try_from(inflate.total_in() - before_in).unwrap_or(0);
                    let produced = usize::try_from(inflate.total_out() - before_out).unwrap_or(0);
                    this.raw_at += consumed;
                    if this.raw_at >= this.raw.len() {
                        this.raw.clear();
                        this.raw_at = 0;
                    }
                    buf.advance(produced);
                    if produced > 0 {
                        return Poll::Ready(Ok(()));
                    }
                    if consumed > 0 {
                        continue;
                    }
                }
                // More compressed input is needed.
                this.scratch.resize(64 << 10, 0);
                let mut raw = ReadBuf::new(&mut this.scratch);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw))?;
                if raw.filled().is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.raw.extend_from_slice(raw.filled());
                continue;
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let read = buf.filled()[before..].to_vec();
            if let Some(at) = this.find_switch(&read) {
                this.raw = read[at..].to_vec();
                this.raw_at = 0;
                this.inflate = Some(Decompress::new(false));
                buf.set_filled(before + at);
                if at == 0 {
                    // Nothing in the clear came with this read: inflate what did.
                    continue;
                }
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflating<S> {
    /// Writes out what was deflated and not yet written.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.out.clear();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }
}

/// Runs `compress` over `input` with `flush`, growing `out` until all input is taken and,
/// for a flush, until the compressor had room to spare (so nothing stays inside).
fn deflate_into(
    compress: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    loop {
        out.reserve((input.len() / 2).max(4096));
        let spare = out.capacity() - out.len();
        let (before_in, before_out) = (compress.total_in(), compress.total_out());
        compress
            .compress_vec(input, out, flush)
            .map_err(io::Error::other)?;
        let consumed = usize::try_from(compress.total_in() - before_in).unwrap_or(0);
        let produced = usize::try_from(compress.total_out() - before_out).unwrap_or(0);
        input = &input[consumed..];
        if input.is_empty() && (flush == FlushCompress::None || produced < spare) {
            return Ok(());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflating<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.deflate.is_none() && this.switch.lock().writing {
            this.deflate = Some(Compress::new(Compression::new(LEVEL), false));
        }
        if this.deflate.is_none() {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        ready!(this.poll_drain(cx))?;
        // A slice at a time, so a large literal is never held deflated whole.
        let taken = data.len().min(WRITE_SLICE);
        if let Some(compress) = &mut this.deflate {
            deflate_into(compress, &data[..taken], &mut this.out, FlushCompress::None)?;
            this.unflushed = true;
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.unflushed
            && let Some(compress) = &mut this.deflate
        {
            deflate_into(compress, &[], &mut this.out, FlushCompress::Sync)?;
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn deflated(chunks: &[&[u8]]) -> Vec<u8> {
        let mut compress = Compress::new(Compression::new(6), false);
        let mut out = Vec::new();
        for chunk in chunks {
            deflate_into(&mut compress, chunk, &mut out, FlushCompress::Sync).expect("deflate");
        }
        out
    }

    fn inflated(bytes: &[u8]) -> Vec<u8> {
        let mut inflate = Decompress::new(false);
        let mut out = Vec::with_capacity(4 << 20);
        inflate
            .decompress_vec(bytes, &mut out, FlushDecompress::Sync)
            .expect("inflate");
        out
    }

    // Reading: the clear text up to the tagged OK's line, then inflated bytes, whichever way
    // the reads cut the stream; a NO leaves the stream in the clear.
    #[tokio::test]
    async fn reading_switches_right_after_the_tagged_ok() {
        let clear = b"* OK hello\r\nc1 OK Begin compression.\r\n".to_vec();
        let later = b"* 1 EXISTS\r\nc2 OK done\r\n".repeat(40);
        let mut wire = clear.clone();
        wire.extend(deflated(&[&later[..300], &later[300..]]));
        for cut in [1, 7, 38, 39, 40, 200, wire.len()] {
            let (client, mut server) = tokio::io::duplex(1 << 20);
            let (mut stream, switch) = Deflating::new(client);
            switch.arm("c1");
            let wire = wire.clone();
            let writer = tokio::spawn(async move {
                for piece in wire.chunks(cut) {
                    server.write_all(piece).await.expect("write");
                    server.flush().await.expect("flush");
                    tokio::task::yield_now().await;
                }
                server
            });
            let mut got = Vec::new();
            let expected = clear.len() + later.len();
            while got.len() < expected {
                let mut buf = [0u8; 97];
                let n = stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "end of stream after {} bytes (cut {cut})", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            let mut all = clear.clone();
            all.extend_from_slice(&later);
            assert_eq!(got, all, "cut {cut}");
            drop(writer.await);
        }

        let refused = b"c1 NO not now\r\n* 2 EXISTS\r\n".to_vec();
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let (mut stream, switch) = Deflating::new(client);
        switch.arm("c1");
        server.write_all(&refused).await.expect("write");
        drop(server);
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, refused);
    }

    // Writing: in the clear until switched, then deflated with a sync flush at every flush, so
    // each flushed batch can be inflated on its own as it arrives.
    #[tokio::test]
    async fn writing_deflates_after_the_switch_and_flushes_whole_batches() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let (mut stream, switch) = Deflating::new(client);
        stream
            .write_all(b"c1 COMPRESS DEFLATE\r\n")
            .await
            .expect("write");
        stream.flush().await.expect("flush");
        let mut clear = [0u8; 21];
        server.read_exact(&mut clear).await.expect("read");
        assert_eq!(&clear, b"c1 COMPRESS DEFLATE\r\n");

        switch.start_writing();
        let batch = b"c2 UID FETCH 1:* (FLAGS)\r\n".repeat(100);
        stream.write_all(&batch).await.expect("write");
        stream.flush().await.expect("flush");
        let mut wire = vec![0u8; 1 << 16];
        let n = server.read(&mut wire).await.expect("read");
        assert!(n < batch.len() / 4, "{n} bytes for {}", batch.len());
        assert_eq!(inflated(&wire[..n]), batch);

        // A literal larger than one write's slice goes out whole, slice after slice.
        let literal: Vec<u8> = (0..300_000_u32).map(|i| (i * 7 % 251) as u8).collect();
        stream.write_all(&literal).await.expect("write");
        stream.flush().await.expect("flush");
        drop(stream);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.expect("read");
        assert_eq!(inflated(&rest), literal);
    }
}
