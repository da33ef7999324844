//! One message: its envelope and header fields (senders, recipients, dates, subjects in
//! RFC 2047, threading and list headers), assembled around a body from [`crate::body`].

use crate::body::html;
use crate::encode::{encoded_words_b, encoded_words_q, rfc5322_date};
use crate::folders::Kind;
use crate::words::{
    Lang, ME, PEOPLE, SENDERS, SUBJECTS_DE, SUBJECTS_EMOJI, SUBJECTS_EN, SUBJECTS_JA, SUBJECTS_RU,
};

/// Builds one message.
pub(crate) struct Generator<'a> {
    pub(crate) rng: &'a mut fastrand::Rng,
    pub(crate) seed: u64,
    pub(crate) index: usize,
    pub(crate) date: u64,
}

impl Generator<'_> {
    pub(crate) fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.rng.usize(0..items.len())]
    }

    pub(crate) fn percent(&mut self, p: u32) -> bool {
        self.rng.u32(0..100) < p
    }

    /// A target size: mostly 2–20 KB, some 20–60 KB, a tail up to 200 KB, each range skewed
    /// towards its low end.
    fn target_size(&mut self) -> usize {
        let tier = self.rng.u32(0..100);
        let (low, high) = match tier {
            0..88 => (2_000, 20_000),
            88..98 => (20_000, 60_000),
            _ => (60_000, 200_000),
        };
        let x = self.rng.usize(0..1000);
        low + (high - low) * x * x * x / 1_000_000_000
    }

    pub(crate) fn message(mut self, kind: Kind, without_message_id: bool) -> Vec<u8> {
        let lang = match kind {
            _ if self.percent(65) => Lang::En,
            Kind::Work if self.percent(60) => {
                if self.index.is_multiple_of(2) {
                    Lang::Ru
                } else {
                    Lang::De
                }
            }
            _ => [Lang::De, Lang::Ru, Lang::Ja, Lang::Emoji, Lang::En][self.rng.usize(0..5)],
        };
        let mut target = self.target_size();
        let mut head = String::with_capacity(1024);
        let (from, to): (String, Vec<(&str, &str)>) = match kind {
            Kind::Sent | Kind::Drafts => {
                let n = 1 + usize::from(self.percent(30)) + usize::from(self.percent(10));
                (
                    address(ME),
                    (0..n)
                        .map(|_| PEOPLE[self.rng.usize(0..PEOPLE.len())])
                        .collect(),
                )
            }
            Kind::Newsletters => (address(SENDERS[self.rng.usize(0..SENDERS.len())]), vec![ME]),
            _ => (address(PEOPLE[self.rng.usize(0..PEOPLE.len())]), vec![ME]),
        };
        let incoming = !matches!(kind, Kind::Sent | Kind::Drafts);
        if incoming {
            head.push_str(&format!("Return-Path: <{}>\r\n", bare_address(&from)));
            let id = self.rng.u64(..);
            let ip = self.rng.u8(1..255);
            head.push_str(&format!(
                "Received: from mx{}.example.net (mx.example.net [192.0.2.{ip}])\r\n\tby mail.example.org \
                 (Postfix) with ESMTPS id {:X}\r\n\tfor <{}>; {}\r\n",
                ip % 4,
                id & 0xff_ffff_ffff,
                ME.1,
                rfc5322_date(self.date + self.rng.u64(0..5), 0)
            ));
        }
        let zones = [0, 60, 120, -300, -480, 540, 180, 330];
        let zone = zones[self.rng.usize(0..zones.len())];
        head.push_str(&format!("Date: {}\r\n", rfc5322_date(self.date, zone)));
        head.push_str(&format!("From: {from}\r\n"));
        let to_line: Vec<String> = to.iter().map(|p| address(*p)).collect();
        head.push_str(&format!("To: {}\r\n", to_line.join(",\r\n ")));
        if kind != Kind::Newsletters && self.percent(25) {
            let cc = PEOPLE[self.rng.usize(0..PEOPLE.len())];
            head.push_str(&format!("Cc: {}\r\n", address(cc)));
        }
        let reply = kind != Kind::Newsletters && self.percent(30);
        head.push_str(&format!(
            "Subject: {}{}\r\n",
            if reply { "Re: " } else { "" },
            self.subject(lang)
        ));
        let domain = bare_address(&from)
            .rsplit_once('@')
            .map_or("example.org", |(_, d)| d)
            .to_owned();
        if !without_message_id {
            head.push_str(&format!(
                "Message-ID: <{:016x}.{}.{}@{domain}>\r\n",
                self.rng.u64(..),
                self.seed,
                self.index
            ));
        }
        if reply {
            let parent = format!("<{:012x}@example.com>", self.rng.u64(..) >> 16);
            head.push_str(&format!(
                "In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
            ));
        }
        if !incoming {
            head.push_str("User-Agent: Mozilla Thunderbird\r\n");
        } else if self.percent(20) {
            head.push_str("X-Mailer: Apple Mail (2.3774.600.62)\r\n");
        }
        if kind == Kind::Newsletters {
            head.push_str(&format!(
                "List-Id: <{}>\r\nList-Unsubscribe: <mailto:unsubscribe@{domain}?subject=unsubscribe>\r\n\
                 Precedence: bulk\r\n",
                domain
            ));
        }
        head.push_str("MIME-Version: 1.0\r\n");
        target = target.saturating_sub(head.len() + 200);

        let attachment = match kind {
            Kind::Newsletters => false,
            Kind::Drafts => self.percent(5),
            _ => self.percent(15),
        };
        let attachment = if attachment {
            let raw = (2_000 + self.rng.usize(0..58_000)).min(target * 2 / 3 + 2_000);
            target = target.saturating_sub(raw * 4 / 3);
            Some(self.attachment(raw))
        } else {
            None
        };
        let alternative = kind == Kind::Newsletters || (kind != Kind::Drafts && self.percent(65));
        let text_budget = if alternative { target * 2 / 5 } else { target }.max(300);
        let paragraphs = self.paragraphs(lang, text_budget);
        let mut plain = self.plain_text(&paragraphs, reply);
        if kind == Kind::Drafts && self.percent(50) {
            // An unfinished draft: cut mid-sentence, at a character and line-ending boundary.
            let cut = plain.floor_char_boundary(300);
            plain.truncate(plain[..cut].trim_end_matches(['\r', '\n']).len());
            plain.push_str("\r\n");
        }
        let text = self.text_entity("plain", &plain);
        let body = if alternative {
            let html = self.text_entity("html", &html(&paragraphs, kind == Kind::Newsletters));
            self.multipart("alternative", &[text, html])
        } else {
            text
        };
        let entity = match attachment {
            Some(file) => self.multipart("mixed", &[body, file]),
            None => body,
        };
        let mut message = head.into_bytes();
        message.extend_from_slice(entity.headers.as_bytes());
        message.extend_from_slice(b"\r\n");
        message.extend_from_slice(entity.body.as_bytes());
        message
    }

    /// A subject, RFC 2047-encoded (B or Q, at random) when it is not ASCII.
    fn subject(&mut self, lang: Lang) -> String {
        let text = match lang {
            Lang::En => {
                let subject = self.pick(&SUBJECTS_EN);
                if self.percent(10) {
                    return format!("Invoice #{}", 10_000 + self.rng.u32(0..90_000));
                }
                subject
            }
            Lang::De => self.pick(&SUBJECTS_DE),
            Lang::Ru => self.pick(&SUBJECTS_RU),
            Lang::Ja => self.pick(&SUBJECTS_JA),
            Lang::Emoji => self.pick(&SUBJECTS_EMOJI),
        };
        if text.is_ascii() {
            text.to_owned()
        } else if self.rng.bool() {
            encoded_words_b(text)
        } else {
            encoded_words_q(text)
        }
    }
}

/// `Name <address>`, the name RFC 2047-encoded when it is not ASCII and quoted when it has
/// specials.
fn address((name, addr): (&str, &str)) -> String {
    if !name.is_ascii() {
        format!("{} <{addr}>", encoded_words_q(name))
    } else if name.contains(['\'', ',', '.']) {
        format!("\"{name}\" <{addr}>")
    } else {
        format!("{name} <{addr}>")
    }
}

fn bare_address(header: &str) -> &str {
    header
        .rsplit_once('<')
        .map_or(header, |(_, rest)| rest.trim_end_matches('>'))
}
