//! A seeded generator of a realistic sample Maildir++ tree, for demos, tests and benchmarks.
//!
//! Everything is derived from the seed: no clock, no operating-system randomness. The same
//! seed gives the same tree, byte for byte, with the same file names and modification times.
//!
//! The tree exercises what a real mailbox throws at a migration: nested, modified-UTF-7 and
//! raw-UTF-8 folder names, RFC 2047 subjects and names in several scripts, multipart bodies
//! in every common transfer encoding, base64 attachments, Dovecot keywords, messages still in
//! `new/`, a half-delivered file left in `tmp/`, a tmp-only directory that is not a folder, one
//! message without a `Message-ID`, and two byte-identical copies of one message.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ferry_engine::{Flags, SystemFlag};

use ferry_maildir::folder_dir_name;
use ferry_maildir::info::{self, Keywords};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// How many message files to write (the two identical copies count as two).
    pub messages: usize,
    /// The seed everything is derived from.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// Message files written (equals the spec's count).
    pub messages: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The folders, `/`-separated and decoded, sorted.
    pub folders: Vec<String>,
}

/// The kind of a folder decides senders, flags and body shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inbox,
    Sent,
    Drafts,
    Trash,
    Archive,
    Work,
    Newsletters,
}

/// A sample folder.
struct FolderPlan {
    path: &'static str,
    /// Share of the messages, relative to the others.
    weight: u32,
    kind: Kind,
    /// Written with its raw UTF-8 name instead of modified UTF-7, as some tools do.
    raw_name: bool,
    /// Its `dovecot-keywords` file; each folder numbers its keywords its own way.
    keywords: &'static str,
    /// Date range of its messages (Unix seconds).
    dates: (u64, u64),
}

const Y2024: u64 = 1_704_067_200;
const Y2025: u64 = 1_735_689_600;
const Y2026: u64 = 1_767_225_600;
const RECENT: (u64, u64) = (1_740_000_000, Y2026);

const FOLDERS: [FolderPlan; 10] = [
    FolderPlan {
        path: "INBOX",
        weight: 34,
        kind: Kind::Inbox,
        raw_name: false,
        keywords: "0 $Junk\n1 Work\n",
        dates: RECENT,
    },
    FolderPlan {
        path: "Sent",
        weight: 12,
        kind: Kind::Sent,
        raw_name: false,
        keywords: "",
        dates: RECENT,
    },
    FolderPlan {
        path: "Drafts",
        weight: 2,
        kind: Kind::Drafts,
        raw_name: false,
        keywords: "",
        dates: RECENT,
    },
    FolderPlan {
        path: "Trash",
        weight: 5,
        kind: Kind::Trash,
        raw_name: false,
        keywords: "",
        dates: RECENT,
    },
    FolderPlan {
        path: "Archive",
        weight: 6,
        kind: Kind::Archive,
        raw_name: false,
        keywords: "",
        dates: (1_640_995_200, Y2024),
    },
    FolderPlan {
        path: "Archive/2024",
        weight: 12,
        kind: Kind::Archive,
        raw_name: false,
        keywords: "",
        dates: (Y2024, Y2025),
    },
    FolderPlan {
        path: "Archive/2025",
        weight: 12,
        kind: Kind::Archive,
        raw_name: false,
        keywords: "",
        dates: (Y2025, Y2026),
    },
    FolderPlan {
        path: "Projects/Ærø",
        weight: 5,
        kind: Kind::Work,
        raw_name: false,
        keywords: "0 Work\n",
        dates: RECENT,
    },
    FolderPlan {
        path: "Работа",
        weight: 5,
        kind: Kind::Work,
        raw_name: true,
        keywords: "1 Work\n",
        dates: RECENT,
    },
    FolderPlan {
        path: "Newsletters",
        weight: 7,
        kind: Kind::Newsletters,
        raw_name: false,
        keywords: "0 $Junk\n",
        dates: RECENT,
    },
];

