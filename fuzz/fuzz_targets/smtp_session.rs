//! The SMTP session fed whatever a client sends: arbitrary lines, pipelined commands, DATA,
//! dot-stuffing, a connection cut anywhere. The session runs against a real SQLite store with
//! one thread; `TOKEN` in the input is replaced by Jane's valid reply token, so the fuzzer
//! reaches DATA and the pipeline, not only the refusals at RCPT.
#![no_main]

mod contained;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sealpost::crypto::{Keyring, ReplyToken};
use sealpost::domain::{Address, Mode, Role, Via};
use sealpost::inbound::pipeline::Pipeline;
use sealpost::inbound::smtp::budget::DataBudget;
use sealpost::inbound::smtp::session::{SessionParams, Shared, serve};
use sealpost::net::slots::Slot;
use sealpost::store::{NewParticipant, NewThread, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct World {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    token: Vec<u8>,
    _dir: tempfile::TempDir,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::generate());
    let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
    let (shared, token) = runtime.block_on(async {
        let store = Store::open(&url, keyring.clone(), sealpost::clock::Clock::system()).await.unwrap();
        let person = |a: &str, role| NewParticipant {
            address: Address::parse(a).unwrap(),
            display_name: None,
            role,
        };
        let posted = store
            .create_thread(NewThread {
                subject: "S".into(),
                mode: Mode::Convenience,
                author: person("lee@clinic.test", Role::Staff),
                others: vec![person("jane@example.test", Role::Recipient)],
                body: "Your results are in.".into(),
                via: Via::Cli,
                shared: false,
            })
            .await
            .unwrap();
        let jane = store.thread(posted.thread_id).await.unwrap().participants[1].id;
        let token = ReplyToken::issue(&keyring, posted.thread_id, jane, sealpost::clock::Clock::system().now());
        let pipeline = Pipeline::new(
            store.clone(),
            "reply.example.test",
            "mx.example.test",
            30,
            Default::default(),
            // The relay path: what the session's client sends is read as a relay's
            // Authentication-Results (parsed, never trusted blindly), with no DNS.
            Arc::new(
                sealpost::inbound::auth::Checker::new(
                    &sealpost::config::Auth {
                        policy: sealpost::domain::AuthPolicy::RequireDmarcPass,
                        dns_servers: vec!["127.0.0.1:9".parse().unwrap()],
                        dns_timeout_secs: 1,
                        trusted_authserv_ids: vec!["mx.example.test".into()],
                        trusted_relays: vec!["127.0.0.1".parse().unwrap()],
                    },
                    "mx.example.test",
                )
                .unwrap(),
            ),
        );
        let shared = Arc::new(Shared {
            params: SessionParams {
                hostname: "mx.example.test".into(),
                max_message_bytes: 64 * 1024,
                max_report_bytes: 4096,
                max_recipients: 5,
                max_errors: 20,
                ehlo_timeout: Duration::from_secs(2),
                command_timeout: Duration::from_secs(2),
                min_data_rate: 1,
                data_grace: Duration::from_secs(2),
                max_duration: Duration::from_secs(5),
                tls: None,
            },
            pipeline,
            budget: DataBudget::new(1 << 20),
        });
        (shared, token.as_str().as_bytes().to_vec())
    });
    World {
        runtime,
        shared,
        token,
        _dir: dir,
    }
});

/// `input` with every `TOKEN` replaced by the valid token.
fn with_token(input: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + token.len());
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"TOKEN") {
            out.extend_from_slice(token);
            i += 5;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(init: contained::install(), |data: &[u8]| {
    let w = &*WORLD;
    let input = with_token(data, &w.token);
    w.runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let session = tokio::spawn(serve(
            server,
            std::net::Ipv4Addr::LOCALHOST.into(),
            w.shared.clone(),
            CancellationToken::new(),
            Slot::detached(),
        ));
        let _ = client.write_all(&input).await;
        let _ = client.shutdown().await;
        let mut answers = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answers)).await;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
    });
});
