//! The tables the messages are made of: the owner, people and newsletter senders, and
//! subjects and sentences in several languages and scripts.

/// The mailbox owner.
pub(crate) const ME: (&str, &str) = ("Alex Sample", "alex@example.org");

pub(crate) const PEOPLE: [(&str, &str); 12] = [
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

pub(crate) const SENDERS: [(&str, &str); 4] = [
    ("The Weekly Digest", "digest@news.example.com"),
    ("Shop Example", "offers@shop.example.net"),
    ("Rust Updates", "updates@lists.example.org"),
    ("Städtische Bibliothek", "newsletter@library.example.de"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    De,
    Ru,
    Ja,
    Emoji,
}

pub(crate) const SUBJECTS_EN: [&str; 14] = [
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
pub(crate) const SUBJECTS_DE: [&str; 5] = [
    "Besprechung über die Änderungen",
    "Grüße aus München",
    "Rückfrage zur Rechnung",
    "Termin für nächste Woche",
    "Entwürfe für die Präsentation",
];
pub(crate) const SUBJECTS_RU: [&str; 5] = [
    "Отчёт за квартал",
    "Встреча в пятницу",
    "Привет из Москвы",
    "Вопрос по договору",
    "План работ на неделю",
];
pub(crate) const SUBJECTS_JA: [&str; 4] = [
    "会議の議事録",
    "来週の予定について",
    "見積書の送付",
    "お疲れさまです",
];
pub(crate) const SUBJECTS_EMOJI: [&str; 4] = [
    "🎉 Party on Friday",
    "Weekend plans ☀️",
    "🚀 Launch checklist",
    "Coffee? ☕",
];

pub(crate) const SENTENCES_EN: [&str; 16] = [
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
pub(crate) const SENTENCES_DE: [&str; 8] = [
    "Vielen Dank für die schnelle Rückmeldung.",
    "Können wir den Termin auf nächste Woche verschieben?",
    "Die Änderungen an der Präsentation sind eingearbeitet.",
    "Im Anhang findest du die überarbeitete Fassung.",
    "Bitte prüfe noch einmal die Zahlen für das dritte Quartal.",
    "Wir treffen uns um zehn Uhr im großen Besprechungsraum.",
    "Die Rechnung ist leider noch nicht eingegangen.",
    "Schöne Grüße aus dem Büro in Köln.",
];
pub(crate) const SENTENCES_RU: [&str; 8] = [
    "Спасибо за быстрый ответ.",
    "Можем ли мы перенести встречу на четверг?",
    "Во вложении обновлённая версия документа.",
    "Пожалуйста, проверьте цифры за третий квартал.",
    "Счёт пока не поступил, уточните, пожалуйста.",
    "Встречаемся в десять утра в большой переговорной.",
    "Все изменения уже внесены в презентацию.",
    "С уважением и наилучшими пожеланиями.",
];
pub(crate) const SENTENCES_JA: [&str; 8] = [
    "いつもお世話になっております。",
    "資料を添付いたしましたので、ご確認ください。",
    "来週の会議は木曜日の午後に変更になりました。",
    "ご不明な点がございましたら、お気軽にお問い合わせください。",
    "見積書の金額について確認させてください。",
    "本日の議事録を共有いたします。",
    "引き続きよろしくお願いいたします。",
    "出張の日程が決まりましたらご連絡します。",
];
pub(crate) const EMOJI: [&str; 8] = ["🎉", "☀️", "🚀", "☕", "👍", "😀", "📎", "✅"];