/// Writes a sample Maildir++ tree of `spec.messages` messages into `root`, which must be
/// missing or empty (so a second run cannot mix two samples).
pub fn generate(root: &Path, spec: &SampleSpec) -> io::Result<SampleSummary> {
    if root.exists() && fs::read_dir(root)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is not empty; a sample is written into a new or empty directory",
                root.display()
            ),
        ));
    }
    let mut dirs = Vec::with_capacity(FOLDERS.len());
    let mut keywords = Vec::with_capacity(FOLDERS.len());
    for plan in &FOLDERS {
        let dir = folder_dir(root, plan)?;
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        if plan.path != "INBOX" {
            write_file(&dir.join("maildirfolder"), b"", plan.dates.0)?;
        }
        if !plan.keywords.is_empty() {
            write_file(
                &dir.join(info::KEYWORDS_FILE),
                plan.keywords.as_bytes(),
                plan.dates.0,
            )?;
        }
        keywords.push(Keywords::parse(plan.keywords));
        dirs.push(dir);
    }
    write_debris(root, spec.seed)?;

    let folder_of = assign_folders(spec);
    let mut bytes = 0u64;
    let mut previous: Option<(Vec<u8>, u64, Option<String>)> = None;
    for (index, &folder) in folder_of.iter().enumerate() {
        let plan = &FOLDERS[folder];
        let mut rng = fastrand::Rng::with_seed(mix(spec.seed, index as u64));
        // Index 2 is a byte-identical copy of index 1, in the same folder (INBOX).
        let (message, date, letters) = match previous.take() {
            Some(copy) if index == DUPLICATE => copy,
            _ => {
                let date = plan.dates.0 + rng.u64(0..plan.dates.1 - plan.dates.0);
                let flags = sample_flags(&mut rng, plan.kind);
                let message = Generator {
                    rng: &mut rng,
                    seed: spec.seed,
                    index,
                    date,
                }
                .message(plan.kind, index == NO_MESSAGE_ID);
                let letters = flags.map(|flags| {
                    let mut unchanged = false;
                    info::render_flags(&flags, &mut keywords[folder], &mut unchanged)
                });
                (message, date, letters)
            }
        };
        let unique = format!("{date}.S{}I{index}.sample", spec.seed);
        let path = match &letters {
            Some(letters) => dirs[folder]
                .join("cur")
                .join(format!("{unique}{}{letters}", info::INFO_SEP)),
            None => dirs[folder].join("new").join(&unique),
        };
        write_file(&path, &message, date)?;
        bytes += message.len() as u64;
        if index + 1 == DUPLICATE && spec.messages > DUPLICATE {
            previous = Some((message, date, letters));
        }
    }
    let mut folders: Vec<String> = FOLDERS.iter().map(|p| p.path.to_owned()).collect();
    folders.sort();
    Ok(SampleSummary {
        messages: spec.messages,
        bytes,
        folders,
    })
}

/// The message without a `Message-ID` header.
const NO_MESSAGE_ID: usize = 0;
/// The second of the two identical copies (the first is the index before it).
const DUPLICATE: usize = 2;

/// The directory of a sample folder.
fn folder_dir(root: &Path, plan: &FolderPlan) -> io::Result<PathBuf> {
    if plan.path == "INBOX" {
        return Ok(root.to_path_buf());
    }
    let name = if plan.raw_name {
        format!(".{}", plan.path.replace('/', "."))
    } else {
        folder_dir_name(plan.path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
    };
    Ok(root.join(name))
}

/// What real trees also contain and a reader must pass over: a delivery cut short in `tmp/`,
/// and a directory with only `tmp/`, which is not a folder.
fn write_debris(root: &Path, seed: u64) -> io::Result<()> {
    let partial = root
        .join("tmp")
        .join(format!("{}.S{seed}Ipartial.sample", RECENT.0));
    write_file(
        &partial,
        b"Received: from mx.example.net\r\nFrom: cut short",
        RECENT.0,
    )?;
    fs::create_dir_all(root.join(".Lost+Found").join("tmp"))
}

/// Writes a new file with a fixed modification time (Unix seconds): for a message, its
/// internal date, as Maildir readers take it.
fn write_file(path: &Path, bytes: &[u8], mtime: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
}

/// Which folder each message goes to: the special messages to INBOX, then one message per
/// folder so that every folder has mail, then the rest by weight.
fn assign_folders(spec: &SampleSpec) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(mix(spec.seed, u64::MAX));
    let total: u32 = FOLDERS.iter().map(|p| p.weight).sum();
    (0..spec.messages)
        .map(|index| {
            if index <= DUPLICATE {
                return 0;
            }
            if index - DUPLICATE < FOLDERS.len() {
                return index - DUPLICATE;
            }
            let mut pick = rng.u32(0..total);
            for (folder, plan) in FOLDERS.iter().enumerate() {
                if pick < plan.weight {
                    return folder;
                }
                pick -= plan.weight;
            }
            0
        })
        .collect()
}

