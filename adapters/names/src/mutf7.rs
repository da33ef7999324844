//! Modified UTF-7 (RFC 3501 §5.1.3), the encoding IMAP servers and Dovecot's Maildir++ layout
//! use for non-ASCII folder names: printable ASCII stands for itself (`&` is written `&-`),
//! everything else is UTF-16BE in a base64 variant (`,` instead of `/`, no padding) between
//! `&` and `-`.
//!
//! Written here rather than taken from a crate: the crates on offer are small, rarely
//! maintained, and pull in regex or encoding tables for what is sixty lines.

/// The modified base64 alphabet: standard base64 with `,` in place of `/`.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Whether `c` is written as itself (printable US-ASCII).
fn is_direct(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Encodes `name` in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if is_direct(u32::from(ch)) {
            flush_units(&mut units, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush_units(&mut units, &mut out);
    out
}

/// Writes pending UTF-16 units as one `&…-` run.
fn flush_units(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut nbits = 0u32;
    for unit in units.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(char::from(ALPHABET[((bits >> nbits) & 0x3f) as usize]));
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(char::from(
            ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize],
        ));
    }
    out.push('-');
}

/// Decodes a modified UTF-7 name; `None` when `text` is not strictly valid modified UTF-7
/// (raw non-ASCII or control characters, an unterminated or malformed `&…-` run, non-zero
/// padding bits, broken surrogates, or printable ASCII that a correct encoder would have
/// written as itself). The strictness keeps names that merely contain `&` (`R&D`, `AT&T`) or
/// raw UTF-8 from being mistaken for encoded ones.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'&' {
            let end = i + 1 + bytes[i + 1..].iter().position(|&c| c == b'-')?;
            if end == i + 1 {
                out.push('&');
            } else {
                decode_run(&bytes[i + 1..end], &mut out)?;
            }
            i = end + 1;
        } else if is_direct(u32::from(b)) {
            out.push(char::from(b));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

/// Decodes the base64 between `&` and `-` into `out`.
fn decode_run(run: &[u8], out: &mut String) -> Option<()> {
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    let mut bits: u32 = 0;
    let mut nbits = 0u32;
    for &c in run {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        bits = (bits << 6) | value as u32;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push(((bits >> nbits) & 0xffff) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // What is left must be padding: fewer than six bits, all zero.
    if nbits >= 6 || bits != 0 || units.is_empty() {
        return None;
    }
    for ch in char::decode_utf16(units) {
        let ch = ch.ok()?;
        if is_direct(u32::from(ch)) {
            return None;
        }
        out.push(ch);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_rfc_3501_and_dovecot() {
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode("R&D"), "R&-D");
        assert_eq!(encode("Ærø"), "&AMY-r&APg-");
        assert_eq!(encode("Работа"), "&BCAEMAQxBD4EQgQw-");
        // RFC 3501's own example.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        // Outside the BMP: a surrogate pair.
        assert_eq!(decode(&encode("Party 🎉")).as_deref(), Some("Party 🎉"));
    }

    #[test]
    fn decodes_and_round_trips() {
        for name in [
            "Entwürfe",
            "R&D",
            "a&b&&c",
            "日本語",
            "Ærø",
            "x\u{7f}y",
            "tab\there",
            "",
        ] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name), "{name:?}");
        }
        assert_eq!(decode("Entw&APw-rfe").as_deref(), Some("Entwürfe"));
    }

    #[test]
    fn rejects_what_is_not_modified_utf7() {
        for text in [
            "Entwürfe",   // raw UTF-8
            "AT&T",       // unterminated run
            "R&D-Team",   // six bits are not a UTF-16 unit
            "Foo&Bar-",   // non-zero padding bits
            "&AGE-",      // "a" encoded: must be written as itself
            "&2D0-",      // lone high surrogate
            "a&b/c-",     // '/' is not in the modified alphabet
            "line\nfeed", // control character
        ] {
            assert_eq!(decode(text), None, "{text:?}");
        }
    }
}
