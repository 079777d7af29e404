//! DKIM signatures on every notification, so that receivers can tell Sealpost's mail from a
//! phisher's: the practice publishes the public key in DNS, Sealpost signs with the private
//! key (`outbound.dkim_key`, Ed25519 or RSA of at least 2048 bits, in PEM).
//!
//! `sealpost dkim-keygen` makes a key and prints the TXT record to publish. RSA is the default
//! there: Ed25519 signatures (RFC 8463) are still ignored by some large receivers, which then
//! see an unsigned message.

use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{DkimSigner, Done};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use zeroize::Zeroizing;

/// The header fields signed. `From` is listed twice: a second `From:` added on the way (one
/// of the ways to make a signed message say something else) breaks the signature.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Auto-Submitted",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no private key in PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")]
    NotPem(String),
    /// ring refuses RSA keys under 2048 bits, which receivers treat as unsigned anyway.
    #[error("{0} is neither an Ed25519 key nor an RSA key of 2048 to 8192 bits")]
    Unusable(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("cannot make a key: {0}")]
    Generate(String),
}

enum Signer {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

/// A loaded signing key with its domain and selector.
pub struct Dkim {
    signer: Signer,
    pub domain: String,
    pub selector: String,
}

impl Dkim {
    /// Loads the key at `path` to sign as `selector._domainkey.domain`.
    pub fn load(path: &Path, domain: &str, selector: &str) -> Result<Dkim, DkimError> {
        let shown = path.display().to_string();
        let pem = Zeroizing::new(std::fs::read(path).map_err(|source| DkimError::Read {
            path: shown.clone(),
            source,
        })?);
        let der =
            PrivateKeyDer::from_pem_slice(&pem).map_err(|_| DkimError::NotPem(shown.clone()))?;
        let signer = match &der {
            PrivateKeyDer::Pkcs8(p) => match Ed25519Key::from_pkcs8_der(p.secret_pkcs8_der()) {
                Ok(key) => Signer::Ed25519(build(key, domain, selector)),
                Err(_) => Signer::Rsa(build(rsa(der.clone_key(), &shown)?, domain, selector)),
            },
            PrivateKeyDer::Pkcs1(_) => {
                Signer::Rsa(build(rsa(der.clone_key(), &shown)?, domain, selector))
            }
            _ => return Err(DkimError::Unusable(shown)),
        };
        Ok(Dkim {
            signer,
            domain: domain.to_owned(),
            selector: selector.to_owned(),
        })
    }

    /// `message` with a `DKIM-Signature` header in front.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let signature = match &self.signer {
            Signer::Ed25519(s) => s.sign(message),
            Signer::Rsa(s) => s.sign(message),
        }
        .map_err(|e| DkimError::Sign(e.to_string()))?;
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }

    /// Which algorithm the key is for, as DKIM names it.
    pub fn algorithm(&self) -> &'static str {
        match self.signer {
            Signer::Ed25519(_) => "ed25519-sha256",
            Signer::Rsa(_) => "rsa-sha256",
        }
    }
}

fn build<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS.iter().copied())
}

fn rsa(der: PrivateKeyDer<'static>, shown: &str) -> Result<RsaKey<Sha256>, DkimError> {
    RsaKey::<Sha256>::from_key_der(der).map_err(|_| DkimError::Unusable(shown.into()))
}

/// Which kind of key `dkim-keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rsa2048,
    Ed25519,
}

/// A new key: the private key in PEM, and the value of the TXT record to publish.
pub struct NewKey {
    pub pem: Zeroizing<String>,
    pub record: String,
}

/// Makes a key pair.
pub fn generate(algorithm: Algorithm) -> Result<NewKey, DkimError> {
    let generate = |e: mail_auth::Error| DkimError::Generate(e.to_string());
    Ok(match algorithm {
        Algorithm::Rsa2048 => {
            let pair = DkimKeyPair::generate_rsa(2048).map_err(generate)?;
            let (private, public) = pair.into_inner();
            let private = Zeroizing::new(private);
            NewKey {
                pem: pem("RSA PRIVATE KEY", &private),
                record: format!(
                    "v=DKIM1; k=rsa; p={}",
                    data_encoding::BASE64.encode(&rsa_spki(&public))
                ),
            }
        }
        Algorithm::Ed25519 => {
            let pair = DkimKeyPair::generate_ed25519().map_err(generate)?;
            let (private, public) = pair.into_inner();
            let private = Zeroizing::new(private);
            NewKey {
                pem: pem("PRIVATE KEY", &private),
                record: format!(
                    "v=DKIM1; k=ed25519; p={}",
                    data_encoding::BASE64.encode(&public)
                ),
            }
        }
    })
}

/// PEM: base64 in 64-character lines between the labels.
fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(data_encoding::BASE64.encode(der));
    let mut out = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, the form DKIM records carry in
/// practice (what `openssl rsa -pubout` and opendkim-genkey publish).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const RSA_ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    der_len(&mut bits, pkcs1.len() + 1);
    bits.push(0x00);
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(&mut out, RSA_ALGORITHM.len() + bits.len());
    out.extend_from_slice(RSA_ALGORITHM);
    out.extend_from_slice(&bits);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        for (algorithm, name) in [
            (Algorithm::Ed25519, "ed25519-sha256"),
            (Algorithm::Rsa2048, "rsa-sha256"),
        ] {
            let key = generate(algorithm).unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, key.pem.as_bytes()).unwrap();
            let dkim = Dkim::load(&path, "example.org", "s1").unwrap();
            assert_eq!(dkim.algorithm(), name);
            let signed = dkim
                .sign(b"From: a@example.org\r\nTo: b@example.net\r\nSubject: x\r\n\r\nbody\r\n")
                .unwrap();
            let text = String::from_utf8(signed).unwrap();
            assert!(text.starts_with("DKIM-Signature: "), "{text}");
            assert!(text.contains(&format!("a={name}")) && text.contains("d=example.org"));
            assert!(key.record.starts_with("v=DKIM1; k="));
        }
    }

    #[test]
    fn the_rsa_record_is_a_subject_public_key_info() {
        let key = generate(Algorithm::Rsa2048).unwrap();
        let p = key.record.split("p=").nth(1).unwrap();
        let der = data_encoding::BASE64.decode(p.as_bytes()).unwrap();
        // What openssl prints for every 2048-bit RSA public key: SEQUENCE, length 290, then the
        // rsaEncryption algorithm identifier.
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(
            &der[4..19],
            &[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
                0x00
            ]
        );
        assert_eq!(der.len(), 294);
    }

    #[test]
    fn unusable_keys_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            Dkim::load(&path, "e.org", "s"),
            Err(DkimError::NotPem(_))
        ));
        assert!(matches!(
            Dkim::load(&dir.path().join("missing"), "e.org", "s"),
            Err(DkimError::Read { .. })
        ));
        // A 1024-bit RSA key, as openssl makes it.
        let short = dir.path().join("short.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-out",
            ])
            .arg(&short)
            .output()
            .expect("openssl is required (scripts/test.sh installs it)");
        assert!(made.status.success());
        assert!(matches!(
            Dkim::load(&short, "e.org", "s"),
            Err(DkimError::Unusable(_))
        ));
    }
}