/// A seed for one message: splitmix64 of the sample seed and the index, so that neighbouring
/// messages get unrelated streams.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The flags of a message, by folder; `None` for unseen mail still in `new/`.
fn sample_flags(rng: &mut fastrand::Rng, kind: Kind) -> Option<Flags> {
    let mut flags = Flags::new();
    let percent = |rng: &mut fastrand::Rng, p: u32| rng.u32(0..100) < p;
    match kind {
        Kind::Inbox => {
            if percent(rng, 12) {
                return None;
            }
            flags.set(SystemFlag::Seen, !percent(rng, 12));
            flags.set(
                SystemFlag::Answered,
                flags.has(SystemFlag::Seen) && percent(rng, 12),
            );
            flags.set(SystemFlag::Flagged, percent(rng, 6));
            if percent(rng, 4) {
                flags.add_keyword("$Forwarded");
            }
            if percent(rng, 2) {
                flags.add_keyword("$Junk");
            }
            if percent(rng, 8) {
                flags.add_keyword("Work");
            }
        }
        Kind::Sent => flags.set(SystemFlag::Seen, true),
        Kind::Drafts => {
            flags.set(SystemFlag::Draft, true);
            flags.set(SystemFlag::Seen, percent(rng, 80));
            flags.set(SystemFlag::Flagged, percent(rng, 15));
        }
        Kind::Trash => {
            flags.set(SystemFlag::Seen, percent(rng, 90));
            flags.set(SystemFlag::Deleted, percent(rng, 20));
        }
        Kind::Archive => {
            flags.set(SystemFlag::Seen, percent(rng, 97));
            flags.set(SystemFlag::Answered, percent(rng, 20));
            flags.set(SystemFlag::Flagged, percent(rng, 3));
            if percent(rng, 5) {
                flags.add_keyword("$Forwarded");
            }
        }
        Kind::Work => {
            flags.set(SystemFlag::Seen, percent(rng, 85));
            flags.set(SystemFlag::Flagged, percent(rng, 10));
            flags.set(SystemFlag::Answered, percent(rng, 15));
            if percent(rng, 40) {
                flags.add_keyword("Work");
            }
        }
        Kind::Newsletters => {
            flags.set(SystemFlag::Seen, percent(rng, 60));
            if percent(rng, 10) {
                flags.add_keyword("$Junk");
            }
        }
    }
    Some(flags)
}

/// The mailbox owner.
const ME: (&str, &str) = ("Alex Sample", "alex@example.org");

const PEOPLE: [(&str, &str); 12] = [
    ("Jürgen Müller", "juergen.mueller@example.de"),
    ("Анна Петрова", "anna.petrova@example.net"),
    ("山田 太郎", "taro.yamada@example.com"),
    ("Maria García", "maria.garcia@example.com"),
    ("Chris Lee", "chris@example.net"),
    ("Priya Natarajan", "priya.n@example.org"),
    ("Søren Ærø", "soren@example.com"),
    ("Olivia Brown", "olivia.brown@example.com"),
    ("Zoë Martin", "zoe.martin@example.net"),
    ("Ivan Sokolov", "ivan.sokolov@example.net"),
    ("Team Calendar", "calendar@example.org"),
    ("Sam O'Neil", "sam.oneil@example.com"),
];

