//! Reply-text extraction measured on the shared corpus: pass counts per source, the doubtful
//! cases apart, and every failure listed.
//!
//! The corpus is read in place from `$SEALPOST_REPLY_CORPUS`, by default
//! `../shared/corpus/reply-trimming` beside the repository. A clone on its own has no corpus: the
//! test then says loudly that it was skipped (the project's own fixtures in
//! `fixtures/reply-text` still run). In CI (`CI` set) the corpus is required.

use std::path::{Path, PathBuf};

use sealpost::inbound::reply_text::{self, html};
use serde_json::Value;

/// The corpus directory, or `None` (after saying so) when it is absent outside CI.
fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEALPOST_REPLY_CORPUS").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/reply-trimming"),
    };
    if dir.join("manifest.json").exists() {
        return Some(dir);
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        !ci,
        "the reply-trimming corpus is missing: expected {} (set SEALPOST_REPLY_CORPUS, or check \
         out ../shared beside the repository); CI requires it",
        dir.display()
    );
    eprintln!(
        "\n*** SKIPPED: the reply-trimming corpus is not at {} ***\n\
         *** set SEALPOST_REPLY_CORPUS=DIR to run it; fixtures/reply-text still ran ***\n",
        dir.display()
    );
    None
}

fn rstrip_lines(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

/// Runs one case; returns (passed, got, expected).
fn run_case(dir: &Path, case: &Value) -> (bool, String, String) {
    let name = case["case"].as_str().unwrap();
    let cdir = dir.join("cases").join(name);
    let expected = std::fs::read_to_string(cdir.join("expected.txt")).unwrap();
    let input_file = cdir.join(case["input"].as_str().unwrap());
    let kind = case["input_kind"].as_str().unwrap_or("");
    let compare = case["compare"].as_str().unwrap_or("exact");
    let got = if input_file.extension().is_some_and(|e| e == "eml") {
        let raw = std::fs::read(&input_file).unwrap();
        reply_text::from_message(&raw)
            .map(|e| e.text)
            .unwrap_or_default()
    } else if input_file.extension().is_some_and(|e| e == "html") || kind.contains("html") {
        let h = std::fs::read_to_string(&input_file).unwrap();
        reply_text::from_body(&html::to_text(&h)).text
    } else {
        let body = std::fs::read_to_string(&input_file).unwrap();
        let body = if compare.starts_with("strip") {
            body.trim().to_owned()
        } else {
            body
        };
        reply_text::from_body(&body).text
    };
    let passed = match compare {
        c if c.starts_with("strip-both-ends") => got.trim() == expected.trim(),
        c if c.starts_with("rstrip") => rstrip_lines(&got) == rstrip_lines(&expected),
        c if c.starts_with("ignore-all-whitespace") => {
            let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            squash(&got) == squash(&expected)
        }
        _ => got == expected,
    };
    (passed, got, expected)
}

#[test]
fn corpus_pass_rates() {
    let Some(dir) = corpus() else {
        return;
    };
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut by_source: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let (mut undisputed, mut undisputed_ok, mut doubtful, mut doubtful_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let (mut policies, mut broken) = (Vec::new(), 0);
    for case in &manifest {
        let name = case["case"].as_str().unwrap();
        // ert, erp, and talon split by input kind (talon-text, talon-eml, talon-html).
        let mut parts = name.splitn(3, '-');
        let first = parts.next().unwrap_or_default();
        let source = match (first, parts.next()) {
            ("talon", Some(kind)) => format!("talon-{kind}"),
            _ => first.to_owned(),
        };
        let (ok, got, expected) = run_case(&dir, case);
        let e = by_source.entry(source).or_default();
        e.0 += 1;
        e.1 += usize::from(ok);
        if case["doubtful"].is_null() {
            undisputed += 1;
            undisputed_ok += usize::from(ok);
        } else {
            doubtful += 1;
            doubtful_ok += usize::from(ok);
            let policy = policy_for(name);
            let holds = match policy {
                Policy::Source(_) => ok,
                _ => policy.holds(&got, &expected),
            };
            policies.push(format!(
                "  {name:<58} {:<10} {}",
                if holds { "holds" } else { "BROKEN" },
                policy.describe()
            ));
            broken += usize::from(!holds);
            if !ok && holds {
                continue; // a chosen difference, listed with the policies
            }
        }
        if !ok {
            failures.push(format!(
                "--- {name}{}\n  expected: {:?}\n  got:      {:?}",
                if case["doubtful"].is_null() {
                    ""
                } else {
                    " (doubtful)"
                },
                expected.chars().take(300).collect::<String>(),
                got.chars().take(300).collect::<String>()
            ));
        }
    }
    println!("reply-text corpus ({} cases)", manifest.len());
    for (source, (n, ok)) in &by_source {
        println!("  {source:<12} {ok:>3}/{n:<3} pass");
    }
    println!(
        "  undisputed   {undisputed_ok:>3}/{undisputed:<3} pass ({:.1} %)",
        100.0 * undisputed_ok as f64 / undisputed as f64
    );
    println!("  doubtful     {doubtful_ok:>3}/{doubtful:<3} match the source's choice");
    println!("doubtful cases, each with Sealpost's policy:");
    for p in &policies {
        println!("{p}");
    }
    println!("failures:");
    for f in &failures {
        println!("{f}");
    }
    // A regression floor at the level reached so far (every undisputed case); the issue's
    // target is 97 %. Lower it only for a real-world case that needs it, and say so.
    assert!(
        undisputed_ok >= FLOOR_CASES,
        "undisputed cases passing fell from {FLOOR_CASES} to {undisputed_ok}"
    );
    assert_eq!(broken, 0, "a doubtful case no longer follows its policy");
    assert_eq!(policies.len(), 18, "the corpus lists 18 doubtful cases");
}

const FLOOR_CASES: usize = 138;

/// What Sealpost does with a doubtful case, where it departs from the source's choice.
#[derive(Clone, Copy)]
enum Policy {
    /// The source's expected output, for the reason given.
    Source(&'static str),
    /// Keeps everything the source keeps, and also this line (an inline reply's attribution,
    /// a forward the person sent).
    KeepsMore(&'static str, &'static str),
    /// Nothing typed, nothing filed: the reply is empty and is held.
    Empty(&'static str),
    /// The source's text without its trailing sign-off or signature.
    CutsSignOff(&'static str),
}

impl Policy {
    fn holds(self, got: &str, expected: &str) -> bool {
        let lines = |s: &str| {
            s.lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        match self {
            Policy::Source(_) => false,
            Policy::KeepsMore(line, _) => {
                let got_lines = lines(got);
                let mut rest = got_lines.iter();
                lines(expected).iter().all(|e| rest.any(|g| g == e))
                    && got_lines.iter().any(|g| g.contains(line))
            }
            Policy::Empty(_) => got.trim().is_empty(),
            Policy::CutsSignOff(_) => {
                !got.trim().is_empty()
                    && expected.trim().starts_with(got.trim())
                    && expected.trim() != got.trim()
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Policy::Source(why)
            | Policy::KeepsMore(_, why)
            | Policy::Empty(why)
            | Policy::CutsSignOff(why) => why,
        }
    }
}

/// Sealpost's policy for each of the corpus's doubtful cases (see its README).
fn policy_for(case: &str) -> Policy {
    const INLINE: &str = "inline reply: the attribution stays with the quotes it introduces";
    const FORWARD: &str = "a forward the person sent is filed whole, header included";
    match case {
        "ert-embedded_email_17" => Policy::KeepsMore("On 8 May 2017 6:51 pm", INLINE),
        "ert-embedded_email_7" => Policy::KeepsMore("On Tue, 2011-03-01 at 18:02", INLINE),
        "ert-forwarded_apple" => Policy::KeepsMore("Lorem ipsum dolor sit amet", FORWARD),
        "ert-forwarded_gmail" => Policy::KeepsMore("Lorem ipsum dolor sit amet", FORWARD),
        "ert-forwarded_message" => Policy::KeepsMore("---------- Forwarded message", FORWARD),
        "ert-quote_only" => Policy::Empty("only quoted lines: empty, held, never filed as text"),
        "talon-eml-iphone" => Policy::CutsSignOff("a trailing mobile sign-off is cut"),
        "talon-eml-sparrow" => Policy::CutsSignOff("a trailing `-- ` signature is cut"),
        "ert-embedded_email_1" => Policy::Source(
            "as the source: below an attribution with no `>` quotes, the rest is history",
        ),
        "ert-embedded_email_spanish_2" => {
            Policy::Source("as the source: the quoted history goes, whatever its encoding")
        }
        "erp-email_1_2" | "erp-email_1_8" => Policy::Source(
            "as the source: inline answers keep the attribution and quotes between them",
        ),
        "erp-email_1_6" => {
            Policy::Source("as the source: an unknown sign-off is kept (keep when unsure)")
        }
        "talon-text-test_appointment" => Policy::Source(
            "as the source: a name/company/phone block with no `-- ` is the person's text",
        ),
        "talon-text-test_reply_wraps_quotations"
        | "talon-text-test_reply_wraps_nested_quotations"
        | "talon-text-test_quotation_separator_takes_2_lines" => {
            Policy::Source("as the source: only a closing below the quote: quote cut, closing kept")
        }
        "talon-text-test_dont_parse_quotations_for_forwarded_messages" => Policy::Source(FORWARD),
        other => panic!("doubtful case {other} has no policy yet: choose one"),
    }
}
