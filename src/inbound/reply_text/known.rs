//! Recognising a copy of what Sealpost itself sent, by content rather than by layout.
//!
//! The store knows the messages a participant was notified of, so a block of the reply whose
//! words are those messages' words in the same order is history — whatever the client did to
//! it: quote marks or none, re-wrapped lines, a translated or unknown attribution line above
//! it. Comparison is on normalised words (lower case, letters and digits only), three at a
//! time, so re-wrapping and quoting change nothing while a sentence the person wrote in
//! their own words does not match.

use std::collections::HashSet;

/// Fewer matching words than this is a coincidence, not a copy (unless a sent text is that
/// short and the copy is all of it).
const MIN_COPY_WORDS: usize = 8;

/// The texts Sealpost sent, prepared for matching: hashes of their words and of every run of
/// three words. A reply's lines are hashed the same way as they are read, word by word, with
/// no copy of any word: a reply may be one line of millions of words.
#[derive(Debug)]
pub struct Known {
    trigrams: HashSet<u64>,
    words: HashSet<u64>,
    /// Word count of the shortest text, so a short message copied whole still counts.
    shortest: usize,
}

/// How a line of the reply relates to the known texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMatch {
    /// No words at all (blank, only quote marks or punctuation).
    Empty,
    /// Three or more words, every run of three found in a known text.
    Copy(usize),
    /// One or two words, each found in a known text: a copy only between copied lines.
    Short(usize),
    /// Anything else.
    Other,
}

/// The hashes of the normalised words of `text` (lower case, letters and digits only).
///
/// FNV-1a over the lower-cased bytes: this runs on every word of every reply and of every text
/// it is compared with, and a keyed hash per character cost the daemon an eighth of its CPU.
/// A collision could only make a line of the reply look copied — and nobody can aim for one
/// without knowing what the practice sent.
fn word_hashes(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(word_hash)
}

fn word_hash(word: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    if word.is_ascii() {
        word.bytes().for_each(|b| feed(b.to_ascii_lowercase()));
    } else {
        let mut buf = [0u8; 4];
        for c in word.chars().flat_map(char::to_lowercase) {
            c.encode_utf8(&mut buf).bytes().for_each(&mut feed);
        }
    }
    h
}

fn trigram(a: u64, b: u64, c: u64) -> u64 {
    (a ^ b.rotate_left(21) ^ c.rotate_left(42)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Default for Known {
    /// Nothing known: extraction falls back on layout alone.
    fn default() -> Known {
        Known {
            trigrams: HashSet::new(),
            words: HashSet::new(),
            shortest: usize::MAX,
        }
    }
}

impl Known {
    pub fn new<S: AsRef<str>>(texts: &[S]) -> Known {
        let mut known = Known::default();
        for text in texts {
            let n = known.add(text.as_ref());
            if n > 0 {
                known.shortest = known.shortest.min(n);
            }
        }
        known
    }

    /// Adds a text's words and trigrams; returns how many words it has.
    fn add(&mut self, text: &str) -> usize {
        let w: Vec<u64> = word_hashes(text).collect();
        self.trigrams
            .extend(w.windows(3).map(|t| trigram(t[0], t[1], t[2])));
        self.words.extend(&w);
        w.len()
    }

    /// Adds text that surrounds the messages in every notification (organisation, notice):
    /// recognised like them, but too short or too common to set how long a copy must be.
    pub fn with_boilerplate<S: AsRef<str>>(mut self, texts: &[S]) -> Known {
        for text in texts {
            self.add(text.as_ref());
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.shortest == usize::MAX
    }

    /// Words a run of copied lines needs before it counts as a copy.
    pub fn min_copy_words(&self) -> usize {
        MIN_COPY_WORDS.min(self.shortest).max(3)
    }

    /// How `line` relates to the known texts; stops at the first run of three words that is
    /// not known.
    pub fn line(&self, line: &str) -> LineMatch {
        let mut window = [0u64; 3];
        let mut n = 0;
        for h in word_hashes(line) {
            window = [window[1], window[2], h];
            n += 1;
            if n >= 3
                && !self
                    .trigrams
                    .contains(&trigram(window[0], window[1], window[2]))
            {
                return LineMatch::Other;
            }
        }
        match n {
            0 => LineMatch::Empty,
            1 if self.words.contains(&window[2]) => LineMatch::Short(1),
            2 if self.words.contains(&window[1]) && self.words.contains(&window[2]) => {
                LineMatch::Short(2)
            }
            1 | 2 => LineMatch::Other,
            n => LineMatch::Copy(n),
        }
    }

    /// Runs of copied lines (start, end exclusive) among `lines[from..end]`, each with enough
    /// words to be a copy. Blank and short lines inside a run belong to it; a run starts and
    /// ends with a line of three words or more.
    pub fn runs(&self, lines: &[&str], from: usize, end: usize) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut k = from;
        while k < end {
            if !matches!(self.line(lines[k]), LineMatch::Copy(_)) {
                k += 1;
                continue;
            }
            let start = k;
            let (mut last, mut count) = (k, 0);
            while k < end {
                match self.line(lines[k]) {
                    LineMatch::Copy(n) => {
                        count += n;
                        last = k;
                    }
                    LineMatch::Short(n) => count += n,
                    LineMatch::Empty => {}
                    LineMatch::Other => break,
                }
                k += 1;
            }
            if count >= self.min_copy_words() {
                runs.push((start, last + 1));
            }
            k = last + 1;
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrapped_and_quoted_copies_match() {
        let known = Known::new(&[
            "Your blood results are back and everything looks normal. Please book a follow-up in six months.",
        ]);
        let reply = [
            "Thank you!",
            "",
            "> Your blood results are back and everything",
            "> looks normal. Please book a",
            "> follow-up in six months.",
        ];
        assert_eq!(known.runs(&reply, 0, reply.len()), vec![(2, 5)]);
        // The person's own sentence reusing a few of the words is not a copy.
        let own = ["Are my blood results normal? I can book a follow-up next week."];
        assert!(known.runs(&own, 0, 1).is_empty());
    }

    #[test]
    fn short_messages_copied_whole_match() {
        let known = Known::new(&["See you at ten."]);
        assert_eq!(known.runs(&["> See you at ten."], 0, 1), vec![(0, 1)]);
        assert!(known.runs(&["See you"], 0, 1).is_empty());
    }
}
