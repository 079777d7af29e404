//! The words mail clients write around a reply, language by language: the labels of a quoted
//! header block, the verb of an attribution line, the "original message" and "forwarded
//! message" separators, and the sign-off a phone or an app appends.
//!
//! This is data, not code: the patterns in [`super::patterns`] are built from it, so a
//! language is added by adding an entry here (and fixtures under `fixtures/reply-text/`).
//! Matching is case-insensitive; a label may be followed by spaces before its colon (French
//! typography: "De :", "Objet :"), and any word may be wrapped in `*…*` or `_…_` (clients that
//! render bold headers as text).
//!
//! Where the words come from, for every language:
//! - **Outlook** (desktop, web, mobile): the labels of the header block it writes above the
//!   quoted message (`From:`/`Sent:`/`To:`/`Cc:`/`Subject:`, the web version's `Date:`), and
//!   its "Get Outlook for iOS/Android" footer, as each localised Outlook writes them.
//! - **Gmail**: its attribution line, "On <date>, <name> <<address>> wrote:" as each interface
//!   language words it (some, such as Russian and Hebrew, write no verb at all: date, address,
//!   colon), and its "Forwarded message" separator.
//! - **Apple Mail** (macOS, iOS): its attribution ("On <date>, at <time>, <name> wrote:"), its
//!   "Begin forwarded message:" and its "Sent from my iPhone" in every language iOS ships in.
//! - **Thunderbird**: `mailnews.reply_header_*` and the `-------- Original Message --------`
//!   and `-------- Forwarded Message --------` separators of its language packs.
//! - **Yahoo, Proton, Samsung Email, K-9/FairEmail, Yandex, Mail.ru, Orange**: the separators
//!   and header labels they write where they differ from the above ("Message du …" and "Copie à
//!   :" of Orange's French webmail, "-----Ursprüngliche Nachricht-----" of older Outlooks).
//!
//! Date formats are not listed: an attribution is recognised by its shape (a date or an
//! address, then the verb at the end or a colon), and a header block by its labels; see
//! [`super::patterns`]. The words below are matched only in those shapes, never alone, so a
//! person who writes "De : notre côté…" or "Fra: …" in a sentence keeps it.

mod devices;

pub use devices::*;

/// One language's reply vocabulary.
pub struct Language {
    /// ISO 639-1 code.
    pub code: &'static str,
    /// The label of the sender line of a header block ("From").
    pub from: &'static [&'static str],
    /// Labels of the other lines: when it was sent, to whom, copy, subject.
    pub sent: &'static [&'static str],
    pub to: &'static [&'static str],
    pub cc: &'static [&'static str],
    pub subject: &'static [&'static str],
    /// The verb that ends an attribution line ("wrote"), in every form clients use.
    pub wrote: &'static [&'static str],
    /// "Original message" separators (between dashes).
    pub original: &'static [&'static str],
    /// "Forwarded message" separators: a forward the person chose to send, kept whole.
    pub forwarded: &'static [&'static str],
    /// How a phone or an app's sign-off begins ("Sent from my", "Get Outlook for"). The rest
    /// of the line must name a device or an app ([`DEVICES`]) within a few words, so that
    /// "Envoyé de Paris hier" stays the person's sentence.
    pub sent_from: &'static [&'static str],
    /// How such a sign-off ends when the device comes first ("iPhoneから送信", "iPhone'umdan
    /// gönderildi").
    pub sent_from_suffix: &'static [&'static str],
    /// How the clients above write a date in this language (Gmail's attribution, Outlook's
    /// Sent line, Apple Mail's): not matched as such — an attribution is recognised by its
    /// shape, a date or a time anywhere in it — but each must count as one, which a test
    /// checks.
    pub dates: &'static [&'static str],
}

