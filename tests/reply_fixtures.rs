//! Our own reply-text cases, where today's libraries lose the person's words: every word typed
//! must survive. Run through the real CLI (`sealpost reply-text`), which the pipeline shares.

mod common;

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
    assert!(text.contains("(reply header): Am 23.11.2026"), "{text}");
    assert!(
        text.contains("(quoted history): > 1. Do you still take the tablets?"),
        "{text}"
    );
    assert!(
        text.ends_with("- From March on I had headaches twice a week.\n\nJane\n"),
        "{text}"
    );
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
