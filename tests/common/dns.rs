//! A small authoritative DNS server for tests, on 127.0.0.1 (UDP and TCP, one port): it
//! answers from records the test sets, and can be told to fail (SERVFAIL) or to stay silent
//! for a name. Sealpost's resolver talks to it over real sockets, so SPF, DKIM and DMARC are
//! checked exactly as in production, against records the test controls.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_auth::hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use mail_auth::hickory_resolver::proto::rr::rdata::{A, SOA, TXT};
use mail_auth::hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// How the server treats one name.
#[derive(Clone)]
enum Behaviour {
    Answer,
    ServFail,
    Silent,
}

#[derive(Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    behaviour: HashMap<String, Behaviour>,
    /// Queries asked, by name and type.
    asked: HashMap<(String, RecordType), u64>,
}

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    /// Queries answered, of any kind.
    pub queries: Arc<AtomicU64>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl TestDns {
    /// Starts the server on a free port (UDP and TCP on the same one).
    pub fn start() -> TestDns {
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a free port for the test DNS server");
        let addr = udp.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicU64::new(0));
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        {
            let (zone, stop, queries) = (zone.clone(), stop.clone(), queries.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(reply) = answer(&zone, &buf[..n], 1232) {
                        queries.fetch_add(1, Ordering::Relaxed);
                        let _ = udp.send_to(&reply, from);
                    }
                }
            });
        }
        tcp.set_nonblocking(true).unwrap();
        {
            let (zone, stop, queries) = (zone.clone(), stop.clone(), queries.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    let (zone, queries) = (zone.clone(), queries.clone());
                    std::thread::spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        loop {
                            let mut len = [0u8; 2];
                            if stream.read_exact(&mut len).is_err() {
                                return;
                            }
                            let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                            if stream.read_exact(&mut query).is_err() {
                                return;
                            }
                            let Some(reply) = answer(&zone, &query, u16::MAX as usize) else {
                                return;
                            };
                            queries.fetch_add(1, Ordering::Relaxed);
                            let mut out = (reply.len() as u16).to_be_bytes().to_vec();
                            out.extend_from_slice(&reply);
                            if stream.write_all(&out).is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        }
        TestDns {
            addr,
            zone,
            stop,
            queries,
        }
    }

    /// Adds a TXT record (split into 255-byte strings as DNS requires).
    pub fn txt(&self, name: &str, value: &str) -> &Self {
        let chunks = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.add(name, RecordType::TXT, RData::TXT(TXT::new(chunks)))
    }

    /// Adds an A record.
    pub fn a(&self, name: &str, ip: Ipv4Addr) -> &Self {
        self.add(name, RecordType::A, RData::A(A(ip)))
    }

    /// Removes every record of `name`.
    pub fn clear(&self, name: &str) -> &Self {
        let mut zone = self.zone.lock().unwrap();
        zone.records.retain(|(n, _), _| *n != key(name));
        self
    }

    /// Answers SERVFAIL for `name` (a broken authoritative server).
    pub fn servfail(&self, name: &str) -> &Self {
        self.set(name, Behaviour::ServFail)
    }

    /// Never answers for `name` (an unreachable server: the resolver times out).
    pub fn silent(&self, name: &str) -> &Self {
        self.set(name, Behaviour::Silent)
    }

    /// Answers for `name` again.
    pub fn heal(&self, name: &str) -> &Self {
        self.set(name, Behaviour::Answer)
    }

    /// How often `name` was asked about (any type).
    pub fn asked(&self, name: &str) -> u64 {
        let name = key(name);
        let zone = self.zone.lock().unwrap();
        zone.asked
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, c)| c)
            .sum()
    }

    /// Every name and type asked about, with how often.
    pub fn asked_all(&self) -> Vec<(String, String, u64)> {
        let zone = self.zone.lock().unwrap();
        let mut all: Vec<_> = zone
            .asked
            .iter()
            .map(|((n, t), c)| (n.clone(), t.to_string(), *c))
            .collect();
        all.sort();
        all
    }

    fn add(&self, name: &str, kind: RecordType, data: RData) -> &Self {
        let mut zone = self.zone.lock().unwrap();
        zone.records
            .entry((key(name), kind))
            .or_default()
            .push(data);
        self
    }

    fn set(&self, name: &str, b: Behaviour) -> &Self {
        self.zone.lock().unwrap().behaviour.insert(key(name), b);
        self
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The reply to one query, or `None` to stay silent.
fn answer(zone: &Mutex<Zone>, query: &[u8], max: usize) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let q = query.queries.first()?.clone();
    let name = key(&q.name().to_ascii());
    let mut zone = zone.lock().unwrap();
    *zone
        .asked
        .entry((name.clone(), q.query_type()))
        .or_default() += 1;
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    if let Some(edns) = &query.edns {
        reply.set_edns(edns.clone());
    }
    match zone
        .behaviour
        .get(&name)
        .cloned()
        .unwrap_or(Behaviour::Answer)
    {
        Behaviour::Silent => return None,
        Behaviour::ServFail => {
            reply.metadata.response_code = ResponseCode::ServFail;
            return reply.to_vec().ok();
        }
        Behaviour::Answer => {}
    }
    let owner = Name::from_ascii(&name).ok()?;
    match zone.records.get(&(name.clone(), q.query_type())) {
        Some(data) => {
            for d in data {
                reply.add_answer(Record::from_rdata(owner.clone(), 300, d.clone()));
            }
        }
        None => {
            let exists = zone.records.keys().any(|(n, _)| *n == name);
            reply.metadata.response_code = if exists {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            // As a real authoritative server does: the zone's SOA, whose minimum is how long
            // resolvers may remember that the answer is empty (RFC 2308).
            let apex = Name::from_ascii("test.").unwrap();
            let soa = SOA::new(
                Name::from_ascii("ns.test.").unwrap(),
                Name::from_ascii("hostmaster.test.").unwrap(),
                1,
                3600,
                600,
                86400,
                300,
            );
            reply.add_authority(Record::from_rdata(apex, 300, RData::SOA(soa)));
        }
    }
    let bytes = reply.to_vec().ok()?;
    if bytes.len() > max {
        let mut truncated = Message::response(query.metadata.id, query.metadata.op_code);
        truncated.metadata.truncation = true;
        truncated.add_query(q);
        return truncated.to_vec().ok();
    }
    Some(bytes)
}
