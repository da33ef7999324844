//! Message bodies: paragraphs in the message's language, the plain-text and HTML renderings,
//! text entities in the transfer encodings mail programs use, attachments, and multiparts.

use crate::encode::{base64_lines, encoded_words_q, percent_encode, quoted_printable};
use crate::message::Generator;
use crate::words::{EMOJI, Lang, SENTENCES_DE, SENTENCES_EN, SENTENCES_JA, SENTENCES_RU};

impl Generator<'_> {
    /// Paragraphs (one line each) of about `budget` bytes in all.
    pub(crate) fn paragraphs(&mut self, lang: Lang, budget: usize) -> Vec<String> {
        let mut paragraphs = Vec::new();
        let mut total = 0;
        while total < budget {
            let mut paragraph = String::with_capacity(400);
            for n in 0..self.rng.usize(2..7) {
                if n > 0 && lang != Lang::Ja {
                    paragraph.push(' ');
                }
                let sentence = match lang {
                    Lang::De if self.percent(70) => self.pick(&SENTENCES_DE),
                    Lang::Ru if self.percent(70) => self.pick(&SENTENCES_RU),
                    Lang::Ja if self.percent(80) => self.pick(&SENTENCES_JA),
                    _ => self.pick(&SENTENCES_EN),
                };
                paragraph.push_str(sentence);
                if lang == Lang::Emoji && self.percent(30) {
                    paragraph.push(' ');
                    paragraph.push_str(self.pick(&EMOJI));
                }
            }
            total += paragraph.len() + 4;
            paragraphs.push(paragraph);
        }
        paragraphs
    }

    /// The plain-text body: greeting, wrapped paragraphs, a quote when it is a reply, and a
    /// signature.
    pub(crate) fn plain_text(&mut self, paragraphs: &[String], reply: bool) -> String {
        let mut text =
            String::with_capacity(paragraphs.iter().map(|p| p.len() + 8).sum::<usize>() + 256);
        text.push_str(self.pick(&[
            "Hi,",
            "Hello,",
            "Dear all,",
            "Hallo zusammen,",
            "Добрый день,",
        ]));
        text.push_str("\r\n\r\n");
        for paragraph in paragraphs {
            wrap(paragraph, 72, &mut text);
            text.push_str("\r\n");
        }
        text.push_str("Best regards,\r\nAlex\r\n");
        if reply {
            text.push_str(
                "\r\nOn Mon, 3 Mar 2025 at 09:12, Chris Lee <chris@example.net> wrote:\r\n",
            );
            let quoted = self.pick(&SENTENCES_EN);
            text.push_str(&format!("> {quoted}\r\n>\r\n> Thanks,\r\n> Chris\r\n"));
        }
        text
    }

    /// A text entity in a transfer encoding as mail programs choose them: 7bit for ASCII
    /// plain text, quoted-printable for HTML, and any of quoted-printable, base64 or 8bit for
    /// other text.
    pub(crate) fn text_entity(&mut self, subtype: &str, text: &str) -> Entity {
        let (encoding, body) = if subtype == "html" {
            ("quoted-printable", quoted_printable(text.as_bytes()))
        } else if text.is_ascii() {
            ("7bit", text.to_owned())
        } else {
            match self.rng.u32(0..3) {
                0 => ("quoted-printable", quoted_printable(text.as_bytes())),
                1 => ("base64", base64_lines(text.as_bytes())),
                _ => ("8bit", text.to_owned()),
            }
        };
        Entity {
            headers: format!(
                "Content-Type: text/{subtype}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {encoding}\r\n"
            ),
            body,
        }
    }

    /// A PDF- or PNG-like attachment of `size` random bytes, base64-encoded.
    pub(crate) fn attachment(&mut self, size: usize) -> Entity {
        let (mime, magic, name): (&str, &[u8], &str) = match self.rng.u32(0..4) {
            0 => ("image/png", b"\x89PNG\r\n\x1a\n", "screenshot.png"),
            1 => ("application/pdf", b"%PDF-1.7\n", "Rechnung März.pdf"),
            _ => ("application/pdf", b"%PDF-1.4\n", "report-q3.pdf"),
        };
        let mut bytes = vec![0u8; size.max(magic.len())];
        self.rng.fill(&mut bytes);
        bytes[..magic.len()].copy_from_slice(magic);
        let disposition = if name.is_ascii() {
            format!("attachment; filename=\"{name}\"")
        } else {
            // RFC 2231, as most mail programs write non-ASCII file names.
            format!("attachment;\r\n filename*=UTF-8''{}", percent_encode(name))
        };
        let type_name = if name.is_ascii() {
            name.to_owned()
        } else {
            encoded_words_q(name)
        };
        Entity {
            headers: format!(
                "Content-Type: {mime}; name=\"{type_name}\"\r\nContent-Disposition: {disposition}\r\n\
                 Content-Transfer-Encoding: base64\r\n"
            ),
            body: base64_lines(&bytes),
        }
    }

    pub(crate) fn multipart(&mut self, subtype: &str, parts: &[Entity]) -> Entity {
        let boundary = format!("=_{subtype}_{:016x}", self.rng.u64(..));
        let mut body = String::with_capacity(
            parts
                .iter()
                .map(|p| p.headers.len() + p.body.len() + 80)
                .sum(),
        );
        if subtype == "mixed" {
            body.push_str("This is a multi-part message in MIME format.\r\n");
        }
        for part in parts {
            body.push_str(&format!("\r\n--{boundary}\r\n"));
            body.push_str(&part.headers);
            body.push_str("\r\n");
            body.push_str(&part.body);
        }
        body.push_str(&format!("\r\n--{boundary}--\r\n"));
        Entity {
            headers: format!("Content-Type: multipart/{subtype};\r\n boundary=\"{boundary}\"\r\n"),
            body,
        }
    }
}

