use super::*;
use crate::config::Settings;
use crate::crypto::{LinkToken, ReplyToken};
use crate::domain::{Address, MessageId, NotificationId, ParticipantId, Role, ThreadId, Via};
use crate::outbound::templates::TemplateError;
use crate::store::ParticipantView;
use mail_parser::MessageParser;

const NOW: i64 = 1_795_000_000;

fn settings() -> Settings {
    settings_with("", "")
}

/// Settings with extra lines in `[general]` and `[outbound]`.
fn settings_with(general: &str, outbound: &str) -> Settings {
    Settings::from_sources(
        Some((
            std::path::Path::new("t.toml"),
            &format!(
                "[general]\norganization = \"Lee Family Practice\"\npublic_url = \"https://portal.example.test\"\n{general}\
                 [smtp]\nreply_domain = \"reply.example.test\"\n\
                 [outbound]\nfrom = \"Lee Family Practice <noreply@example.test>\"\n{outbound}"
            ),
        )),
        &Vec::new(),
    )
    .unwrap()
}

fn composer(ring: &Arc<Keyring>) -> Composer {
    Composer::new(
        Identity::of(&settings()),
        Templates::load(None).unwrap(),
        ring.clone(),
    )
}

fn recipient() -> ParticipantView {
    ParticipantView {
        id: ParticipantId(0x77),
        address: Address::parse("jane@example.test").unwrap(),
        display_name: Some("Jane Doe".into()),
        role: Role::Recipient,
        revoked: false,
        consented: Some(true),
        archived: false,
    }
}

fn message(id: i64, body: &str, at: i64) -> MessageView {
    MessageView {
        id: MessageId(id),
        author: ParticipantId(0x55),
        author_address: Address::parse("lee@clinic.example.test").unwrap(),
        author_name: Some("Dr Lee".into()),
        body: body.into(),
        via: Via::Cli,
        created_at: at,
        auth: None,
        answers: None,
    }
}

fn delivery(content: DeliveryContent, references: Vec<String>) -> Delivery {
    Delivery {
        id: NotificationId(0xabc),
        thread_id: ThreadId(0x1234),
        recipient: recipient(),
        created_at: NOW,
        attempts: 0,
        email_message_id: None,
        references,
        content,
    }
}

fn compose(c: &Composer, d: &Delivery) -> Notification {
    let id = c.new_message_id(d);
    c.compose(d, &id, NOW)
}

fn header<'a>(m: &'a mail_parser::Message<'a>, name: &'a str) -> Option<&'a str> {
    m.header_raw(name).map(str::trim)
}

#[test]
fn secure_notification_shape() {
    let ring = Arc::new(Keyring::generate());
    let c = composer(&ring);
    let n = compose(&c, &delivery(DeliveryContent::Secure, vec![]));
    let m = MessageParser::default().parse(&n.bytes).unwrap();
    assert_eq!(
        m.subject(),
        Some("New secure message from Lee Family Practice")
    );
    assert_eq!(header(&m, "Auto-Submitted"), Some("auto-generated"));
    assert_eq!(header(&m, LOOP_HEADER), Some("reply.example.test"));
    assert!(m.reply_to().is_none(), "no reply token in secure mode");
    let message_id = m.message_id().unwrap();
    assert!(
        message_id.starts_with("sp2.0000000000000abc."),
        "{message_id}"
    );
    assert_eq!(
        crate::crypto::token::verify_notification_message_id(
            message_id,
            &ring,
            "reply.example.test"
        ),
        Some(0xabc)
    );
    assert_eq!(
        crate::crypto::token::verify_bounce_address(&n.envelope_from, &ring, "reply.example.test"),
        Some(0xabc)
    );
    let text = m.body_text(0).unwrap();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Read it securely here: "))
        .expect("a link");
    assert!(link.starts_with("https://portal.example.test/m/"), "{link}");
    let token = link.rsplit('/').next().unwrap();
    let t = LinkToken::verify(token, &ring, NOW, 30).unwrap();
    assert_eq!(t.claims.thread_id, ThreadId(0x1234));
    assert_eq!(t.claims.participant_id, ParticipantId(0x77));
    assert!(m.body_html(0).unwrap().contains(token));
}

