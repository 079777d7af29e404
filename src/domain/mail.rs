//! Words both sides of the email loop share: what notifications carry so that replies can be
//! read (the marker line) and so that Sealpost never answers itself (the loop header).
//!
//! They live here, below `inbound` and `outbound`, so that filing a reply never depends on the
//! code that composes notifications.

/// The line convenience notifications carry; a reply is cut where its quoted copy appears.
pub const REPLY_MARKER: &str = "=== Write your reply above this line ===";

/// Header marking mail Sealpost sent, so it never answers itself.
pub const LOOP_HEADER: &str = "X-Sealpost-Loop";
