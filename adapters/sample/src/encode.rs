//! Encodings of header and body text: base64 (plain and in MIME lines), quoted-printable,
//! RFC 2047 encoded words, RFC 2231 percent-encoding, and RFC 5322 dates.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;

/// Standard base64 with `=` padding, appended to `out`.
pub(crate) fn base64(bytes: &[u8], out: &mut String) {
    STANDARD.encode_string(bytes, out);
}

/// Base64 in lines of 76 characters, each ending in CRLF, as MIME bodies carry it. (76
/// characters are 57 input bytes, a multiple of 3, so only the last line can be padded.)
pub(crate) fn base64_lines(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        // Base64 is ASCII: any index is a character boundary.
        let (line, tail) = rest.split_at(rest.len().min(76));
        out.push_str(line);
        out.push_str("\r\n");
        rest = tail;
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of CRLF-separated text, lines at most 76 characters.
pub(crate) fn quoted_printable(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 11 / 10 + 16);
    let mut column = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.push_str("\r\n");
            column = 0;
            i += 2;
            continue;
        }
        // Spaces at the end of a line would be lost in transport: they are encoded.
        let line_end = matches!(bytes.get(i + 1), None | Some(b'\r'));
        let literal =
            (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' || b == b'\t') && !line_end;
        let width = if literal { 1 } else { 3 };
        if column + width > 75 {
            out.push_str("=\r\n");
            column = 0;
        }
        if literal {
            out.push(char::from(b));
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        column += width;
        i += 1;
    }
    out
}

/// RFC 2047 B encoded words, split at character boundaries so each stays within 75 chars.
pub(crate) fn encoded_words_b(text: &str) -> String {
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 45).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut word = String::from("=?UTF-8?B?");
        base64(&text.as_bytes()[start..end], &mut word);
        word.push_str("?=");
        words.push(word);
        start = end;
    }
    words.join("\r\n ")
}

/// RFC 2047 Q encoded words, split at character boundaries so each stays within 75 chars.
pub(crate) fn encoded_words_q(text: &str) -> String {
    let mut words = Vec::new();
    let mut word = String::new();
    for ch in text.chars() {
        let mut piece = String::new();
        if ch == ' ' {
            piece.push('_');
        } else if ch.is_ascii_alphanumeric() || "!*+-/".contains(ch) {
            piece.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                piece.push_str(&format!("={b:02X}"));
            }
        }
        if word.len() + piece.len() > 63 {
            words.push(format!("=?UTF-8?Q?{word}?="));
            word.clear();
        }
        word.push_str(&piece);
    }
    if !word.is_empty() {
        words.push(format!("=?UTF-8?Q?{word}?="));
    }
    words.join("\r\n ")
}

/// RFC 3986 percent-encoding of everything but unreserved characters (for RFC 2231).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An RFC 5322 date for Unix seconds `secs`, shown in the zone `zone_minutes` east of UTC.
pub(crate) fn rfc5322_date(secs: u64, zone_minutes: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = secs as i64 + zone_minutes * 60;
    let days = local.div_euclid(86_400);
    let second_of_day = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let sign = if zone_minutes < 0 { '-' } else { '+' };
    let zone = zone_minutes.abs();
    format!(
        "{}, {day} {} {year} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        zone / 60,
        zone % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
