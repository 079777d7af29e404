use super::*;
use crate::domain::mail::REPLY_MARKER;

fn text(body: &str) -> String {
    from_body(body).text
}

#[test]
fn top_posted_reply_to_a_sealpost_notification() {
    let body = format!(
        "Thank you, I will come on Tuesday.\n\nJane\n\nOn Sun, 22 Nov 2026 at 02:54, Lee Family Practice <noreply@example.test>\nwrote:\n> {REPLY_MARKER}\n>\n> Dr Lee <lee@clinic.test> wrote:\n>\n> Your results are in.\n"
    );
    assert_eq!(text(&body), "Thank you, I will come on Tuesday.\n\nJane");
    let ex = from_body(&body);
    assert!(
        ex.removed
            .iter()
            .any(|r| r.rule.reason() == Reason::ReplyHeader && r.text.starts_with("On Sun"))
    );
    assert!(ex.removed.iter().any(|r| r.rule.reason() == Reason::Marker));
}

#[test]
fn bottom_posted_reply_to_a_sealpost_notification() {
    let body = format!(
        "> {REPLY_MARKER}\n>\n> Dr Lee wrote:\n> Your results are in.\n\nGreat news, thanks!\n"
    );
    assert_eq!(text(&body), "Great news, thanks!");
}

#[test]
fn attribution_and_trailing_quote() {
    let body = "Test reply\n\nOn 11-Apr-2011, at 6:54 PM, Roman Tkachenko <romant@example.com> wrote:\n\n>\n> Test\n>\n> Roman";
    assert_eq!(text(body), "Test reply");
}

#[test]
fn wrapped_attribution() {
    let body = "Yes please.\n\nOn Mon, Mar 3, 2014 at 10:00 AM, A very long name indeed <someone@example.com>\nwrote:\n> old\n";
    assert_eq!(text(body), "Yes please.");
}

#[test]
fn outlook_header_block() {
    let body = "This is a reply from Outlook!\n\n\n ------------------------------\n\n*From:* Outlook user\n*Sent:* 2016-01-27\n*To:* info@discourse.org\n*Subject:* Are you using Outlook?\n\n\n\nJust some random text\n\nOutlook user\n";
    assert_eq!(text(body), "This is a reply from Outlook!");
}

#[test]
fn inline_replies_are_kept() {
    let body = "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:\n> Hi folks\n> What is the best way?\n\nYou can list the keys and delete each.\n";
    assert_eq!(text(body), body.trim_end());
}

#[test]
fn signatures_and_sign_offs_only_at_the_end() {
    assert_eq!(
        text("See you then.\n\n-- \nJane Doe\n+1 555 0100\n"),
        "See you then."
    );
    assert_eq!(
        text("See you then.\n\nSent from my iPhone\n"),
        "See you then."
    );
    let keep = "Hi Dr. Lee,\n\nFrom my side the dose is fine.\nSent via the pharmacy the new prescription.\nI feel better.";
    assert_eq!(text(keep), keep);
    let table = "Results:\n\n----\n\nHbA1c 6.1\n----\nLDL 2.3";
    assert_eq!(text(table), table);
}

#[test]
fn forwards_are_kept_whole() {
    let body = "Please see below.\n\n---------- Forwarded message ---------\nFrom: Lab <lab@example.test>\nDate: Mon\nSubject: Results\nTo: me\n\nAll normal.";
    assert_eq!(text(body), body);
}

#[test]
fn only_quotes_is_empty() {
    // Nothing typed: a client re-sending the history is an empty reply (held, not filed).
    assert_eq!(text("> a\n> b\n"), "");
    let body = format!("> {REPLY_MARKER}\n> Dr Lee wrote:\n> hi\n");
    assert_eq!(text(&body), "");
}

#[test]
fn flowed_text_is_unwrapped() {
    assert_eq!(
        unflow("a long \nline\n> quoted \n> more\n", false),
        "a long line\n> quoted more\n"
    );
    assert_eq!(unflow("ab\ncd", true), "ab\ncd");
}

#[test]
fn whole_messages() {
    let raw = b"From: Jane <jane@example.test>\r\nTo: x@y\r\nSubject: Re: hi\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<div>Yes, Tuesday works.</div><div class=\"gmail_quote\">On Mon wrote:<blockquote>old</blockquote></div>";
    assert_eq!(from_message(raw).unwrap().text, "Yes, Tuesday works.");
    let raw = b"From: Jane <jane@example.test>\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe aus M=FCnchen\r\n";
    assert_eq!(from_message(raw).unwrap().text, "Grüße aus München");
}

