//! The panic hook the targets share. libFuzzer's hook aborts on every panic, caught or not;
//! Sealpost contains mail-parser's panics on purpose (see `inbound::mime`), so a panic whose
//! location is inside mail-parser unwinds to that containment, and every other panic still
//! aborts and is reported as a finding.

pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let in_parser = info
            .location()
            .is_some_and(|l| l.file().contains("/mail-parser-"));
        if in_parser {
            return;
        }
        eprintln!("{info}");
        std::process::abort();
    }));
}