/// A MIME entity: its header lines and its (encoded) body.
pub(crate) struct Entity {
    pub(crate) headers: String,
    pub(crate) body: String,
}

/// The paragraphs as HTML; a newsletter gets the table-and-inline-style layout they use.
pub(crate) fn html(paragraphs: &[String], newsletter: bool) -> String {
    let mut html =
        String::with_capacity(paragraphs.iter().map(|p| p.len() + 64).sum::<usize>() + 512);
    html.push_str("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head>\r\n<body>\r\n");
    if newsletter {
        html.push_str(
            "<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
             style=\"background:#f4f4f4\">\r\n",
        );
    }
    for paragraph in paragraphs {
        if newsletter {
            html.push_str(
                "<tr><td style=\"padding:12px 24px;font-family:Helvetica,Arial,sans-serif;\
                 font-size:15px;color:#333333\">",
            );
        } else {
            html.push_str("<p>");
        }
        for ch in paragraph.chars() {
            match ch {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                _ => html.push(ch),
            }
        }
        html.push_str(if newsletter {
            "</td></tr>\r\n"
        } else {
            "</p>\r\n"
        });
    }
    if newsletter {
        html.push_str(
            "</table>\r\n<p style=\"font-size:11px\">\
             <a href=\"https://news.example.com/unsubscribe\">Unsubscribe</a></p>\r\n",
        );
    }
    html.push_str("</body></html>\r\n");
    html
}

/// Appends `text` wrapped at `width` characters, each line ending in CRLF; words longer than
/// a line (Japanese has no spaces) are cut.
pub(crate) fn wrap(text: &str, width: usize, out: &mut String) {
    let mut line_chars = 0;
    for word in text.split(' ') {
        let mut word = word;
        loop {
            let chars = if word.is_ascii() {
                word.len()
            } else {
                word.chars().count()
            };
            if line_chars > 0 && line_chars + 1 + chars > width {
                out.push_str("\r\n");
                line_chars = 0;
            }
            if chars <= width {
                if line_chars > 0 {
                    out.push(' ');
                    line_chars += 1;
                }
                out.push_str(word);
                line_chars += chars;
                break;
            }
            let cut = word
                .char_indices()
                .nth(width)
                .map_or(word.len(), |(i, _)| i);
            out.push_str(&word[..cut]);
            out.push_str("\r\n");
            word = &word[cut..];
        }
    }
    out.push_str("\r\n");
}
