//! The no-loss property: for generated replies — new text made of a person's lines, including
//! lines that look like a header, an attribution or a sign-off, followed by any shape of
//! history a client writes — every line of the new text is in what is filed.

use proptest::prelude::*;

use super::from_body;

/// Lines a person writes, in several languages, many of them close to a client's shapes: a
/// date and a time, a name and a reported-speech verb, `Label: value`, a phone or an app, a
/// first word that opens attributions ("On", "Le", "Am"), a link. Every one must be kept.
const PERSON: &[&str] = &[
    "Thank you, I can come on Tuesday at 10:30.",
    "Thursday at 10:30 works for me",
    "On Monday I can come at 9.",
    "On Monday I can come at 9",
    "On 20.10.2017 at 17:50 Dr Lee wrote that I should rest",
    "The doctor said I should rest until Friday.",
    "Name: Jane Doe",
    "Email: jane@example.net",
    "Appointment: 24.10.2017 10:30",
    "Date of birth: 02.03.1950",
    "Contact: Jane Doe <jane@example.net>",
    "Phone: +44 7700 900123",
    "My iPhone is broken, please call the landline.",
    "I use Gmail on Android",
    "From my side the dose is fine.",
    "Sent the form yesterday by post.",
    "Jane",
    "Jane Doe",
    "Thanks,",
    "Best regards",
    "See you then!",
    "Note: I am allergic to penicillin",
    "Re: the dose, I take 5 mg",
    "1. Yes  2. No  3. Tuesday",
    "- take the pills twice a day",
    "https://example.com/my-results",
    "Please write to jane@example.net from now on.",
    "Danke, Herr Doktor. Ich komme am Dienstag um 10 Uhr.",
    "Am Freitag um 17:50 schrieb mir die Apotheke, dass alles bereit ist.",
    "Donnerstag um 10:30 passt mir",
    "Merci, docteur. Je viendrai mardi à 10 h.",
    "Le 20 oct. à 17:50 j'ai pris le médicament",
    "Jeudi à 10h30 me convient",
    "ありがとうございます。火曜日の10時に伺います。",
    "木曜日の10:30で大丈夫です",
    "谢谢医生，我周二上午10点过来。",
    "شكرًا يا دكتور. سآتي يوم الثلاثاء الساعة 10.",
    "תודה, דוקטור. אגיע ביום שלישי ב-10.",
    "Спасибо, доктор. Приду во вторник в 10:00.",
    "20.10.2017 в 17:50 доктор написал, что нужно отдыхать",
    "Terima kasih, Dokter. Saya akan datang hari Selasa pukul 10.",
    "Kamis pukul 10.30 cocok untuk saya",
];

/// Histories as clients write them below a reply, after `sep` (the lines between).
const HISTORY: &[&[&str]] = &[
    &[
        "On Fri, 20 Oct 2017 at 17:50, Dr Lee <lee@clinic.example> wrote:",
        "",
        "> Your results are ready.",
        "> Dr Lee",
    ],
    &[
        "On Fri, 20 Oct 2017 at 17:50, Dr Lee <lee@clinic.example>",
        "wrote:",
        "> Your results are ready.",
    ],
    &[
        "On Fri, Oct 20, 2017 at 5:50 PM,",
        "Dr Lee <lee@clinic.example> wrote:",
        "> Your results are ready.",
    ],
    &[
        "Am Fr., 20. Okt. 2017 um 17:50 Uhr schrieb Dr Lee <lee@clinic.example>",
        "",
        "> Ihre Ergebnisse sind da.",
    ],
    &[
        "Dr Lee <lee@clinic.example> schrieb am Fr., 20. Okt. 2017",
        "um 17:50",
        "> Ihre Ergebnisse sind da.",
    ],
    &["Dr Lee wrote:", "> Your results are ready."],
    &["كتب Dr Lee:", "> نتائجك جاهزة."],
    &[
        "________________________________",
        "From: Dr Lee <lee@clinic.example>",
        "Sent: Friday, October 20, 2017 5:50 PM",
        "To: Jane Doe <jane@example.net>",
        "Subject: RE: Results",
        "",
        "Your results are ready.",
    ],
    &[
        "________________________________From: Dr Lee <lee@clinic.example>",
        "Sent: Friday, October 20, 2017 5:50 PM",
        "To: Jane Doe <jane@example.net>",
        "Subject: RE: Results",
        "",
        "Your results are ready.",
    ],
    &[
        "**Dari:** Dr Lee <lee@clinic.example>",
        "**Dikirim:** Jumat, 20 Oktober 2017 17.50",
        "**Kepada:** Siti <jane@example.net>",
        "**Subjek:** Hasil",
        "",
        "Hasil pemeriksaan Anda sudah keluar.",
    ],
    &[
        "From: Dr Lee <lee@clinic.example> Sent: Friday, October 20, 2017 5:50 PM To: Jane <jane@example.net> Subject: Results",
        "",
        "Your results are ready.",
    ],
    &[
        "-----Original Message-----",
        "From: Dr Lee [mailto:lee@clinic.example]",
        "Sent: Friday, October 20, 2017 5:50 PM",
        "Subject: Results",
        "",
        "Your results are ready.",
    ],
    &[
        "Sent with BlueMail for Android",
        "",
        "Your results are ready.",
    ],
    &["Sent from my iPhone"],
    &["-- ", "Jane Doe", "+44 7700 900123"],
    &["> Your results are ready.", "> Dr Lee"],
    &[],
];

