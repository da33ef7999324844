//! A message's exact bytes, whatever its size: in memory when small, in a file when large.
//!
//! A message read from a source passes through ferry on its way to the target: it is hashed,
//! perhaps kept until its copy, then written. Held in memory whole, a 25 MB message costs at
//! least 25 MB for each one in flight, and the in-flight budget cannot bound what one message
//! costs. So a store that reads a large message in pieces (IMAP: partial `BODY.PEEK[]<o.n>`
//! fetches) writes the pieces into a [`Spool`], and a store that writes one reads it back in
//! pieces ([`Body::pieces`]): what such a message holds in memory is a few pieces, whatever its
//! size. A Maildir message file is a [`Body`] as it is ([`Body::open_file`]).
//!
//! A spool file is unnamed (`O_TMPFILE` where the system has it), so nothing is left behind
//! when ferry exits or is killed, and it is encrypted with XChaCha12 under a key that exists
//! only in this process's memory: mail content never rests on disk in clear, not even in the
//! free blocks of the disk the spool used. Twelve rounds, not twenty: a spool is written once
//! and read back twice, the key is random and never reused past one file, and no attack
//! reaches beyond seven rounds; the cipher was a third of the CPU time of copying large
//! messages with twenty. It lives in the directory the run names (the CLI: the journal's
//! directory, a disk the admin chose; several runs in one process each name their own), or the
//! system's temporary directory when none is named.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chacha20::XChaCha12;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use ferry_journal::{ContentHash, ContentKey};
use zeroize::Zeroizing;

/// The size of the pieces large messages are read and written in: a store reads a message in
/// pieces of this size, and one whose first piece fills it is spooled.
pub const PIECE_BYTES: usize = 1 << 20;

/// How many pieces of one message a store may have in flight at once.
pub const PIECES_IN_FLIGHT: usize = 4;

/// What a message of `size` bytes holds in memory while it is read or written: all of it when
/// it is small, at most the pieces in flight when it is spooled.
pub fn resident_bytes(size: u64) -> u64 {
    size.min((PIECE_BYTES * PIECES_IN_FLIGHT) as u64)
}

/// What to say when a body cannot be read back (its spool's or its file's disk failed): a
/// local failure, told as the item's and worth retrying.
pub fn read_back(error: &io::Error) -> String {
    format!("reading back a spooled message: {error}")
}

/// A message's exact bytes. Cloning is cheap (the bytes are shared), and `Debug` shows the
/// length only, never content.
///
/// Its keyed identity is the hash of its bytes, or of the identity its store gave it
/// ([`Body::with_identity`]): a store whose bytes are an opaque stream made anew at every
/// read (an Exchange export) names what stays the same instead. A store that converts an
/// item on its way out (a Graph event rendered as iCalendar) and keeps beside it the keyed
/// hash of what ferry wrote gives that hash instead ([`Body::known_as`]), for as long as the
/// item is as ferry left it.
#[derive(Clone)]
pub struct Body(Repr, Option<Identity>);

#[derive(Clone)]
enum Identity {
    /// Bytes hashed instead of the body's.
    Bytes(Bytes),
    /// The keyed hash itself.
    Hash(ContentHash),
}

#[derive(Clone)]
enum Repr {
    Memory(Bytes),
    File(Arc<FileBody>),
}

struct FileBody {
    file: File,
    len: u64,
    /// The keystream a spool file is encrypted with; `None` for a message file read in place.
    seal: Option<Seal>,
}

struct Seal {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; 24],
}

impl Seal {
    fn new() -> io::Result<Seal> {
        let mut key = Zeroizing::new([0u8; 32]);
        let mut nonce = [0u8; 24];
        getrandom::fill(key.as_mut_slice())
            .and_then(|()| getrandom::fill(&mut nonce))
            .map_err(|e| io::Error::other(format!("no randomness for a spool key: {e}")))?;
        Ok(Seal { key, nonce })
    }

    /// Encrypts or decrypts (the same operation) `bytes` found at `offset` of the file.
    fn apply(&self, offset: u64, bytes: &mut [u8]) {
        let key: &[u8; 32] = &self.key;
        let mut cipher = XChaCha12::new(&(*key).into(), &self.nonce.into());
        cipher.seek(offset);
        cipher.apply_keystream(bytes);
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Memory(bytes) => write!(f, "Body({} bytes in memory)", bytes.len()),
            Repr::File(file) => write!(f, "Body({} bytes in a file)", file.len),
        }
    }
}

