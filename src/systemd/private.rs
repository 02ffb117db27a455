//! systemd's private socket (`/run/systemd/private`), usable when dbus-daemon is down.
//!
//! systemd answers on its private socket with the sender field set to
//! `org.freedesktop.systemd1`, a well-known name, where zbus 6 requires a unique name and drops
//! the message ("Invalid unique name"; zbus issue 1497, "P2P connections are broken by
//! overzealous validation"). This socket adapter, built on zbus's public `ReadHalf` and
//! `WriteHalf` traits, rewrites that one header field to a unique name of the same length
//! (`:1.000000000000000000001`, 24 bytes like the original) before zbus parses the message, so
//! no length or padding changes. Everything else passes through byte for byte: the SASL
//! handshake (text lines) untouched, then each message's header inspected only at the 8-aligned
//! header-field positions, its body streamed.

use async_io::Async;
use futures_util::{AsyncReadExt, AsyncWriteExt};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use zbus::connection::socket::{ReadHalf, Split, WriteHalf};

/// The sender systemd writes, and what zbus gets instead (same length: 24 bytes).
const SYSTEMD: &[u8; 24] = b"org.freedesktop.systemd1";
const UNIQUE: &[u8; 24] = b":1.000000000000000000001";
/// The sender zbus sees on this socket: signal streams must name it.
pub const SENDER: &str = ":1.000000000000000000001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The SASL handshake: CRLF-terminated lines.
    Text,
    /// Messages: `skip` bytes of the current one still to pass without looking.
    Binary { skip: usize },
    /// Something unexpected: pass everything through untouched.
    Raw,
}

/// The byte-stream rewriter, fed what the socket gives and drained by zbus.
#[derive(Debug)]
pub struct SenderRewriter {
    mode: Mode,
    /// Received, not yet processed (an incomplete line or message header).
    pending: Vec<u8>,
    /// Processed, ready for zbus.
    ready: VecDeque<u8>,
    /// How many sender fields were rewritten (for tests and diagnostics).
    pub rewritten: usize,
}

impl Default for SenderRewriter {
    fn default() -> Self {
        SenderRewriter {
            mode: Mode::Text,
            pending: Vec::new(),
            ready: VecDeque::new(),
            rewritten: 0,
        }
    }
}

fn u32_at(b: &[u8], at: usize, little: bool) -> usize {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    (if little {
        u32::from_le_bytes(w)
    } else {
        u32::from_be_bytes(w)
    }) as usize
}

impl SenderRewriter {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.process();
    }

    /// At end of stream, whatever is left goes out as it is.
    pub fn finish(&mut self) {
        self.ready.extend(self.pending.drain(..));
    }

    /// Move processed bytes into `buf`.
    pub fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.ready.len());
        for (d, s) in buf.iter_mut().zip(self.ready.drain(..n)) {
            *d = s;
        }
        n
    }

    fn pass(&mut self, n: usize) {
        self.ready.extend(self.pending.drain(..n));
    }

    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Raw => {
                    let n = self.pending.len();
                    self.pass(n);
                    return;
                }
                Mode::Text => {
                    // A message starts where a line would: 'l' or 'B' (the endianness mark)
                    // never begins a SASL reply (OK, DATA, ERROR, REJECTED, AGREE_UNIX_FD).
                    match self.pending.first() {
                        None => return,
                        Some(b'l' | b'B') => self.mode = Mode::Binary { skip: 0 },
                        Some(_) => {
                            let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n")
                            else {
                                return;
                            };
                            self.pass(end + 2);
                        }
                    }
                }
                Mode::Binary { skip } if skip > 0 => {
                    let n = skip.min(self.pending.len());
                    if n == 0 {
                        return;
                    }
                    self.pass(n);
                    self.mode = Mode::Binary { skip: skip - n };
                }
                Mode::Binary { .. } => {
                    let b = &self.pending;
                    if b.len() < 16 {
                        return;
                    }
                    let little = match b[0] {
                        b'l' => true,
                        b'B' => false,
                        _ => {
                            self.mode = Mode::Raw;
                            continue;
                        }
                    };
                    let body = u32_at(b, 4, little);
                    let fields = u32_at(b, 12, little);
                    let header_end = 16 + fields;
                    if b.len() < header_end {
                        return;
                    }
                    self.rewrite_sender(header_end, little);
                    let total = header_end.div_ceil(8) * 8 + body;
                    let n = total.min(self.pending.len());
                    self.pass(n);
                    self.mode = Mode::Binary { skip: total - n };
                }
            }
        }
    }

    /// In the header fields (bytes 16..end of the message at the front of `pending`), find
    /// SENDER (code 7) holding `org.freedesktop.systemd1` and put the unique name there. Each
    /// field is a struct, so it starts 8-aligned: code, signature `s`, then the string.
    fn rewrite_sender(&mut self, end: usize, little: bool) {
        const SENDER: u8 = 7;
        let b = &mut self.pending;
        let mut at = 16;
        while at + 8 + SYSTEMD.len() < end {
            if b[at] == SENDER
                && b[at + 1..at + 4] == *b"\x01s\x00"
                && u32_at(b, at + 4, little) == SYSTEMD.len()
                && b[at + 8..at + 8 + SYSTEMD.len()] == *SYSTEMD
            {
                b[at + 8..at + 8 + UNIQUE.len()].copy_from_slice(UNIQUE);
                self.rewritten += 1;
                return;
            }
            at += 8;
        }
    }
}