#[test]
fn convenience_notification_shape() {
    let ring = Arc::new(Keyring::generate());
    let c = composer(&ring);
    let content = DeliveryContent::Convenience {
        subject: "Lab results\r\nBcc: evil@example.test".into(),
        message: message(3, "Your HbA1c is 6.1 <good>.\n\nSee you soon.", NOW),
        history: vec![
            message(2, "Thank you!\nJane", NOW - 60),
            message(1, "First line\n\nThird line", NOW - 120),
        ],
    };
    let refs = vec![
        "sp.a.1@reply.example.test".to_string(),
        "sp.b.2@reply.example.test".to_string(),
    ];
    let n = compose(&c, &delivery(content, refs));
    let raw = String::from_utf8(n.bytes.clone()).unwrap();
    assert!(!raw.replace("\r\n", "").contains('\n'), "bare LF in output");
    assert!(
        !raw.contains("\nBcc:"),
        "header injection through the subject"
    );
    let m = MessageParser::default().parse(&n.bytes).unwrap();
    assert_eq!(m.subject(), Some("Lab results Bcc: evil@example.test"));

    let reply_to = m
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_owned();
    let token = crate::crypto::token::token_in_address(&reply_to, "reply.example.test").unwrap();
    let t = ReplyToken::verify(token, &ring, NOW, 30).unwrap();
    assert_eq!(
        (t.claims.thread_id, t.claims.participant_id),
        (ThreadId(0x1234), ParticipantId(0x77))
    );
    let message_id = m.message_id().unwrap();
    assert!(
        !message_id.to_ascii_lowercase().contains(token),
        "the Message-ID carries no token: {message_id}"
    );
    assert!(
        !raw.to_ascii_lowercase()
            .replacen(token, "", 1)
            .contains(token),
        "the token appears once, in Reply-To"
    );

    assert_eq!(
        header(&m, "In-Reply-To"),
        Some("<sp.b.2@reply.example.test>")
    );
    let references = header(&m, "References").unwrap();
    assert!(
        references.contains("<sp.a.1@reply.example.test>")
            && references.contains("<sp.b.2@reply.example.test>")
    );

    let text = m.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(text.starts_with(REPLY_MARKER), "{text}");
    assert!(text.contains(
        "Dr Lee <lee@clinic.example.test> wrote:\n\nYour HbA1c is 6.1 <good>.\n\nSee you soon."
    ));
    assert!(text.contains("> Thank you!\n> Jane\n"), "{text}");
    assert!(text.contains("> First line\n>\n> Third line\n"), "{text}");
    assert!(
        text.find("Thank you!").unwrap() < text.find("First line").unwrap(),
        "newest first"
    );
    assert!(text.contains("not end-to-end protected"));
    let html = m.body_html(0).unwrap();
    assert!(
        html.contains("6.1 &lt;good&gt;"),
        "content is escaped in HTML"
    );
    assert!(html.contains("<blockquote type=\"cite\""));
}

#[test]
fn recomposing_keeps_the_token() {
    let ring = Arc::new(Keyring::generate());
    let c = composer(&ring);
    let d = delivery(
        DeliveryContent::Convenience {
            subject: "S".into(),
            message: message(1, "B", NOW),
            history: vec![],
        },
        vec![],
    );
    assert_eq!(c.new_message_id(&d), c.new_message_id(&d));
}

#[test]
fn message_ids_are_opaque_and_recognised() {
    let ring = Arc::new(Keyring::generate());
    let c = composer(&ring);
    for content in [
        DeliveryContent::Secure,
        DeliveryContent::Convenience {
            subject: "S".into(),
            message: message(1, "B", NOW),
            history: vec![],
        },
    ] {
        let d = delivery(content, vec![]);
        let id = c.new_message_id(&d);
        assert_eq!(
            crate::crypto::token::verify_notification_message_id(&id, &ring, "reply.example.test"),
            Some(d.id.0),
            "{id}"
        );
        let token = ReplyToken::issue(&ring, d.thread_id, d.recipient.id, d.created_at);
        assert!(!id.contains(token.as_str()));
    }
}

/// Every kind of notification, as the recipient sees it: (text, HTML).
fn every_kind(c: &Composer) -> Vec<(String, String)> {
    let convenience = DeliveryContent::Convenience {
        subject: "Results".into(),
        message: message(1, "All is well.", NOW),
        history: vec![],
    };
    [
        DeliveryContent::Secure,
        DeliveryContent::Notice(NoticeReason::SecureThread),
        convenience,
    ]
    .into_iter()
    .map(|content| {
        let n = compose(c, &delivery(content, vec![]));
        let m = MessageParser::default().parse(&n.bytes).unwrap();
        (
            m.body_text(0).unwrap().into_owned(),
            m.body_html(0).unwrap().into_owned(),
        )
    })
    .collect()
}

/// The practice's recognition phrase is in every notification, text and HTML, escaped.
#[test]
fn every_notification_shows_the_recognition_phrase() {
    let ring = Arc::new(Keyring::generate());
    let s = settings_with("recognition_phrase = \"blue <heron> & tide\"\n", "");
    let c = Composer::new(Identity::of(&s), Templates::load(None).unwrap(), ring);
    for (text, html) in every_kind(&c) {
        assert!(
            text.contains("Our security phrase: blue <heron> & tide."),
            "{text}"
        );
        assert!(
            html.contains("<strong>blue &lt;heron&gt; &amp; tide</strong>"),
            "{html}"
        );
    }
    // Without a phrase, nothing is said about one.
    for (text, _) in every_kind(&composer(&Arc::new(Keyring::generate()))) {
        assert!(!text.contains("security phrase"), "{text}");
    }
}

/// `outbound.secure_links = false`: no notification carries a link or a link token; they say
/// where to sign in instead.
#[test]
fn without_secure_links_no_notification_has_a_link() {
    let ring = Arc::new(Keyring::generate());
    let s = settings_with("", "secure_links = false\n");
    let c = Composer::new(Identity::of(&s), Templates::load(None).unwrap(), ring);
    for (text, html) in every_kind(&c) {
        assert!(!text.contains("/m/") && !html.contains("/m/"), "{text}");
        assert!(!html.contains("<a "), "{html}");
        assert!(
            text.contains("sign in at https://portal.example.test as you usually do"),
            "{text}"
        );
    }
}

/// Templates that would break those promises are refused when the daemon starts.
#[test]
fn templates_must_keep_the_promises() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secure.txt"), "Hello, read {{link}}\n").unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    assert!(matches!(
        t.check(false, false),
        Err(TemplateError::Link { .. })
    ));
    assert!(matches!(
        t.check(true, true),
        Err(TemplateError::NoRecognition { .. })
    ));
    Templates::load(None).unwrap().check(true, false).unwrap();
}