/// The 25 languages with the most email users, English first.
pub const LANGUAGES: &[Language] = &[
    Language {
        code: "en",
        from: &["from"],
        sent: &["sent", "date"],
        to: &["to"],
        cc: &["cc", "bcc"],
        subject: &["subject", "reply-to"],
        wrote: &["wrote", "writes", "said"],
        original: &["original message", "reply message"],
        forwarded: &["forwarded message", "begin forwarded message"],
        sent_from: &[
            "sent from",
            "sent with",
            "sent via",
            "get outlook for",
            "get outlook for ios",
            "get outlook for android",
        ],
        sent_from_suffix: &[],
        dates: &[
            "Fri, Oct 20, 2017 at 5:50 PM",
            "20 Oct 2017, at 17:50",
            "Friday, October 20, 2017 5:50 PM",
            "10/20/2017 5:50 PM",
        ],
    },
    Language {
        code: "es",
        from: &["de"],
        sent: &["enviado", "enviado el", "fecha"],
        to: &["para"],
        cc: &["cc", "cco"],
        subject: &["asunto"],
        wrote: &["escribió"],
        original: &["mensaje original"],
        forwarded: &["mensaje reenviado", "inicio del mensaje reenviado"],
        sent_from: &[
            "enviado desde mi",
            "enviado desde",
            "enviado con",
            "obtener outlook para",
        ],
        sent_from_suffix: &[],
        dates: &[
            "vie, 20 oct 2017 a las 17:50",
            "viernes, 20 de octubre de 2017 17:50",
        ],
    },
    Language {
        code: "pt",
        from: &["de"],
        sent: &["enviado", "enviada em", "enviado em", "data"],
        to: &["para"],
        cc: &["cc", "cco"],
        subject: &["assunto"],
        wrote: &["escreveu"],
        original: &["mensagem original"],
        forwarded: &["mensagem encaminhada", "início da mensagem reencaminhada"],
        sent_from: &[
            "enviado do meu",
            "enviado de meu",
            "enviado do",
            "enviado a partir do",
            "obter o outlook para",
            "obtenha o outlook para",
        ],
        sent_from_suffix: &[],
        dates: &[
            "sex., 20 de out. de 2017 às 17:50",
            "20 de out de 2017, à(s) 17:50",
        ],
    },
    Language {
        code: "fr",
        from: &["de", "expéditeur"],
        sent: &["envoyé", "envoyé le", "date", "date d'envoi", "message du"],
        to: &["à", "a", "pour", "destinataire"],
        cc: &["cc", "copie à", "cci"],
        subject: &["objet", "sujet"],
        wrote: &["a écrit"],
        original: &["message d'origine", "message original"],
        forwarded: &[
            "message transféré",
            "début du message réexpédié",
            "début du message transféré",
        ],
        sent_from: &[
            "envoyé de mon",
            "envoyé depuis mon",
            "envoyé à partir de",
            "envoyé de",
            "envoyé depuis",
            "envoyé avec",
            "envoyé via",
            "obtenir outlook pour",
            "télécharger outlook pour",
        ],
        sent_from_suffix: &[],
        dates: &[
            "ven. 20 oct. 2017 à 17:50",
            "vendredi 20 octobre 2017 17:50",
            "20/10/17 17:50",
        ],
    },
    Language {
        code: "de",
        from: &["von", "absender"],
        sent: &["gesendet", "datum"],
        to: &["an", "empfänger"],
        cc: &["cc", "kopie", "kopie (cc)"],
        subject: &["betreff"],
        wrote: &["schrieb"],
        original: &[
            "ursprüngliche nachricht",
            "original-nachricht",
            "originalnachricht",
            "antwort nachricht",
        ],
        forwarded: &[
            "weitergeleitete nachricht",
            "anfang der weitergeleiteten nachricht",
        ],
        sent_from: &[
            "von meinem",
            "gesendet von meinem",
            "gesendet von",
            "gesendet mit",
            "diese nachricht wurde von meinem",
            "holen sie sich outlook für",
            "outlook für",
        ],
        sent_from_suffix: &[],
        dates: &[
            "Fr., 20. Okt. 2017 um 17:50 Uhr",
            "20.10.2017 um 17:50",
            "Freitag, 20. Oktober 2017 17:50",
        ],
    },
    Language {
        code: "it",
        from: &["da", "mittente"],
        sent: &["inviato", "data"],
        to: &["a", "destinatario"],
        cc: &["cc", "ccn"],
        subject: &["oggetto"],
        wrote: &["ha scritto", "scrive"],
        original: &["messaggio originale"],
        forwarded: &["messaggio inoltrato", "inizio messaggio inoltrato"],
        sent_from: &[
            "inviato da",
            "inviato dal mio",
            "inviato con",
            "scarica outlook per",
            "ottieni outlook per",
        ],
        sent_from_suffix: &[],
        dates: &[
            "ven 20 ott 2017 alle ore 17:50",
            "venerdì 20 ottobre 2017 17:50",
        ],
    },
    Language {
        code: "nl",
        from: &["van", "afzender"],
        sent: &["verzonden", "datum"],
        to: &["aan"],
        cc: &["cc", "bcc"],
        subject: &["onderwerp"],
        wrote: &["schreef", "het volgende geschreven", "geschreven"],
        original: &["oorspronkelijk bericht", "origineel bericht"],
        forwarded: &["doorgestuurd bericht", "begin doorgestuurd bericht"],
        sent_from: &[
            "verzonden vanaf mijn",
            "verzonden vanaf",
            "verzonden met",
            "verstuurd vanaf mijn",
            "verstuurd vanaf",
            "outlook voor",
        ],
        sent_from_suffix: &[],
        dates: &["vr 20 okt. 2017 om 17:50", "vrijdag 20 oktober 2017 17:50"],
    },
    Language {
        code: "da",
        from: &["fra"],
        sent: &["sendt", "dato"],
        to: &["til"],
        cc: &["cc", "kopi"],
        subject: &["emne"],
        wrote: &["skrev"],
        original: &[
            "oprindelig meddelelse",
            "oprindelig besked",
            "original meddelelse",
        ],
        forwarded: &[
            "videresendt meddelelse",
            "videresendt besked",
            "start på videresendt besked",
        ],
        sent_from: &["sendt fra min", "sendt fra", "hent outlook til"],
        sent_from_suffix: &[],
        dates: &["fre. 20. okt. 2017 kl. 17.50", "20. oktober 2017 17:50"],
    },
    Language {
        code: "no",
        from: &["fra"],
        sent: &["sendt", "dato"],
        to: &["til"],
        cc: &["kopi", "cc"],
        subject: &["emne"],
        wrote: &["skrev"],
        original: &["opprinnelig melding", "original melding"],
        forwarded: &[
            "videresendt melding",
            "videresendt e-post",
            "begynnelse på videresendt e-post",
        ],
        sent_from: &["sendt fra min", "sendt fra", "få outlook for"],
        sent_from_suffix: &[],
        dates: &[
            "fre. 20. okt. 2017 kl. 17:50",
            "fredag 20. oktober 2017 17:50",
        ],
    },
    Language {
        code: "sv",
        from: &["från"],
        sent: &["skickat", "skickades", "datum"],
        to: &["till"],
        cc: &["kopia", "cc"],
        subject: &["ämne"],
        wrote: &["skrev"],
        original: &["ursprungligt meddelande", "originalmeddelande"],
        forwarded: &[
            "vidarebefordrat meddelande",
            "början på vidarebefordrat meddelande",
        ],
        sent_from: &["skickat från min", "skickat från", "hämta outlook för"],
        sent_from_suffix: &[],
        dates: &[
            "fre 20 okt. 2017 kl 17:50",
            "den 20 oktober 2017 17:50",
            "2017-10-20 kl. 17:50",
        ],
    },
    Language {
        code: "fi",
        from: &["lähettäjä"],
        sent: &["lähetetty", "päivämäärä", "päiväys"],
        to: &["vastaanottaja"],
        cc: &["kopio"],
        subject: &["aihe"],
        wrote: &["kirjoitti"],
        original: &["alkuperäinen viesti"],
        forwarded: &["välitetty viesti", "edelleenlähetetty viesti"],
        sent_from: &["lähetetty", "hanki outlook for", "hanki outlook"],
        sent_from_suffix: &[],
        dates: &["pe 20. lokak. 2017 klo 17.50", "20.10.2017 kello 17.50"],
    },
    Language {
        code: "pl",
        from: &["od", "nadawca"],
        sent: &["wysłano", "wysłane", "data"],
        to: &["do", "adresat"],
        cc: &["dw", "kopia"],
        subject: &["temat"],
        wrote: &[
            "napisał",
            "napisała",
            "napisał(a)",
            "napisana przez",
            "pisze",
        ],
        original: &["wiadomość oryginalna", "oryginalna wiadomość"],
        forwarded: &[
            "wiadomość przekazana",
            "przekazana wiadomość",
            "początek przekazywanej wiadomości",
        ],
        sent_from: &[
            "wysłane z mojego",
            "wysłane z",
            "wysłano z mojego",
            "wysłano z",
            "pobierz program outlook dla",
            "pobierz outlook dla",
        ],
        sent_from_suffix: &[],
        dates: &["pt., 20 paź 2017 o 17:50", "20.10.2017, o godz. 17:50"],
    },
    Language {
        code: "cs",
        from: &["od", "odesílatel"],
        sent: &["odesláno", "datum"],
        to: &["komu", "příjemce"],
        cc: &["kopie"],
        subject: &["předmět"],
        wrote: &["napsal", "napsala", "napsal(a)"],
        original: &["původní zpráva", "původní e-mail"],
        forwarded: &["přeposlaná zpráva", "začátek přeposílané zprávy"],
        sent_from: &[
            "odesláno z mého",
            "odesláno z",
            "odesláno ze",
            "stáhnout outlook pro",
        ],
        sent_from_suffix: &[],
        dates: &["pá 20. 10. 2017 v 17:50", "pátek 20. října 2017 17:50"],
    },
    Language {
        code: "hu",
        from: &["feladó"],
        sent: &["elküldve", "küldve", "dátum"],
        to: &["címzett"],
        cc: &["másolatot kap", "másolat"],
        subject: &["tárgy"],
        wrote: &["írta", "ezt írta"],
        original: &["eredeti üzenet"],
        forwarded: &["továbbított üzenet", "továbbított levél kezdete"],
        sent_from: &[
            "elküldve az",
            "elküldve a",
            "elküldve",
            "küldve",
            "az outlook for",
        ],
        sent_from_suffix: &[],
        dates: &["2017. okt. 20., P, 17:50", "2017. 10. 20. 17:50"],
    },
    Language {
        code: "ro",
        from: &["de la", "expeditor"],
        sent: &["trimis", "data"],
        to: &["către", "catre", "destinatar"],
        cc: &["cc"],
        subject: &["subiect"],
        wrote: &["a scris"],
        original: &["mesaj original", "mesajul original"],
        forwarded: &[
            "mesaj redirecționat",
            "mesaj redirectionat",
            "începutul mesajului redirecționat",
        ],
        sent_from: &[
            "trimis de pe",
            "trimis din",
            "trimis cu",
            "descărcați outlook pentru",
        ],
        sent_from_suffix: &[],
        dates: &[
            "vin., 20 oct. 2017 la 17:50",
            "vineri, 20 octombrie 2017 17:50",
        ],
    },
    Language {
        code: "tr",
        from: &["kimden", "gönderen"],
        sent: &["gönderildi", "gönderilme tarihi", "tarih"],
        to: &["kime", "alıcı"],
        cc: &["bilgi", "cc"],
        subject: &["konu"],
        wrote: &["yazdı", "şunu yazdı", "şunları yazdı"],
        // "İ" is written as it is: it has no lower-case form that case-insensitive matching
        // would find it by.
        original: &["özgün ileti", "özgün İleti", "orijinal mesaj", "asıl ileti"],
        forwarded: &["iletilen mesaj", "iletilen ileti", "yönlendirilmiş ileti"],
        sent_from: &["ios için outlook", "android için outlook"],
        sent_from_suffix: &["gönderildi", "alın"],
        dates: &["20 Eki 2017 Cum, 17:50", "20 Ekim 2017 Cuma 17:50"],
    },
    Language {
        code: "el",
        from: &["από", "αποστολέας"],
        sent: &["στάλθηκε", "εστάλη", "ημερομηνία"],
        to: &["προς"],
        cc: &["κοιν", "κοιν.", "κοινοποίηση"],
        subject: &["θέμα"],
        wrote: &["έγραψε"],
        original: &["αρχικό μήνυμα"],
        forwarded: &["προωθημένο μήνυμα", "αρχή προωθημένου μηνύματος"],
        sent_from: &["στάλθηκε από", "εστάλη από", "λήψη του outlook για"],
        sent_from_suffix: &[],
        dates: &[
            "Παρ, 20 Οκτ 2017 στις 5:50 μ.μ.",
            "Παρασκευή, 20 Οκτωβρίου 2017 5:50 μμ",
        ],
    },
    Language {
        code: "ru",
        from: &["от", "отправитель"],
        sent: &["отправлено", "дата"],
        to: &["кому"],
        cc: &["копия"],
        subject: &["тема"],
        wrote: &["написал", "написала", "написал(а)", "пишет"],
        original: &["исходное сообщение", "оригинальное сообщение"],
        forwarded: &[
            "пересылаемое сообщение",
            "пересланное сообщение",
            "начало переадресованного сообщения",
        ],
        sent_from: &["отправлено с", "отправлено из", "получить outlook для"],
        sent_from_suffix: &[],
        dates: &["пт, 20 окт. 2017 г. в 17:50", "20.10.2017 17:50"],
    },
    Language {
        code: "uk",
        from: &["від"],
        sent: &["надіслано", "дата"],
        to: &["кому"],
        cc: &["копія"],
        subject: &["тема"],
        wrote: &["пише", "написав", "написала", "написав(ла)"],
        original: &[
            "вихідне повідомлення",
            "оригінальне повідомлення",
            "початкове повідомлення",
        ],
        forwarded: &["переслане повідомлення", "початок пересланого повідомлення"],
        sent_from: &["надіслано з", "надіслано із", "отримати outlook для"],
        sent_from_suffix: &[],
        dates: &["пт, 20 жовт. 2017 о 17:50", "20 жовтня 2017 р. 17:50"],
    },
    Language {
        code: "ar",
        from: &["من"],
        sent: &["تاريخ الإرسال", "أُرسل", "أرسل", "التاريخ"],
        to: &["إلى"],
        cc: &["نسخة"],
        subject: &["الموضوع"],
        wrote: &["كتب", "كتبت"],
        original: &["الرسالة الأصلية", "الرسالة الأصليَّة"],
        forwarded: &["رسالة معاد توجيهها", "الرسالة المعاد توجيهها"],
        sent_from: &["تم الإرسال من", "أرسلت من", "مرسل من"],
        sent_from_suffix: &[],
        dates: &[
            "الجمعة، 20 أكتوبر 2017 في 5:50 م",
            "الجمعة، ٢٠ أكتوبر ٢٠١٧ ٥:٥٠ م",
        ],
    },
    Language {
        code: "he",
        from: &["מאת"],
        sent: &["נשלח", "תאריך"],
        to: &["אל"],
        cc: &["עותק"],
        subject: &["נושא"],
        wrote: &["כתב", "כתבה", "כתב/ה"],
        original: &["הודעה מקורית", "ההודעה המקורית"],
        forwarded: &["הודעה שהועברה", "תחילת ההודעה המועברת"],
        sent_from: &["נשלח מ", "נשלח מה"],
        sent_from_suffix: &[],
        dates: &[
            "יום ו׳, 20 באוק׳ 2017 ב-17:50",
            "יום שישי 20 אוקטובר 2017 17:50",
        ],
    },
    Language {
        code: "ja",
        from: &["差出人", "送信者"],
        sent: &["送信日時", "日付"],
        to: &["宛先"],
        cc: &["cc"],
        subject: &["件名"],
        wrote: &["のメール", "は書きました", "さんは書きました"],
        original: &["元のメッセージ", "元のメール"],
        forwarded: &["転送されたメッセージ", "転送メッセージ"],
        sent_from: &[],
        sent_from_suffix: &["から送信", "を入手"],
        dates: &["2017年10月20日(金) 17:50", "2017/10/20 17:50"],
    },
    Language {
        code: "zh",
        from: &["发件人", "寄件者", "寄件人"],
        sent: &["发送时间", "寄件日期", "日期", "时间"],
        to: &["收件人", "收件者"],
        cc: &["抄送", "副本"],
        subject: &["主题", "主旨"],
        wrote: &["写道", "寫道"],
        original: &["原始邮件", "原始郵件", "原始消息"],
        forwarded: &["转发的邮件", "轉寄的郵件", "转发邮件"],
        sent_from: &["发自我的", "从我的", "從我的", "来自我的"],
        sent_from_suffix: &["发送", "傳送", "送出"],
        dates: &["2017年10月20日周五 下午5:50", "2017年10月20日 17:50"],
    },
    Language {
        code: "ko",
        from: &["보낸 사람", "보낸사람"],
        sent: &["보낸 날짜", "날짜"],
        to: &["받는 사람", "받는사람"],
        cc: &["참조"],
        subject: &["제목"],
        wrote: &["작성", "님이 작성"],
        original: &["원본 메시지", "원래 메시지"],
        forwarded: &["전달된 메시지", "전달된 메일"],
        sent_from: &[],
        sent_from_suffix: &["에서 보냄", "에서 보냄.", "에서 전송"],
        dates: &["2017년 10월 20일 (금) 오후 5:50", "2017. 10. 20. 오후 5:50"],
    },
    Language {
        code: "vi",
        from: &["từ", "người gửi"],
        sent: &["đã gửi", "ngày"],
        to: &["đến", "tới"],
        cc: &["cc"],
        subject: &["chủ đề", "tiêu đề"],
        wrote: &["đã viết", "viết"],
        original: &["thư gốc", "tin nhắn gốc"],
        forwarded: &["thư được chuyển tiếp", "tin nhắn được chuyển tiếp"],
        sent_from: &["gửi từ", "được gửi từ", "nhận outlook cho"],
        sent_from_suffix: &[],
        dates: &[
            "Th 6, 20 thg 10, 2017 vào lúc 17:50",
            "Thứ Sáu, ngày 20 tháng 10 năm 2017 17:50",
        ],
    },
];

