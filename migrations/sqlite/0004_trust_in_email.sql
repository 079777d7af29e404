-- Trust in email: sender authentication (SPF, DKIM, DMARC) of inbound replies, and how
-- notifications left.
--
-- `auth` is one line saying what authentication found and who found it, results and domains
-- only (never a local part): e.g. "spf=pass smtp.mailfrom=example.org; dkim=pass
-- header.d=example.org; dmarc=pass policy.dmarc=reject header.from=example.org (checked by
-- Sealpost)". For a message a person released from the held queue it starts "released by".
-- NULL for messages that did not come by email, and for replies filed before this version.
ALTER TABLE messages ADD COLUMN auth TEXT;
ALTER TABLE held ADD COLUMN auth TEXT;

-- How each notification reached the relay: "TLSv1.3 TLS13_AES_256_GCM_SHA384", "none" (clear
-- text: a loopback relay, or a content-free notification to a relay that offers no TLS), or
-- NULL (the spool, or not sent yet).
ALTER TABLE outbox ADD COLUMN tls TEXT;
