//! The small closed vocabularies of the product: thread modes, participant roles, the door a
//! message came in through, delivery statuses, notices, what became of inbound mail. Each is
//! stored and printed by its word; nothing compares the words themselves.

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and printed form.
            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::kinds::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::domain::kinds::UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::kinds::UnknownValue {
                        what: stringify!($name),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary!(
    /// How much a thread's notifications may carry.
    Mode {
        /// Content-free notifications with a link; email replies are not filed.
        Secure => "secure",
        /// Notifications carry the message and a signed reply address.
        Convenience => "convenience",
    }
);

vocabulary!(
    /// What a participant is in a thread.
    Role {
        /// Someone at the practice.
        Staff => "staff",
        /// A patient or client.
        Recipient => "recipient",
    }
);

vocabulary!(
    /// The door a message came in through.
    Via {
        Cli => "cli",
        Api => "api",
        Smtp => "smtp",
        Imap => "imap",
        Web => "web",
    }
);

vocabulary!(
    /// Where a notification stands in its delivery.
    DeliveryStatus {
        /// Waiting for its first attempt.
        Queued => "queued",
        /// Accepted by the relay (or written to the spool).
        Sent => "sent",
        /// A temporary failure; tried again later.
        Deferred => "deferred",
        /// A permanent failure, or no attempts left.
        Failed => "failed",
        /// A delivery report (verified: see the inbound pipeline) said it did not arrive.
        Bounced => "bounced",
        /// Its participant was removed before it went out.
        Cancelled => "cancelled",
        /// Its recipient opted out of notifications: recorded, never sent.
        Suppressed => "suppressed",
    }
);

vocabulary!(
    /// What an API key may do. Each scope includes the ones before it.
    ApiScope {
        /// Read: GET requests.
        Read => "read",
        /// Also change threads, messages, people.
        Write => "write",
        /// Also administer (keys, webhooks).
        Admin => "admin",
    }
);

impl ApiScope {
    /// Whether a key of this scope may do what `needed` allows.
    pub fn allows(self, needed: ApiScope) -> bool {
        let rank = |s: ApiScope| match s {
            ApiScope::Read => 0,
            ApiScope::Write => 1,
            ApiScope::Admin => 2,
        };
        rank(self) >= rank(needed)
    }
}

vocabulary!(
    /// Who a person in the directory is to the practice.
    PersonKind {
        Patient => "patient",
        /// A clinician or another member of staff.
        Staff => "staff",
        /// Someone at another practice.
        Colleague => "colleague",
    }
);

vocabulary!(
    /// Where a person stands with the secure web view.
    PersonStatus {
        Registered => "registered",
        /// Sent an invitation, not registered yet.
        Invited => "invited",
        /// Locked out after failed identity checks, until staff unlock them.
        Locked => "locked",
    }
);

vocabulary!(
    /// Why a participant whose email reply could not be filed gets a content-free notice,
    /// and which one.
    NoticeReason {
        /// Replies by email are not taken in a secure-mode thread.
        SecureThread => "notice-secure",
        /// The thread is closed.
        ThreadClosed => "notice-closed",
        /// Nothing new was written.
        EmptyReply => "notice-empty",
        /// To staff: a recipient's convenience notification bounced or was reported as spam,
        /// so they get secure notifications from now on.
        RecipientMadeSecure => "notice-made-secure",
        /// To staff: a recipient failed the web view's identity check too often and is locked
        /// out until someone unlocks them.
        RecipientLocked => "notice-locked",
        /// The reply answered a notification too old for its reply address: kept for staff,
        /// and the person told how else to reach the practice.
        TokenExpired => "notice-expired",
        /// To staff: so much mail from one of the conversation's reply addresses waits in the
        /// held queue that more is refused (temporarily) until they decide on it.
        HeldFull => "notice-held-full",
    }
);

vocabulary!(
    /// What became of an inbound message, as the inbound ledger records it.
    LedgerOutcome {
        Filed => "filed",
        /// The same Message-ID was filed in the thread before.
        Duplicate => "duplicate",
        /// Kept sealed in the held queue.
        Held => "held",
        /// Refused during the SMTP transaction (the sender's server was told 5xx and returns
        /// the message to its sender): never a message that was acknowledged.
        Rejected => "rejected",
        /// Acknowledged and not kept, for a machine reason: an auto-reply, a loop, a delivery
        /// report that names nothing of ours, or (IMAP) no reply address of ours at all.
        Ignored => "ignored",
        /// A delivery report about a notification.
        DeliveryStatus => "delivery-status",
    }
);

vocabulary!(
    /// Why a message was held rather than filed.
    HoldReason {
        /// Handling it failed (a defect in Sealpost or a library, caught).
        ProcessingFailed => "processing-failed",
        /// Only a Message-ID in In-Reply-To/References linked it to a thread: no reply token,
        /// so nothing says the sender is the participant.
        LinkedByReferences => "linked-by-references",
        /// Nothing new was written (only quotes of what was sent).
        EmptyReply => "empty-reply",
        /// Its structure is beyond what any person's reply has (thousands of header fields or
        /// parts, deeply nested multiparts): kept, not parsed.
        TooComplex => "too-complex",
        /// The sender did not authenticate as the participant's domain (SPF, DKIM, DMARC) as
        /// `auth.policy` requires: the `From:` may be forged.
        AuthFailed => "auth-failed",
        /// `From:` names more than one mailbox (or there is more than one `From:` field):
        /// which of them wrote it cannot be told, so no one is taken to have.
        MultipleFrom => "multiple-from",
        /// Not a message at all (over IMAP, where it cannot be refused).
        Malformed => "malformed",
        /// Written to postmaster: for whoever runs the mail system.
        ToPostmaster => "postmaster",
        /// No reply address of ours verified and nothing else named a thread (with several
        /// recipients in one SMTP transaction, where it cannot be refused for all).
        Unaddressed => "unaddressed",
        /// `From:` is not the reply address's participant (over IMAP, or with several
        /// recipients): someone else answered a notification that reached them.
        SenderMismatch => "sender-mismatch",
        /// Its participant was removed from the conversation while it was on its way.
        ParticipantRemoved => "participant-removed",
        /// Email replies are not taken in the conversation (secure mode, or a participant who
        /// does not receive content by email): the person is told to use the secure link.
        SecureThread => "secure-thread",
        /// Staff closed the conversation: they decide, and the person is told.
        ThreadClosed => "thread-closed",
        /// It answers a notification whose reply address's lifetime is over.
        TokenExpired => "token-expired",
    }
);

vocabulary!(
    /// How strictly a reply's sender must authenticate before it is filed (`auth.policy`).
    AuthPolicy {
        /// DMARC passes; for a domain that publishes no DMARC record, a DKIM signature or an
        /// SPF pass aligned with the `From:` domain. Anything else is held.
        RequireDmarcPass => "require-dmarc-pass",
        /// Only mail that fails outright is held: DMARC fails, or (no DMARC record) SPF fails
        /// with no aligned DKIM signature. Unsigned mail from domains that publish nothing is
        /// filed.
        QuarantineOnFail => "quarantine-on-fail",
        /// Nothing is checked: anyone who has seen a reply address can write as its
        /// participant. Logged as a warning at start.
        Off => "off",
    }
);

vocabulary!(
    /// Where a held message stands.
    HeldStatus {
        Held => "held",
        Released => "released",
        Rejected => "rejected",
    }
);

impl LedgerOutcome {
    /// The message is safely in its thread.
    pub fn is_filed(self) -> bool {
        matches!(self, LedgerOutcome::Filed | LedgerOutcome::Duplicate)
    }
}

/// A word that is not one of a vocabulary's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub expected: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
        }
        for v in Via::ALL {
            assert_eq!(v.as_str().parse::<Via>().unwrap(), *v);
        }
        let err = "Secure".parse::<Mode>().unwrap_err();
        assert_eq!(err.to_string(), "expected one of: secure, convenience");
    }
}
