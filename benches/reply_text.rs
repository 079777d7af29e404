//! Reply-text extraction speed over the shared corpus's plain-text inputs, next to talon's
//! `quotations.extract_from_plain` (the most used Python library) on the same inputs in the same
//! run; and large messages of three shapes at 2.5 and 10 MB, to show the time stays linear.
//!
//! The ratio compares like with like: the reply text alone (`text_of`, what the pipeline files),
//! as talon returns it, in paired rounds whose median is reported (a shared host's speed
//! drifts by a fifth within a minute); the rate with `--explain`'s list of removed lines is
//! printed beside it.
//!
//! Run: `cargo bench --bench reply_text` (talon: `pip install talon`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sealpost::inbound::reply_text;

const TALON: &str = r#"
import json, os, sys, time
from talon import quotations
paths = sys.argv[1:]
bodies = [open(p, encoding="utf-8").read() for p in paths]
for b in bodies:
    quotations.extract_from_plain(b)  # warm up
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(os.environ["SECONDS_PER_ROUND"]):
    for b in bodies:
        quotations.extract_from_plain(b)
    n += len(bodies)
print(json.dumps({"messages": n, "seconds": time.perf_counter() - start}))
"#;

/// How long each side runs in a round.
const SECONDS_PER_ROUND: u64 = 2;

/// Paired rounds: Sealpost, then talon, then Sealpost again… The machine's speed drifts (a
/// shared host), so the ratio is taken within each round and the median reported.
const ROUNDS: usize = 5;

/// Messages per second of `extract` over `bodies`, repeated for a round.
fn rate(bodies: &[String], extract: impl Fn(&str)) -> f64 {
    let mut n = 0usize;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(SECONDS_PER_ROUND) {
        for b in bodies {
            extract(b);
        }
        n += bodies.len();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Messages per second of talon's `quotations.extract_from_plain` over the files at `paths`,
/// for one round; `None` (and why, on stderr) when it cannot run.
fn talon_rate(paths: &[std::path::PathBuf]) -> Option<f64> {
    let talon = Command::new("python3")
        .arg("-c")
        .arg(TALON)
        .args(paths)
        .env("SECONDS_PER_ROUND", SECONDS_PER_ROUND.to_string())
        .output();
    match talon {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            Some(v["messages"].as_f64().unwrap() / v["seconds"].as_f64().unwrap())
        }
        Ok(out) => {
            eprintln!(
                "talon did not run (pip install talon): {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        }
        Err(e) => {
            eprintln!("python3 did not run: {e}");
            None
        }
    }
}

fn main() {
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/reply-trimming/cases");
    assert!(
        corpus.is_dir(),
        "the reply-trimming corpus is missing: expected {}",
        corpus.display()
    );
    let mut paths: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path().join("input.txt"))
        .filter(|p| p.exists())
        .collect();
    paths.sort();
    let bodies: Vec<String> = paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();

    // What the pipeline files (the text alone, as talon returns it), next to talon in each
    // round; then the same with every removed line listed for `--explain`.
    let none = reply_text::Known::default();
    let mut rounds: Vec<(f64, Option<f64>)> = Vec::new();
    for _ in 0..ROUNDS {
        let ours = rate(&bodies, |b| {
            std::hint::black_box(reply_text::text_of(b, &none));
        });
        let talon = talon_rate(&paths);
        rounds.push((ours, talon));
        if talon.is_none() {
            break;
        }
    }
    let explained = rate(&bodies, |b| {
        std::hint::black_box(reply_text::from_body(b));
    });

    // Large messages of three shapes at 2.5 and 10 MB: the time must grow with the size, not
    // its square. A quoted history full of attribution lines; inline answers under a reply
    // header each (every block a header to judge); thousands of copies of a sent message with
    // the person's words between them (every copy a run to judge), as the pipeline runs it.
    let sent = "Your blood results are back and everything looks normal. Please book a follow-up.";
    let known = reply_text::Known::new(&[sent]);
    let shapes: [(&str, &str, &str); 3] = [
        (
            "quoted history",
            "Short answer on top.\n\nOn Mon, 23 Nov 2026 at 09:00, Someone <a@b.test> wrote:\n",
            "> On Mon, 23 Nov 2026 at 09:00, Someone <a@b.test> wrote:\n> From: x\n> a quoted line of ordinary text, long enough to be typical of mail\n",
        ),
        (
            "inline answers",
            "Top.\n",
            "On Mon, 23 Nov 2026 at 09:00, Someone <a@b.test> wrote:\n> a question here?\nmy answer to it, in words\n",
        ),
        (
            "copies of a sent message",
            "Top.\n",
            "Your blood results are back and everything looks normal. Please book a follow-up.\nand here is a line of my own words in between them all\n",
        ),
    ];
    let mut large = Vec::new();
    for (name, head, block) in shapes {
        let mut times = Vec::new();
        for size in [10 << 18, 10 << 20] {
            let mut body = String::from(head);
            while body.len() < size {
                body.push_str(block);
            }
            let t = Instant::now();
            let out = reply_text::from_body_knowing(&body, &known);
            times.push(t.elapsed());
            assert!(!out.text.is_empty());
        }
        large.push((name, times));
    }
    println!(
        "reply-text: {} plain-text corpus inputs, {ROUNDS} paired rounds of {SECONDS_PER_ROUND} s",
        bodies.len()
    );
    for (k, (ours, talon)) in rounds.iter().enumerate() {
        match talon {
            Some(t) => println!(
                "  round {}   sealpost {ours:>9.0}/s   talon {t:>7.0}/s   ratio {:>5.1}x",
                k + 1,
                ours / t
            ),
            None => println!(
                "  round {}   sealpost {ours:>9.0}/s   talon not measured (see above)",
                k + 1
            ),
        }
    }
    let mut ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|(ours, talon)| talon.map(|t| ours / t))
        .collect();
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        println!(
            "  ratio      {median:>10.1}x  (median of the rounds; the reply text, as the pipeline files it)"
        );
    }
    println!("  sealpost   {explained:>10.0} messages/s  (with every removed line and its rule)");
    for (name, times) in &large {
        println!(
            "  {name:<26} 2.5 MB: {:>6.0} ms   10 MB: {:>6.0} ms",
            times[0].as_secs_f64() * 1000.0,
            times[1].as_secs_f64() * 1000.0
        );
    }
}