/// Every word of one kind, across languages, longest first (so an alternation prefers "envoyé
/// le" to "envoyé"), deduplicated.
pub fn words(pick: impl Fn(&Language) -> &'static [&'static str]) -> Vec<&'static str> {
    let all: Vec<&'static str> = LANGUAGES
        .iter()
        .flat_map(|l| pick(l).iter().copied())
        .collect();
    longest_first(all)
}

/// `words` longest first (so an alternation prefers "envoyé le" to "envoyé"), deduplicated.
pub fn longest_first(mut words: Vec<&'static str>) -> Vec<&'static str> {
    words.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
    words.dedup();
    words
}

/// `words` as a regex alternation, each escaped.
pub fn alternation(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_five_languages_each_with_every_kind() {
        let codes: Vec<&str> = LANGUAGES.iter().map(|l| l.code).collect();
        for code in [
            "en", "es", "pt", "fr", "de", "it", "nl", "da", "no", "sv", "fi", "pl", "cs", "hu",
            "ro", "tr", "el", "ru", "uk", "ar", "he", "ja", "zh", "ko", "vi",
        ] {
            assert!(codes.contains(&code), "{code} missing");
        }
        for l in LANGUAGES {
            for (kind, list) in [
                ("from", l.from),
                ("sent", l.sent),
                ("to", l.to),
                ("subject", l.subject),
                ("wrote", l.wrote),
                ("original", l.original),
                ("forwarded", l.forwarded),
            ] {
                assert!(!list.is_empty(), "{}: no {kind}", l.code);
                for w in list {
                    assert!(
                        *w == w.to_lowercase() || w.contains('İ'),
                        "{}: {w} must be lower case",
                        l.code
                    );
                }
            }
            assert!(!l.dates.is_empty(), "{}: no date formats", l.code);
            assert!(
                !l.sent_from.is_empty() || !l.sent_from_suffix.is_empty(),
                "{}: no sign-off",
                l.code
            );
        }
    }
}
