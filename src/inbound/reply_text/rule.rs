//! The rules that remove a line, named so that `sealpost reply-text --explain` can say which
//! one cut each line (and a wrong cut can be traced to the rule that made it).

use std::fmt;

use super::Reason;

/// The rule that removed a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Sealpost's reply marker, and the quoted notification from it down.
    Marker,
    /// A copy of a message Sealpost sent, found by its words.
    SentCopy,
    /// The reply header right above such a copy.
    SentCopyHeader,
    /// An attribution on one line ("On … wrote:", in any language).
    Attribution,
    /// An attribution wrapped over two or three lines.
    WrappedAttribution,
    /// A header block with labels the vocabulary knows (From/Sent/To/Subject…).
    HeaderBlock,
    /// A header block recognised by its shape (label lines, an address, a date, a client's
    /// sign).
    HeaderBlockShape,
    /// A whole header block squashed onto one line.
    SquashedHeader,
    /// "-----Original Message-----" and its translations.
    OriginalMessage,
    /// A rule drawn above a reply header.
    RuleAbove,
    /// The old message below a reply header.
    BelowHeader,
    /// The quoted block right below a header, when the person answered below it.
    QuoteBelowHeader,
    /// A quoted block at the end of the reply.
    TrailingQuote,
    /// The old message below a phone's or an app's sign-off.
    BelowSignOff,
    /// Nothing but quoted lines: the person typed nothing.
    NothingTyped,
    /// A signature after `-- `.
    Signature,
    /// A mailing list's footer.
    ListFooter,
    /// A phone's or an app's sign-off in words the vocabulary knows.
    SignOff,
    /// An app's sign-off recognised by its shape (an app and a platform on a short line).
    AppSignOff,
    /// A hyphen and a name on the last line ("-Jane").
    DashName,
}

impl Rule {
    /// What kind of text the rule removes.
    pub fn reason(self) -> Reason {
        match self {
            Rule::Marker => Reason::Marker,
            Rule::SentCopy => Reason::SentCopy,
            Rule::SentCopyHeader
            | Rule::Attribution
            | Rule::WrappedAttribution
            | Rule::HeaderBlock
            | Rule::HeaderBlockShape
            | Rule::SquashedHeader
            | Rule::OriginalMessage
            | Rule::RuleAbove => Reason::ReplyHeader,
            Rule::BelowHeader
            | Rule::QuoteBelowHeader
            | Rule::TrailingQuote
            | Rule::BelowSignOff
            | Rule::NothingTyped => Reason::History,
            Rule::Signature | Rule::ListFooter => Reason::Signature,
            Rule::SignOff | Rule::AppSignOff | Rule::DashName => Reason::SignOff,
        }
    }

    /// The rule's name, as `--explain` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Marker => "sealpost-marker",
            Rule::SentCopy => "copy-of-sent-message",
            Rule::SentCopyHeader => "header-above-copy",
            Rule::Attribution => "attribution",
            Rule::WrappedAttribution => "attribution-over-lines",
            Rule::HeaderBlock => "header-block",
            Rule::HeaderBlockShape => "header-block-by-shape",
            Rule::SquashedHeader => "header-block-on-one-line",
            Rule::OriginalMessage => "original-message-line",
            Rule::RuleAbove => "rule-above-header",
            Rule::BelowHeader => "history-below-header",
            Rule::QuoteBelowHeader => "quote-below-header",
            Rule::TrailingQuote => "trailing-quote",
            Rule::BelowSignOff => "history-below-sign-off",
            Rule::NothingTyped => "nothing-typed",
            Rule::Signature => "signature",
            Rule::ListFooter => "list-footer",
            Rule::SignOff => "sign-off",
            Rule::AppSignOff => "app-sign-off",
            Rule::DashName => "dash-name",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
