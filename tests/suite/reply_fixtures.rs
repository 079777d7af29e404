//! Our own reply-text cases, where today's libraries lose the person's words: every word typed
//! must survive. Run through the real CLI (`sealpost reply-text`), which the pipeline shares.

use crate::common;

use std::process::Command;

#[test]
fn no_typed_word_is_lost() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/reply-text");
    let mut cases = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        cases += 1;
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let out = Command::new(common::binary())
            .arg("reply-text")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = String::from_utf8(out.stdout).unwrap();
        assert_eq!(got.trim_end(), expected.trim_end(), "{}", path.display());
    }
    assert!(cases >= 6);
}

#[test]
fn explain_lists_removed_lines_with_reasons() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/reply-text/bulleted-answers.eml"
    );
    let out = Command::new(common::binary())
        .args(["reply-text", "--explain", path])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("(reply header; rule attribution): Am 23.11.2026"),
        "{text}"
    );
    assert!(
        text.contains(
            "(quoted history; rule history-below-header): > 1. Do you still take the tablets?"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("- From March on I had headaches twice a week.\n\nJane\n"),
        "{text}"
    );
    // Every cut names its line and its rule.
    let cuts: Vec<&str> = text.lines().filter(|l| l.starts_with("removed")).collect();
    assert!(cuts.len() >= 4, "{text}");
    for cut in cuts {
        let (_, after) = cut.split_once("; rule ").unwrap_or_else(|| panic!("{cut}"));
        assert!(after.contains("): "), "{cut}");
    }
}

/// Every message that once crashed, stalled or fooled Sealpost (fixtures/hostile) goes through
/// the real CLI's extraction: an answer, no abort.
#[test]
fn hostile_fixtures_are_handled() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hostile");
    let mut cases = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        cases += 1;
        let out = Command::new(common::binary())
            .arg("reply-text")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{} broke the CLI: {:?} {stderr}",
            path.display(),
            out.status
        );
        // A panic inside the MIME parser is contained and logged by location only; nothing
        // may print Rust's own panic message (which quotes the input).
        assert!(
            !stderr.contains("panicked at"),
            "{}: {stderr}",
            path.display()
        );
    }
    assert!(cases >= 2);
}

/// One case of `fixtures/reply-text/languages/*.txt`: "=== name", the reply as the person's
/// client laid it out, "--- expected", what must be filed.
struct LanguageCase {
    file: String,
    name: String,
    input: String,
    expected: String,
}

fn language_cases(set: &str) -> Vec<LanguageCase> {
    let dir = format!("{}/fixtures/reply-text/{set}", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let file = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for block in text.split("\n=== ").skip(1) {
            let (name, rest) = block.split_once('\n').unwrap();
            let (input, expected) = rest
                .split_once("--- expected\n")
                .unwrap_or_else(|| panic!("{file}: {name}: no '--- expected' line"));
            cases.push(LanguageCase {
                file: file.clone(),
                name: name.to_owned(),
                input: input.to_owned(),
                expected: expected.trim_end().to_owned(),
            });
        }
    }
    cases
}

/// Replies in 25 languages, from each client family: every case's reply text is exactly what
/// the person wrote. Failures are listed together, by language.
#[test]
fn every_language_and_client_family() {
    check_cases(&language_cases("languages"), 25);
}

/// The shapes no word list closes (header blocks in markup, on one line, run into a rule,
/// with direction marks, in languages the vocabulary lacks; app sign-offs; attributions
/// without their colon or over two lines), and the person's own lines that look like them,
/// in 29 languages: every case's reply text is exactly what the person wrote.
#[test]
fn every_shape_in_every_language() {
    check_cases(&language_cases("shapes"), 29);
}

/// Runs every case, listing all failures together, by language.
fn check_cases(cases: &[LanguageCase], at_least: usize) {
    let languages: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.file.as_str()).collect();
    assert!(languages.len() >= at_least, "{languages:?}");
    let mut failures = Vec::new();
    for c in cases {
        let got = sealpost::inbound::reply_text::from_body(&c.input).text;
        if got.trim_end() != c.expected {
            failures.push(format!(
                "{}: {}\n  expected: {:?}\n  got:      {:?}",
                c.file, c.name, c.expected, got
            ));
        }
    }
    println!(
        "{} language fixtures in {} languages, {} failed",
        cases.len(),
        languages.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