#[test]
fn bottom_posted_reply_drops_the_quote_on_top() {
    let body = "On Mon, 23 Nov 2026, Lee <lee@clinic.test> wrote:\n\n> Can you come on Tuesday?\n\nYes, Tuesday works.\n";
    assert_eq!(text(body), "Yes, Tuesday works.");
    // Two quoted blocks with answers between them is an inline reply: kept whole.
    let inline = "On Mon, Lee <lee@clinic.test> wrote:\n> Tuesday?\n\nYes.\n\n> Reminder by text?\n\nNo, thanks.";
    assert_eq!(text(inline), inline);
}

#[test]
fn rule_wrapped_and_at_attributions() {
    assert_eq!(
        text("Test reply\n\n---- John Smith wrote ----\n\n> hi\n"),
        "Test reply"
    );
    assert_eq!(
        text("yes we're fine\n\nAt 6/16/2016 08:32 PM, you wrote:\n"),
        "yes we're fine"
    );
}

const SENT: &str = "Your blood results are back and everything looks normal.\nPlease book a follow-up appointment in six months; the front desk can help.";

fn knowing(body: &str) -> String {
    from_body_knowing(
        body,
        &Known::new(&[SENT]).with_boilerplate(&["Lee Family Practice"]),
    )
    .text
}

#[test]
fn a_copy_of_the_notification_is_history_in_any_language() {
    // No marker (the person deleted it), an attribution in a language the patterns do not
    // know, the history unquoted and re-wrapped, our template lines below.
    let body = "Köszönöm, jövő héten hívom őket.\n\n2026. nov. 22., vas 10:00 időpontban Dr Lee ezt írta:\n\nYour blood results are back and everything looks normal. Please book\na follow-up appointment in six months; the front desk can help.\n\n--\nYou can also read this conversation securely at https://clinic.example/t/abc\nLee Family Practice\n";
    assert_eq!(knowing(body), "Köszönöm, jövő héten hívom őket.");
}

#[test]
fn a_quoted_copy_above_the_answer_is_history() {
    let body = "Dr Lee a írt:\n> Your blood results are back and everything looks normal.\n> Please book a follow-up appointment in six months; the front desk can help.\n\nThank you, I will call the front desk tomorrow.\n";
    assert_eq!(
        knowing(body),
        "Thank you, I will call the front desk tomorrow."
    );
}

#[test]
fn answers_between_copied_lines_are_kept_whole() {
    let body = "> Your blood results are back and everything looks normal.\nWonderful news, thank you so much.\n> Please book a follow-up appointment in six months; the front desk can help.\nI will book it on Monday morning.\n";
    assert_eq!(knowing(body), body.trim_end());
}

#[test]
fn a_copied_sentence_inside_the_persons_text_loses_nothing() {
    let body = "Thanks for writing.\nyour blood results are back and everything looks normal\nbut my GP said my iron was low last year, should we check it again?\n";
    assert_eq!(knowing(body), body.trim_end());
    // Copied on top without quote marks, the answer below: like a bottom-posted quote, the
    // copy and its "You wrote:" go, every word the person typed stays.
    let body = "You wrote:\nyour blood results are back and everything looks normal\nbut my GP said my iron was low last year, should we check it again?\n";
    assert_eq!(
        knowing(body),
        "but my GP said my iron was low last year, should we check it again?"
    );
}

/// Regression: a format=flowed reply ending in tens of thousands of line breaks aborted the
/// process (one recursive call per trailing break overflowed the stack).
#[test]
fn flowed_text_with_a_huge_tail_of_line_breaks() {
    let raw = format!(
        "From: jane@example.test\r\nContent-Type: text/plain; format=flowed\r\n\r\nI will come. \r\nThanks\r\n{}",
        "\r\n".repeat(200_000)
    );
    let ex = from_message(raw.as_bytes()).unwrap();
    assert_eq!(ex.text, "I will come. Thanks");
}

/// Regression: a no-break space (two bytes in UTF-8) before an "On … wrote:" sharing a line
/// with the person's text made the split land inside the character and panic.
#[test]
fn no_break_space_before_a_shared_attribution() {
    let body =
        "See you then.\u{a0}On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:\n> old text\n";
    assert_eq!(text(body), "See you then.");
    let body = "Ja.\u{2003}On 4 Apr 2012, bob@example.com wrote:\n> old\n";
    assert_eq!(text(body), "Ja.");
}