#[derive(Debug)]
struct Reader {
    socket: Arc<Async<UnixStream>>,
    rewriter: SenderRewriter,
}

#[zbus::export::async_trait::async_trait]
impl ReadHalf for Reader {
    async fn recvmsg(&mut self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        loop {
            let n = self.rewriter.take(buf);
            if n > 0 {
                return Ok((n, Vec::new()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let got = (&*self.socket).read(&mut chunk).await?;
            if got == 0 {
                self.rewriter.finish();
                return Ok((self.rewriter.take(buf), Vec::new()));
            }
            self.rewriter.feed(&chunk[..got]);
        }
    }
}

#[derive(Debug)]
struct Writer {
    socket: Arc<Async<UnixStream>>,
}

#[zbus::export::async_trait::async_trait]
impl WriteHalf for Writer {
    async fn sendmsg(&mut self, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        if !fds.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file descriptors are not passed on systemd's private socket here",
            ));
        }
        (&*self.socket).write(buf).await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.socket.get_ref().shutdown(std::net::Shutdown::Both)
    }
}

/// A zbus connection over systemd's private socket at `path` (peer to peer, no Hello).
pub async fn connect(path: &str, timeout: std::time::Duration) -> zbus::Result<zbus::Connection> {
    let stream = Async::new(UnixStream::connect(path)?)?;
    let socket = Arc::new(stream);
    let split: Split<Box<dyn ReadHalf>, Box<dyn WriteHalf>> = Split::new(
        Box::new(Reader {
            socket: socket.clone(),
            rewriter: SenderRewriter::default(),
        }),
        Box::new(Writer { socket }),
    );
    zbus::connection::Builder::socket(split)
        .p2p()
        .method_timeout(timeout)
        .build()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian method return from systemd with its SENDER field, as systemd 252 sends
    /// it: REPLY_SERIAL, then SENDER `org.freedesktop.systemd1`, then SIGNATURE.
    fn reply(body: &[u8]) -> Vec<u8> {
        let mut fields = Vec::new();
        // REPLY_SERIAL (5): u 7
        fields.extend_from_slice(b"\x05\x01u\x00");
        fields.extend_from_slice(&7u32.to_le_bytes());
        // SENDER (7): s "org.freedesktop.systemd1"
        fields.extend_from_slice(b"\x07\x01s\x00");
        fields.extend_from_slice(&24u32.to_le_bytes());
        fields.extend_from_slice(SYSTEMD);
        fields.push(0);
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        // SIGNATURE (8): g "s"
        fields.extend_from_slice(b"\x08\x01g\x00\x01s\x00");
        let mut m = vec![b'l', 2, 1, 1];
        m.extend_from_slice(&(body.len() as u32).to_le_bytes());
        m.extend_from_slice(&9u32.to_le_bytes());
        m.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        m.extend_from_slice(&fields);
        while m.len() % 8 != 0 {
            m.push(0);
        }
        m.extend_from_slice(body);
        m
    }

    fn drain(r: &mut SenderRewriter) -> Vec<u8> {
        let mut out = vec![0; 1 << 16];
        let n = r.take(&mut out);
        out.truncate(n);
        out
    }

    #[test]
    fn the_sender_is_rewritten_in_place_whatever_the_chunking() {
        let hello = b"OK 1234567890abcdef\r\nAGREE_UNIX_FD\r\n".to_vec();
        // The body mentions the name too: only the header field changes.
        let body = b"\x18\x00\x00\x00org.freedesktop.systemd1\x00";
        let mut stream = hello.clone();
        stream.extend(reply(body));
        stream.extend(reply(body));
        let mut want = stream.clone();
        let mut first = true;
        for i in 0..want.len() - 24 {
            if want[i..i + 24] == *SYSTEMD && want[i - 4] == 24 && want[i - 8] == 7 {
                want[i..i + 24].copy_from_slice(UNIQUE);
                first = false;
            }
        }
        assert!(!first);
        for chunk in [1, 3, 7, 16, 1000] {
            let mut r = SenderRewriter::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                r.feed(c);
                got.extend(drain(&mut r));
            }
            r.finish();
            got.extend(drain(&mut r));
            assert_eq!(got, want, "chunks of {chunk}");
            assert_eq!(r.rewritten, 2);
            assert_eq!(got.len(), stream.len());
        }
    }
}
