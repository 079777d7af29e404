//! The checks between "which thread" and "file it": parsing within caps, a duplicate of what
//! is filed, the sender is the participant and authenticates, the conversation takes email
//! replies, something new was written. Each settles what it cannot pass through the one rule
//! ([`Pipeline::unfiled`]).

use std::ops::ControlFlow;

use tracing::info;

use super::super::auth::{Decision, Verdict};
use super::super::mime::Unparsable;
use super::super::reply_text;
use super::read::{Parsed, Read};
use super::target::Link;
use super::{Envelope, Incoming, Outcome, Pipeline, Step, Stop};
use crate::domain::fate::Unfiled;
use crate::domain::{Address, AuthPolicy, LedgerOutcome, Mode, ThreadId};
use crate::store::{Inbound, TokenTarget};

impl Pipeline {
    /// Parses the bytes (off the async workers when they are many); a message over the
    /// structural caps is held unparsed, unless a person is releasing it.
    pub(super) async fn parse(&self, m: &Incoming<'_>) -> Step<Box<Parsed>> {
        let parsed = match self.read(m.envelope, &m.raw).await? {
            Read::Parsed(p) => p,
            Read::Malformed => {
                let item = self.ledger(m, None, None);
                return self
                    .unfiled(m, item, Unfiled::Malformed, None, None)
                    .await
                    .map(ControlFlow::Break);
            }
            Read::ParserFailed => return Err(Stop::Panicked),
            Read::TooComplex(why) if m.release.is_none() => {
                info!(
                    door = m.envelope.door.as_str(),
                    cap = why,
                    "message over a structural cap"
                );
                let item = self.ledger(m, None, None);
                return self
                    .unfiled(m, item, Unfiled::TooComplex, None, None)
                    .await
                    .map(ControlFlow::Break);
            }
            // A person decided to file it anyway: parse it, caps or not (its size is bounded).
            Read::TooComplex(_) => {
                let (raw, null_sender, domain) = (
                    m.raw.clone(),
                    m.envelope.null_sender,
                    self.reply_domain.clone(),
                );
                let parsed = self
                    .heavy
                    .run_for(raw.len(), move || Parsed::parse(&raw, null_sender, &domain))
                    .await?;
                match parsed {
                    Ok(p) => Box::new(p),
                    Err(Unparsable::NotAMessage) => {
                        return Ok(ControlFlow::Break(Outcome::Refused {
                            reason: "malformed",
                            refusal: None,
                        }));
                    }
                    Err(Unparsable::ParserFailed) => return Err(Stop::Panicked),
                }
            }
        };
        if let Some(domain) = parsed.from.as_ref().map(|a| a.domain().to_owned()) {
            let _ = m.from_domain.set(domain);
        }
        Ok(ControlFlow::Continue(parsed))
    }

    /// Parses and classifies on the blocking pool.
    async fn read(&self, envelope: &Envelope, raw: &std::sync::Arc<Vec<u8>>) -> Result<Read, Stop> {
        let (raw, null_sender, domain) =
            (raw.clone(), envelope.null_sender, self.reply_domain.clone());
        let size = raw.len();
        Ok(self
            .heavy
            .run_for(size, move || Parsed::read(&raw, null_sender, &domain))
            .await?)
    }

    /// A Message-ID filed in this thread before (or held there, waiting for a decision) is a
    /// duplicate, whatever else is true of this copy: checked before anything that could hold
    /// it for another reason. The commit checks again, where no other copy can slip in.
    pub(super) async fn not_a_duplicate(&self, m: &Incoming<'_>, item: &Inbound) -> Step<()> {
        let (Some(thread), Some(header)) = (item.thread, &item.header_message_id) else {
            return Ok(ControlFlow::Continue(()));
        };
        if m.release.is_some() || !self.store.already_received(thread, header).await? {
            return Ok(ControlFlow::Continue(()));
        }
        self.record(item.clone(), LedgerOutcome::Duplicate, "duplicate", None)
            .await?;
        Ok(ControlFlow::Break(Outcome::Duplicate { thread }))
    }