impl PartialEq for Body {
    /// Same bytes. Reads spooled bodies; one that cannot be read equals nothing.
    fn eq(&self, other: &Body) -> bool {
        if self.len() != other.len() {
            return false;
        }
        match (self.to_vec(), other.to_vec()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> PartialEq<T> for Body {
    /// Same bytes as `other`. Reads a spooled body; one that cannot be read equals nothing.
    fn eq(&self, other: &T) -> bool {
        let other = other.as_ref();
        self.len() == other.len() as u64 && self.to_vec().is_ok_and(|bytes| bytes == other)
    }
}

impl<const N: usize> From<&[u8; N]> for Body {
    fn from(bytes: &[u8; N]) -> Body {
        Body::from(&bytes[..])
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body(Repr::Memory(Bytes::from(bytes)), None)
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Body {
        Body(Repr::Memory(Bytes::copy_from_slice(bytes)), None)
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body(Repr::Memory(bytes), None)
    }
}

impl Body {
    /// A message file read where it is, in pieces: its length is the file's now. The file must
    /// not change while the body is used (Maildir message files never do).
    pub fn open_file(file: File) -> io::Result<Body> {
        let len = file.metadata()?.len();
        Ok(Body(
            Repr::File(Arc::new(FileBody {
                file,
                len,
                seal: None,
            })),
            None,
        ))
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match &self.0 {
            Repr::Memory(bytes) => bytes.len() as u64,
            Repr::File(file) => file.len,
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory.
    pub fn in_memory(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Memory(bytes) => Some(bytes),
            Repr::File(_) => None,
        }
    }

    /// The bytes in order, in pieces of at most `size` bytes (at least one byte each). Pieces
    /// of a body in memory share its bytes; pieces of a file are read as they are asked for.
    pub fn pieces(&self, size: usize) -> Pieces<'_> {
        Pieces {
            body: self,
            offset: 0,
            size: size.max(1),
        }
    }

    /// All the bytes in one vector (for small bodies and for stores that need them whole).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        for piece in self.pieces(PIECE_BYTES) {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    /// The same bytes, known by `identity` instead of by their bytes: what its hash is made
    /// of (see the type's documentation).
    pub fn with_identity(self, identity: impl Into<Bytes>) -> Body {
        Body(self.0, Some(Identity::Bytes(identity.into())))
    }

    /// The same bytes, whose keyed hash is `hash` (see the type's documentation).
    pub fn known_as(self, hash: ContentHash) -> Body {
        Body(self.0, Some(Identity::Hash(hash)))
    }

    /// What its store names it by instead of its bytes, if anything.
    pub fn identity(&self) -> Option<&[u8]> {
        match &self.1 {
            Some(Identity::Bytes(bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// Its keyed content hash: of its identity if it has one, else of its bytes, read piece
    /// by piece.
    pub fn hash(&self, key: &ContentKey) -> io::Result<ContentHash> {
        if let Some(Identity::Hash(hash)) = &self.1 {
            return Ok(*hash);
        }
        if let Some(identity) = self.identity() {
            return Ok(key.hash(identity));
        }
        if let Some(bytes) = self.in_memory() {
            return Ok(key.hash(bytes));
        }
        let mut hasher = key.hasher();
        for piece in self.pieces(PIECE_BYTES) {
            hasher.update(&piece?);
        }
        Ok(hasher.finish())
    }
}

/// See [`Body::pieces`].
#[derive(Debug)]
pub struct Pieces<'a> {
    body: &'a Body,
    offset: u64,
    size: usize,
}

impl Iterator for Pieces<'_> {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        let left = self.body.len().saturating_sub(self.offset);
        if left == 0 {
            return None;
        }
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(self.size);
        let start = self.offset;
        self.offset += take as u64;
        Some(match &self.body.0 {
            Repr::Memory(bytes) => {
                let start = start as usize;
                Ok(bytes.slice(start..start + take))
            }
            Repr::File(file) => {
                let mut buffer = vec![0u8; take];
                match file.file.read_exact_at(&mut buffer, start) {
                    Ok(()) => {
                        if let Some(seal) = &file.seal {
                            seal.apply(start, &mut buffer);
                        }
                        Ok(Bytes::from(buffer))
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        // Stop here: the file got shorter than it was.
                        self.offset = self.body.len();
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the message file ended before its {} bytes", file.len),
                        ))
                    }
                    Err(e) => {
                        self.offset = self.body.len();
                        Err(e)
                    }
                }
            }
        })
    }
}

/// A large message being written piece by piece into an encrypted, unnamed file; see the
/// module's documentation.
pub struct Spool {
    file: File,
    len: u64,
    seal: Seal,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spool({} bytes)", self.len)
    }
}

impl Spool {
    /// An empty spool file in `dir` (the system's temporary directory when `None`).
    pub fn new(dir: Option<&Path>) -> io::Result<Spool> {
        let temp;
        let dir = match dir {
            Some(dir) => dir,
            None => {
                temp = std::env::temp_dir();
                &temp
            }
        };
        let file = tempfile::tempfile_in(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("making a spool file in {}: {e}", dir.display()),
            )
        })?;
        Ok(Spool {
            file,
            len: 0,
            seal: Seal::new()?,
            buffer: Vec::new(),
        })
    }

