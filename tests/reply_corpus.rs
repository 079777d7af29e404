//! Reply-text extraction measured on the shared corpus (../shared/corpus/reply-trimming):
//! pass counts per source, the doubtful cases apart, and every failure listed.
//!
//! The corpus is read in place. Its absence is a failure with a clear message, not a skip.

use std::path::{Path, PathBuf};

use sealpost::inbound::reply_text::{self, html};
use serde_json::Value;

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/reply-trimming");
    assert!(
        dir.join("manifest.json").exists(),
        "the reply-trimming corpus is missing: expected {} (the repository's ../shared checkout)",
        dir.display()
    );
    dir
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
    let dir = corpus();
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut by_source: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let (mut undisputed, mut undisputed_ok, mut doubtful, mut doubtful_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
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
    println!("failures:");
    for f in &failures {
        println!("{f}");
    }
    // A regression floor at the level reached so far (120 of 138 undisputed cases); the
    // issue's target is 97 %.
    assert!(
        undisputed_ok >= FLOOR_CASES,
        "undisputed cases passing fell from {FLOOR_CASES} to {undisputed_ok}"
    );
}

const FLOOR_CASES: usize = 120;