/// The first line of `new` that extracting `body` does not file, described with the body and
/// what was filed; `None` when every line is kept.
fn lost(new: &[String], body: &str) -> Option<String> {
    let got = from_body(body).text;
    let kept: Vec<&str> = got.lines().map(str::trim).collect();
    new.iter()
        .find(|l| !l.trim().is_empty() && !kept.contains(&l.trim()))
        .map(|line| format!("lost {line:?}\n--- body\n{body}\n--- filed\n{got}"))
}

/// The check itself can fail: a reply that is nothing but a quote files nothing.
#[test]
fn a_lost_line_is_reported() {
    let lost = lost(&["I typed this".to_owned()], "> I typed this\n");
    assert!(lost.is_some_and(|l| l.starts_with("lost \"I typed this\"")));
}

fn reply() -> impl Strategy<Value = (Vec<String>, usize, &'static str)> {
    (
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(PERSON).prop_map(str::to_owned),
                1 => Just(String::new()),
            ],
            1..7,
        ),
        0..HISTORY.len(),
        prop::sample::select(&["\n", "\n\n", "\n\n\n"][..]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_line_of_the_new_text_is_kept((new, history, sep) in reply()) {
        let typed = new.join("\n");
        prop_assume!(!typed.trim().is_empty());
        let history = HISTORY[history];
        // A client separates a header block from the reply by at least a blank line; only
        // attributions follow the last line directly.
        let sep = if history.first().is_some_and(|l| l.contains("From:") || l.starts_with("**")) {
            "\n\n"
        } else {
            sep
        };
        let body = format!("{}{sep}{}\n", typed.trim_end(), history.join("\n"));
        let lost = lost(&new, &body);
        prop_assert!(lost.is_none(), "{}", lost.unwrap_or_default());
    }
}

/// Quoted histories a bottom-posted reply starts with.
const QUOTED_ON_TOP: &[&[&str]] = &[
    &[
        "On Fri, 20 Oct 2017 at 17:50, Dr Lee <lee@clinic.example> wrote:",
        "> Your results are ready.",
        "> Dr Lee",
    ],
    &["Dr Lee wrote:", "> Your results are ready."],
    &["> Your results are ready."],
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The same for a reply written below the quoted message.
    #[test]
    fn every_line_below_the_quote_is_kept(
        (new, _, _) in reply(),
        top in 0..QUOTED_ON_TOP.len(),
    ) {
        let typed = new.join("\n");
        prop_assume!(!typed.trim().is_empty());
        let body = format!("{}\n\n{}\n", QUOTED_ON_TOP[top].join("\n"), typed.trim());
        let lost = lost(&new, &body);
        prop_assert!(lost.is_none(), "{}", lost.unwrap_or_default());
    }
}