    /// Adds `bytes` at the end.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffer.clear();
        self.buffer.extend_from_slice(bytes);
        self.seal.apply(self.len, &mut self.buffer);
        self.file.write_all_at(&self.buffer, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// How many bytes it holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message written.
    pub fn finish(self) -> Body {
        Body(
            Repr::File(Arc::new(FileBody {
                file: self.file,
                len: self.len,
                seal: Some(self.seal),
            })),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    #[test]
    fn a_spooled_body_reads_back_the_same_bytes_in_any_piece_size_and_is_not_stored_in_clear() {
        let bytes = sample(3 * PIECE_BYTES + 12_345);
        let mut spool = Spool::new(None).expect("spool");
        // Written in uneven pieces, as a server's partial fetches may come.
        for part in bytes.chunks(PIECE_BYTES / 3 + 7) {
            spool.write(part).expect("write");
        }
        assert_eq!(spool.len(), bytes.len() as u64);
        let on_disk = spool.file_view().to_vec().expect("raw read");
        assert_eq!(on_disk.len(), bytes.len());
        assert_ne!(
            &on_disk[..4096],
            &bytes[..4096],
            "the spool file holds clear text"
        );
        let body = spool.finish();
        assert_eq!(body.len(), bytes.len() as u64);
        assert!(body.in_memory().is_none());
        for size in [1000, 65_536, PIECE_BYTES, 10 * PIECE_BYTES] {
            let mut joined = Vec::new();
            for piece in body.pieces(size) {
                let piece = piece.expect("piece");
                assert!(!piece.is_empty() && piece.len() <= size);
                joined.extend_from_slice(&piece);
            }
            assert_eq!(joined, bytes, "pieces of {size}");
        }
        let key = ContentKey::from_secret([9; 32]);
        assert_eq!(body.hash(&key).expect("hash"), key.hash(&bytes));
        assert_eq!(body, Body::from(bytes));
    }

    #[test]
    fn a_body_in_memory_is_cut_into_pieces_without_copying_and_hashes_as_its_bytes() {
        let bytes = sample(100_001);
        let body = Body::from(bytes.clone());
        let pieces: Vec<Bytes> = body.pieces(30_000).map(|p| p.expect("piece")).collect();
        assert_eq!(
            pieces.iter().map(Bytes::len).collect::<Vec<_>>(),
            [30_000, 30_000, 30_000, 10_001]
        );
        assert_eq!(pieces.concat(), bytes);
        let key = ContentKey::from_secret([3; 32]);
        assert_eq!(body.hash(&key).expect("hash"), key.hash(&bytes));
        assert_eq!(Body::from(Vec::new()).pieces(10).count(), 0);
        assert_eq!(format!("{body:?}"), "Body(100001 bytes in memory)");
    }

    #[test]
    fn a_file_that_shrinks_under_a_body_is_an_error_not_short_content() {
        let mut file = tempfile::tempfile().expect("file");
        std::io::Write::write_all(&mut file, &sample(10_000)).expect("write");
        let body = Body::open_file(file.try_clone().expect("clone")).expect("open");
        file.set_len(5_000).expect("truncate");
        let error = body.to_vec().expect_err("short read");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    impl Spool {
        /// The spool's file as a body without its seal: what rests on disk.
        fn file_view(&self) -> Body {
            Body(
                Repr::File(Arc::new(FileBody {
                    file: self.file.try_clone().expect("clone"),
                    len: self.len,
                    seal: None,
                })),
                None,
            )
        }
    }
}