const SENDERS: [(&str, &str); 4] = [
    ("The Weekly Digest", "digest@news.example.com"),
    ("Shop Example", "offers@shop.example.net"),
    ("Rust Updates", "updates@lists.example.org"),
    ("Städtische Bibliothek", "newsletter@library.example.de"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    De,
    Ru,
    Ja,
    Emoji,
}

const SUBJECTS_EN: [&str; 14] = [
    "Quarterly report",
    "Lunch on Thursday?",
    "Meeting notes from today",
    "Your order has shipped",
    "Slides for the review",
    "Travel plans for March",
    "Build failed on main",
    "Question about the invoice",
    "Welcome to the team",
    "Updated contract draft",
    "Photos from the weekend",
    "Reminder: dentist appointment",
    "Budget for next year",
    "Can you take a look at this?",
];
const SUBJECTS_DE: [&str; 5] = [
    "Besprechung über die Änderungen",
    "Grüße aus München",
    "Rückfrage zur Rechnung",
    "Termin für nächste Woche",
    "Entwürfe für die Präsentation",
];
const SUBJECTS_RU: [&str; 5] = [
    "Отчёт за квартал",
    "Встреча в пятницу",
    "Привет из Москвы",
    "Вопрос по договору",
    "План работ на неделю",
];
const SUBJECTS_JA: [&str; 4] = [
    "会議の議事録",
    "来週の予定について",
    "見積書の送付",
    "お疲れさまです",
];
const SUBJECTS_EMOJI: [&str; 4] = [
    "🎉 Party on Friday",
    "Weekend plans ☀️",
    "🚀 Launch checklist",
    "Coffee? ☕",
];

const SENTENCES_EN: [&str; 16] = [
    "Thanks for sending this over so quickly.",
    "I had a look at the numbers and they mostly add up, apart from the travel costs.",
    "Could we move the call to Thursday afternoon instead?",
    "The new version is deployed to staging and the first results look good.",
    "Let me know if anything is unclear or if you need more details from my side.",
    "We still need a decision on the supplier before the end of the month.",
    "I attached the latest draft; the changes are marked in the margin.",
    "The meeting room on the third floor is booked from ten to eleven.",
    "Please remember to submit your expenses by Friday.",
    "According to the logs the failure started after the dependency update.",
    "I think the second option is simpler to maintain in the long run.",
    "Our customers have asked for this feature several times this year.",
    "The train was delayed again, so I will join the first session remotely.",
    "Feel free to forward this to anyone on the team who might be interested.",
    "We will publish the summary on the wiki once everyone has reviewed it.",
    "Happy to help, just send me the file when you have it.",
];
const SENTENCES_DE: [&str; 8] = [
    "Vielen Dank für die schnelle Rückmeldung.",
    "Können wir den Termin auf nächste Woche verschieben?",
    "Die Änderungen an der Präsentation sind eingearbeitet.",
    "Im Anhang findest du die überarbeitete Fassung.",
    "Bitte prüfe noch einmal die Zahlen für das dritte Quartal.",
    "Wir treffen uns um zehn Uhr im großen Besprechungsraum.",
    "Die Rechnung ist leider noch nicht eingegangen.",
    "Schöne Grüße aus dem Büro in Köln.",
];
const SENTENCES_RU: [&str; 8] = [
    "Спасибо за быстрый ответ.",
    "Можем ли мы перенести встречу на четверг?",
    "Во вложении обновлённая версия документа.",
    "Пожалуйста, проверьте цифры за третий квартал.",
    "Счёт пока не поступил, уточните, пожалуйста.",
    "Встречаемся в десять утра в большой переговорной.",
    "Все изменения уже внесены в презентацию.",
    "С уважением и наилучшими пожеланиями.",
];
const SENTENCES_JA: [&str; 8] = [
    "いつもお世話になっております。",
    "資料を添付いたしましたので、ご確認ください。",
    "来週の会議は木曜日の午後に変更になりました。",
    "ご不明な点がございましたら、お気軽にお問い合わせください。",
    "見積書の金額について確認させてください。",
    "本日の議事録を共有いたします。",
    "引き続きよろしくお願いいたします。",
    "出張の日程が決まりましたらご連絡します。",
];
const EMOJI: [&str; 8] = ["🎉", "☀️", "🚀", "☕", "👍", "😀", "📎", "✅"];

/// Builds one message.
struct Generator<'a> {
    rng: &'a mut fastrand::Rng,
    seed: u64,
    index: usize,
    date: u64,
}

impl Generator<'_> {
    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.rng.usize(0..items.len())]
    }

    fn percent(&mut self, p: u32) -> bool {
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

    fn message(mut self, kind: Kind, without_message_id: bool) -> Vec<u8> {
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

    /// Paragraphs (one line each) of about `budget` bytes in all.
    fn paragraphs(&mut self, lang: Lang, budget: usize) -> Vec<String> {
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
    fn plain_text(&mut self, paragraphs: &[String], reply: bool) -> String {
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
    fn text_entity(&mut self, subtype: &str, text: &str) -> Entity {
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
    fn attachment(&mut self, size: usize) -> Entity {
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

    fn multipart(&mut self, subtype: &str, parts: &[Entity]) -> Entity {
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
struct Entity {
    headers: String,
    body: String,
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

/// The paragraphs as HTML; a newsletter gets the table-and-inline-style layout they use.
fn html(paragraphs: &[String], newsletter: bool) -> String {
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
fn wrap(text: &str, width: usize, out: &mut String) {
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

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Base64 in lines of 76 characters, as MIME bodies carry it.
fn base64_lines(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 57 * 2 + 4);
    for line in bytes.chunks(57) {
        base64(line, &mut out);
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of CRLF-separated text, lines at most 76 characters.
fn quoted_printable(bytes: &[u8]) -> String {
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
fn encoded_words_b(text: &str) -> String {
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
fn encoded_words_q(text: &str) -> String {
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
fn percent_encode(text: &str) -> String {
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
fn rfc5322_date(secs: u64, zone_minutes: i64) -> String {
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

#[cfg(test)]
mod tests;