/// Regression: an HTML part ending inside a tag whose last character takes several bytes
/// panicked on a slice inside that character.
#[test]
fn html_cut_off_inside_a_tag_with_a_multibyte_character() {
    for html in [
        "<p>Yes.</p><div title=\"é",
        "<p>Yes.</p><é",
        "<p>Yes.</p><div é",
        "<😀",
    ] {
        let _ = html::to_text(html);
    }
    assert_eq!(html::to_text("<p>Yes.</p><div class=é"), "Yes.");
}

/// Regression: nested blockquotes wrote one `> ` per level on every line, so memory grew with
/// the square of the nesting; quote levels are capped in the text.
#[test]
fn deeply_nested_blockquotes_stay_linear_in_size() {
    let n = 40_000;
    let html = format!(
        "{}deep{}",
        "<blockquote><p>x</p>".repeat(n),
        "</blockquote>".repeat(n)
    );
    let out = html::to_text(&html);
    assert!(
        out.len() < 2 * html.len(),
        "{} bytes of text from {} of HTML",
        out.len(),
        html.len()
    );
    assert!(
        out.lines()
            .all(|l| l.len() <= 2 * html::MAX_QUOTE_DEPTH + 8)
    );
    assert!(out.contains("deep"));
}

/// Unclosed tags, unmatched closing tags and bare ampersands by the hundred thousand: each
/// handled in a bounded number of steps (these took minutes before).
#[test]
fn unclosed_and_unmatched_tags_and_bare_ampersands() {
    let n = 100_000;
    let html = format!(
        "{}text{}{}",
        "<div><span>".repeat(n),
        "</b>".repeat(n),
        "&".repeat(n)
    );
    let out = html::to_text(&html);
    assert!(out.starts_with("text"));
    assert!(out.ends_with(&"&".repeat(100)));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Lines mail is made of, including every kind the extractor reacts to.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("> quoted line".to_owned()),
            Just(">> deeper".to_owned()),
            Just("On Mon, 23 Nov 2026 at 09:00, Jane <jane@example.test> wrote:".to_owned()),
            Just("reply On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:".to_owned()),
            Just("From: Lab <lab@example.test>".to_owned()),
            Just("Date: Wed, 16 May 2012 00:15:02 -0600".to_owned()),
            Just("Subject: results".to_owned()),
            Just("-----Original Message-----".to_owned()),
            Just("________________________________".to_owned()),
            Just("-- ".to_owned()),
            Just("Sent from my iPhone".to_owned()),
            Just("Regards, Jane".to_owned()),
            Just(" (http://example.com/x=1) >".to_owned()),
            Just("Your blood results are back and everything looks normal.".to_owned()),
            Just(format!("> {REPLY_MARKER}")),
            "[a-zA-Zäö0-9 ,.:>-]{0,60}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Whatever the input: no panic, and nothing in the result that the person did not
        /// send — every kept line is (a piece of) one of the input's lines.
        #[test]
        fn never_panics_and_never_invents(lines in proptest::collection::vec(line(), 0..40)) {
            let body = lines.join("\n");
            let known = Known::new(&[SENT]);
            for extraction in [from_body(&body), from_body_knowing(&body, &known)] {
                for kept in extraction.text.lines() {
                    prop_assert!(
                        lines.iter().any(|l| l.contains(kept.trim())),
                        "invented {kept:?} from {body:?}"
                    );
                }
            }
        }
    }
}

/// `--explain` names the rule behind every cut, the shape rules included.
#[test]
fn every_cut_names_its_rule() {
    let rules =
        |body: &str| -> Vec<Rule> { from_body(body).removed.iter().map(|r| r.rule).collect() };
    let block = "Ya.\n\nDari: Dr Lee <lee@clinic.example>\nDikirim: Jumat, 20 Oktober 2017 17.50\nKepada: Siti <jane@example.net>\nSubjek: Hasil\n\nLama.";
    assert!(rules(block).contains(&Rule::HeaderBlockShape));
    let squashed = "Yes.\n\nFrom: Dr Lee <lee@clinic.example> Sent: Friday 20 October 2017 17:50 To: Jane <jane@example.net> Subject: Results\n\nOld.";
    assert!(rules(squashed).contains(&Rule::SquashedHeader));
    assert_eq!(
        rules("Yes.\n\nImetumwa na BlueMail kwa Android"),
        [Rule::AppSignOff]
    );
    assert_eq!(rules("Yes.\n\nSent from my iPhone"), [Rule::SignOff]);
    let wrapped =
        "Yes.\n\nOn Fri, 20 Oct 2017 at 17:50, Dr Lee <lee@clinic.example>\nwrote:\n> Old.";
    let got = rules(wrapped);
    assert!(got.contains(&Rule::WrappedAttribution), "{got:?}");
    assert!(got.contains(&Rule::BelowHeader), "{got:?}");
}