    /// The author is the participant: one mailbox in `From:`, and it is theirs. (The envelope
    /// sender may differ — forwarders, VERP and SRS rewrite it —: identity is the `From:`,
    /// which [`authenticate`](Pipeline::authenticate) then holds to a stricter proof.)
    pub(super) async fn written_by_participant(
        &self,
        m: &Incoming<'_>,
        parsed: &Parsed,
        target: &TokenTarget,
        item: &Inbound,
    ) -> Step<()> {
        let participant = Some(target.participant.id);
        // No author at all is not a message (RFC 5322 requires a From:): refused as
        // malformed where SMTP can still say so, held as such over IMAP.
        if parsed.from_mailboxes == 0 && m.release.is_none() {
            return self
                .unfiled(m, item.clone(), Unfiled::Malformed, participant, None)
                .await
                .map(ControlFlow::Break);
        }
        // Checked first: with two authors, "the" From address depends on which one a reader
        // (ours, a DMARC checker, a mail client) takes.
        if parsed.from_mailboxes != 1 && m.release.is_none() {
            return self
                .unfiled(m, item.clone(), Unfiled::MultipleFrom, participant, None)
                .await
                .map(ControlFlow::Break);
        }
        if parsed.from.as_ref() != Some(&target.participant.address) {
            return self
                .unfiled(
                    m,
                    item.clone(),
                    Unfiled::NotTheParticipant,
                    participant,
                    None,
                )
                .await
                .map(ControlFlow::Break);
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Does the sender's domain vouch for the `From:`, as `auth.policy` requires? A reply that
    /// needs more than a reply address to be believed must pass strictly (DMARC, or an aligned
    /// pass where the domain publishes none), whatever the policy: one linked only by a
    /// Message-ID (not a secret), one whose envelope sender is another address (identity then
    /// rests on the `From:` alone), one whose reply address has expired. A DNS failure asks
    /// the sender to retry. Skipped when a person releases a held message (they decided; what
    /// authentication found then is recorded with the filed message): the verdict is `None`
    /// only then.
    pub(super) async fn authenticate(
        &self,
        m: &Incoming<'_>,
        target: &TokenTarget,
        link: Link,
        item: &Inbound,
    ) -> Step<Option<Verdict>> {
        if m.release.is_some() {
            return Ok(ControlFlow::Continue(None));
        }
        let verdict = self
            .auth
            .verdict(
                &m.raw,
                m.envelope.peer.as_ref(),
                m.envelope.mail_from.as_deref(),
            )
            .await;
        let domain = target.participant.address.domain();
        let decision = verdict.decide(self.auth.policy(), domain);
        let proven = verdict.decide(AuthPolicy::RequireDmarcPass, domain) == Decision::File;
        let envelope_differs = m
            .envelope
            .mail_from
            .as_deref()
            .filter(|s| !s.is_empty())
            .is_some_and(|s| Address::parse(s).ok().as_ref() != Some(&target.participant.address));
        let strict = link == Link::Reference || envelope_differs || target.expired;
        let why = match decision {
            Decision::Retry => return Err(Stop::AuthRetry),
            Decision::File if !strict || proven => {
                return Ok(ControlFlow::Continue(Some(verdict)));
            }
            _ if link == Link::Reference => Unfiled::LinkedByReferences,
            _ if target.expired => Unfiled::TokenExpired {
                authenticated: false,
            },
            _ => Unfiled::NotAuthenticated,
        };
        info!(
            door = m.envelope.door.as_str(),
            policy = self.auth.policy().as_str(),
            auth = %verdict,
            strict,
            "sender not authenticated as the participant's domain"
        );
        self.unfiled(
            m,
            item.clone(),
            why,
            Some(target.participant.id),
            Some(&verdict),
        )
        .await
        .map(ControlFlow::Break)
    }

    /// Whether this conversation takes this reply by email: its reply address still current,
    /// the conversation in convenience mode for this participant, and open. (Archived is a
    /// participant's own filing, not a state: a reply to an archived conversation is filed.)
    /// A person releasing a held message decided these; only "open" still holds then, checked
    /// where the filing commits.
    pub(super) async fn takes_email(
        &self,
        m: &Incoming<'_>,
        target: &TokenTarget,
        item: &Inbound,
    ) -> Step<()> {
        if m.release.is_some() {
            return Ok(ControlFlow::Continue(()));
        }
        let why = if target.expired {
            Unfiled::TokenExpired {
                authenticated: true,
            }
        } else if target.mode == Mode::Secure || !target.by_email {
            // A recipient who has not consented to convenience mode (or withdrew it) is in a
            // secure thread as far as email goes.
            Unfiled::SecureThread
        } else if target.closed {
            Unfiled::ThreadClosed
        } else {
            return Ok(ControlFlow::Continue(()));
        };
        self.unfiled(m, item.clone(), why, Some(target.participant.id), None)
            .await
            .map(ControlFlow::Break)
    }

    /// What the person wrote. Nothing new: held, and they get the content-free notice — or,
    /// when a person releases it, the message's whole text is filed.
    pub(super) async fn reply_text(
        &self,
        m: &Incoming<'_>,
        parsed: &Parsed,
        target: &TokenTarget,
        verdict: Option<&Verdict>,
        item: &Inbound,
    ) -> Step<String> {
        let text = self.extract(target.thread, parsed).await?;
        if !text.trim().is_empty() {
            return Ok(ControlFlow::Continue(text));
        }
        match (m.release, parsed.body.as_deref()) {
            (Some(_), Some(body)) if !body.trim().is_empty() => {
                Ok(ControlFlow::Continue(body.trim().to_owned()))
            }
            _ => self
                .unfiled(
                    m,
                    item.clone(),
                    Unfiled::EmptyReply,
                    Some(target.participant.id),
                    verdict,
                )
                .await
                .map(ControlFlow::Break),
        }
    }

    /// The reply text. The marker line, when present, settled it while parsing; otherwise the
    /// words of what this person was sent are needed (and read): the latest messages and, when
    /// the reply answers an older notification, the messages that one carried.
    async fn extract(&self, thread: ThreadId, parsed: &Parsed) -> Result<String, Stop> {
        if let Some(text) = &parsed.marked {
            return Ok(text.clone());
        }
        let Some(body) = parsed.body.clone() else {
            return Ok(String::new());
        };
        let sent = self
            .store
            .sent_bodies(thread, self.answered(parsed), 11)
            .await?;
        let boilerplate = self.boilerplate.clone();
        Ok(self
            .heavy
            .run_for(body.len(), move || {
                let known = reply_text::Known::new(&sent).with_boilerplate(&boilerplate);
                reply_text::text_of(&body, &known)
            })
            .await?)
    }
}
