//! The HTTP API against the real daemon, driven by curl (a real HTTP client) over a real
//! socket: keys and scopes, the directory, threads, problem details for every error status,
//! and the OpenAPI document covering every route.

use crate::common;

use std::time::Duration;

use common::http::{Api, key};
use common::{Daemon, Sandbox};
use serde_json::{Value, json};

#[test]
fn keys_scopes_and_errors() {
    let sb = Sandbox::with_keyring("");
    let (_, write) = key(&sb, "write");
    let (read_id, read) = key(&sb, "read");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };

    assert_eq!(api.call("GET", "/healthz", None, None).status, 200);
    assert_eq!(api.call("GET", "/readyz", None, None).status, 200);

    let r = api.call("GET", "/v1/people", None, None);
    assert_eq!(r.status, 401);
    assert!(r.headers.contains("content-type: application/problem+json"));
    assert!(r.headers.contains("www-authenticate: bearer"));
    assert_eq!(r.problem_type(), "urn:sealpost:problem:unauthorized");
    let forged = format!("{}x", &write[..write.len() - 1]);
    assert_eq!(
        api.call("GET", "/v1/people", Some(&forged), None).status,
        401
    );
    assert_eq!(
        api.call("GET", "/v1/people", Some("sp_nonsense"), None)
            .status,
        401
    );

    assert_eq!(api.call("GET", "/v1/people", Some(&read), None).status, 200);
    let r = api.call(
        "POST",
        "/v1/people",
        Some(&read),
        Some(r#"{"address":"kim@example.test"}"#),
    );
    assert_eq!(r.status, 403, "a read key cannot write");
    sb.run(&["apikey", "revoke", &read_id]).ok();
    assert_eq!(
        api.call("GET", "/v1/people", Some(&read), None).status,
        401,
        "a revoked key is refused"
    );
    let listed = sb.run(&["apikey", "list"]).ok().json_lines();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|k| !k.to_string().contains(&write[3..20])),
        "list never shows a key"
    );

    // Bodies: 415, 400, 422 (naming what is wrong), 413.
    let w = Some(write.as_str());
    let r = api.call_with("POST", "/v1/people", w, Some("{}"), "text/plain");
    assert_eq!(r.status, 415, "{}", r.body);
    let r = api.call("POST", "/v1/people", w, Some("{\"address\":"));
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:malformed-json");
    let r = api.call("POST", "/v1/people", w, Some(r#"{"address": 5}"#));
    assert_eq!(r.status, 422);
    assert!(
        r.body["detail"].as_str().unwrap().contains("address"),
        "{}",
        r.body
    );
    let r = api.call(
        "POST",
        "/v1/people",
        w,
        Some(r#"{"address":"kim@example.test","birth_date":"1990-02-30"}"#),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["field"], "birth_date");
    let big = format!(
        r#"{{"address":"kim@example.test","name":"{}"}}"#,
        "x".repeat(2_000_000)
    );
    assert_eq!(api.call("POST", "/v1/people", w, Some(&big)).status, 413);
    let r = api.call("GET", "/v1/no-such-thing", w, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:no-such-route");
    assert_eq!(api.call("DELETE", "/v1/threads", w, None).status, 405);
    daemon.stop();
}

#[test]
fn directory_threads_and_notifications() {
    let sb = Sandbox::with_keyring("");
    let (_, write) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    let w = Some(write.as_str());

    // People.
    let r = api.call(
        "POST",
        "/v1/people",
        w,
        Some(
            &json!({"address": "Jane@Example.TEST", "name": "Jane Doe", "birth_date": "1984-03-07",
                    "mobile": "+49 151 12345678"})
            .to_string(),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["address"], "jane@example.test");
    assert_eq!(r.body["mobile"], "+4915112345678");
    let again = api.call(
        "POST",
        "/v1/people",
        w,
        Some(r#"{"address":"jane@example.test"}"#),
    );
    assert_eq!(again.status, 409);
    let r = api.call(
        "PATCH",
        "/v1/people/jane@example.test",
        w,
        Some(r#"{"mobile": null, "notifications": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["mobile"], Value::Null);
    assert_eq!(r.body["name"], "Jane Doe", "a field left out stays");
    let r = api.call(
        "PUT",
        "/v1/people/jane@example.test/consent",
        w,
        Some(r#"{"convenience": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["convenience"], true);
    assert!(
        r.body["convenience_by"]
            .as_str()
            .unwrap()
            .starts_with("api:")
    );
    assert!(
        r.body["convenience_text"]
            .as_str()
            .unwrap()
            .contains("not fully protected")
    );
    assert_eq!(
        api.call("GET", "/v1/people/nobody@example.test", w, None)
            .status,
        404
    );
    assert_eq!(
        api.call("GET", "/v1/people/not-an-address", w, None).status,
        400
    );

    // A thread, by API: Jane consented, so hers carries content; Tom gets a secure one.
    let r = api.call(
        "POST",
        "/v1/threads",
        w,
        Some(
            &json!({"subject": "Lab results", "mode": "convenience",
                    "from": {"address": "lee@clinic.example.test", "name": "Dr Lee"},
                    "to": [{"address": "jane@example.test"}, {"address": "tom@example.test"}],
                    "shared": true, "body": "Your results are in."})
            .to_string(),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let thread = r.body["thread_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["notifications"].as_array().unwrap().len(), 2);
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/messages"),
        w,
        Some(r#"{"from": "lee@clinic.example.test", "body": "One more thing."}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/messages"),
        w,
        Some(r#"{"from": "stranger@example.test", "body": "Hi"}"#),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["field"], "from");

    let t = api.call("GET", &format!("/v1/threads/{thread}"), w, None);
    assert_eq!(t.status, 200);
    assert_eq!(t.body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(t.body["messages"][0]["via"], "api");
    let content: Vec<(String, bool)> = t.body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap().to_owned(),
                p["content_by_email"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        content.contains(&("jane@example.test".into(), true)),
        "{content:?}"
    );
    assert!(
        content.contains(&("tom@example.test".into(), false)),
        "{content:?}"
    );

    // Messages one by one, each with the status of its notifications.
    let list = api.call("GET", &format!("/v1/threads/{thread}/messages"), w, None);
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    assert_eq!(list.body[1]["body"], "One more thing.");
    let first = list.body[0]["message_id"].as_str().unwrap();
    let one = api.call(
        "GET",
        &format!("/v1/threads/{thread}/messages/{first}"),
        w,
        None,
    );
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["body"], "Your results are in.");
    let statuses = one.body["notifications"].as_array().unwrap();
    assert_eq!(statuses.len(), 2, "{}", one.body);
    assert!(statuses.iter().all(|n| n["message_id"] == first));
    assert_eq!(
        api.call(
            "GET",
            &format!("/v1/threads/{thread}/messages/00000000000000bb"),
            w,
            None
        )
        .status,
        404
    );

    // Someone joins (a second patient: only when the conversation is to be shared); they
    // cannot join twice, nor come back once removed.
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/participants"),
        w,
        Some(r#"{"address": "Sam@Example.TEST", "name": "Sam Roe"}"#),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:not-shared");
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/participants"),
        w,
        Some(r#"{"address": "Sam@Example.TEST", "name": "Sam Roe", "shared": true}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["address"], "sam@example.test");
    assert_eq!(r.body["role"], "recipient");
    let again = api.call(
        "POST",
        &format!("/v1/threads/{thread}/participants"),
        w,
        Some(r#"{"address": "sam@example.test"}"#),
    );
    assert_eq!(again.status, 409);
    assert_eq!(
        again.problem_type(),
        "urn:sealpost:problem:already-participant"
    );
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/participants"),
        w,
        Some(r#"{"address": "not an address"}"#),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["field"], "address");
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/messages"),
        w,
        Some(r#"{"from": "lee@clinic.example.test", "body": "Welcome, Sam."}"#),
    );
    assert_eq!(
        r.body["notifications"].as_array().unwrap().len(),
        3,
        "Sam is notified of what is posted after he joined"
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/v1/threads/{thread}/participants/sam@example.test"),
            w,
            None
        )
        .status,
        204
    );
    let back = api.call(
        "POST",
        &format!("/v1/threads/{thread}/participants"),
        w,
        Some(r#"{"address": "sam@example.test"}"#),
    );
    assert_eq!(back.status, 409, "{}", back.body);
    // The audit trail as a feed: what happened, never what was written.
    let events = api.call("GET", "/v1/events?after=0", w, None);
    assert_eq!(events.status, 200);
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"thread.created") && kinds.contains(&"message.posted"),
        "{kinds:?}"
    );
    assert!(
        !events.body.to_string().contains("Your results"),
        "no content in events"
    );
    let last = events.body.as_array().unwrap().last().unwrap()["id"]
        .as_i64()
        .unwrap();
    let none = api.call("GET", &format!("/v1/events?after={last}"), w, None);
    assert_eq!(none.body.as_array().unwrap().len(), 0);
    let inbound = api.call("GET", "/v1/inbound?since=2000-01-01T00:00:00Z", w, None);
    assert_eq!(inbound.status, 200);
    assert_eq!(inbound.body, json!([]));
    let list = api.call("GET", "/v1/threads", w, None);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["next_cursor"], Value::Null);

    // The notifications go out (spool) and their status shows.
    let n = common::wait_for(std::time::Duration::from_secs(30), || {
        let r = api.call(
            "GET",
            &format!("/v1/threads/{thread}/notifications"),
            w,
            None,
        );
        let rows = r.body.as_array().cloned().unwrap_or_default();
        // Two per post to Jane and Tom, and Sam's (sent, or cancelled when he was removed).
        let settled = rows.iter().all(|n| {
            n["status"] == "sent"
                || (n["recipient"] == "sam@example.test" && n["status"] == "cancelled")
        });
        (rows.len() == 7 && settled).then_some(rows)
    })
    .expect("every notification sent");
    let jane_modes: Vec<&str> = n
        .iter()
        .filter(|x| x["recipient"] == "jane@example.test")
        .map(|x| x["mode"].as_str().unwrap())
        .collect();
    assert_eq!(jane_modes, vec!["convenience"; 3]);

    // 404 for an unknown thread, 409 for a closed one; a person in a thread is not removed.
    assert_eq!(
        api.call("GET", "/v1/threads/00000000000000aa", w, None)
            .status,
        404
    );
    assert_eq!(
        api.call("GET", "/v1/threads/xyz/notifications", w, None)
            .status,
        404
    );
    let r = api.call("POST", &format!("/v1/threads/{thread}/close"), w, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "closed");
    let late = || {
        api.call(
            "POST",
            &format!("/v1/threads/{thread}/messages"),
            w,
            Some(r#"{"from": "lee@clinic.example.test", "body": "Late."}"#),
        )
    };
    let r = late();
    assert_eq!(r.status, 409);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:closed");
    let r = api.call("POST", &format!("/v1/threads/{thread}/reopen"), w, None);
    assert_eq!(r.body["status"], "open");
    assert_eq!(late().status, 201);
    let path = format!("/v1/threads/{thread}/participants/tom@example.test");
    assert_eq!(api.call("DELETE", &path, w, None).status, 204);
    assert_eq!(api.call("DELETE", &path, w, None).status, 404);
    let r = api.call("DELETE", "/v1/people/tom@example.test", w, None);
    assert_eq!(r.status, 204, "no longer in a thread: {}", r.body);
    sb.run(&["thread", "close", &thread]).ok();
    let r = api.call("DELETE", "/v1/people/jane@example.test", w, None);
    assert_eq!(r.status, 409);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:person-in-use");
    daemon.stop();
}

/// Every operation in the OpenAPI document is served (none falls through to "no such
/// route"), and every route the tests above use is in the document.
#[test]
fn openapi_document_covers_every_route() {
    let sb = Sandbox::with_keyring("");
    let (_, write) = key(&sb, "admin");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    let doc = api.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc.body["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    for expected in [
        ("GET", "/v1/people"),
        ("POST", "/v1/people"),
        ("GET", "/v1/people/{address}"),
        ("PATCH", "/v1/people/{address}"),
        ("DELETE", "/v1/people/{address}"),
        ("PUT", "/v1/people/{address}/consent"),
        ("POST", "/v1/people/{address}/unlock"),
        ("PUT", "/v1/people/{address}/passcode"),
        ("GET", "/v1/threads"),
        ("POST", "/v1/threads"),
        ("GET", "/v1/threads/{thread_id}"),
        ("POST", "/v1/threads/{thread_id}/messages"),
        ("GET", "/v1/threads/{thread_id}/messages"),
        ("GET", "/v1/threads/{thread_id}/messages/{message_id}"),
        ("POST", "/v1/threads/{thread_id}/participants"),
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks/{webhook_id}"),
        ("DELETE", "/v1/webhooks/{webhook_id}"),
        ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
        ("GET", "/v1/threads/{thread_id}/notifications"),
        ("POST", "/v1/threads/{thread_id}/close"),
        ("POST", "/v1/threads/{thread_id}/reopen"),
        ("DELETE", "/v1/threads/{thread_id}/participants/{address}"),
        ("GET", "/v1/events"),
        ("GET", "/v1/inbound"),
    ] {
        assert!(
            operations
                .iter()
                .any(|(m, p)| m == expected.0 && p == expected.1),
            "{expected:?} is not in the OpenAPI document"
        );
    }
    for (method, path) in &operations {
        let concrete = path
            .replace("{address}", "nobody@example.test")
            .replace("{thread_id}", "00000000000000aa")
            .replace("{message_id}", "00000000000000bb")
            .replace("{webhook_id}", "00000000000000cc");
        let body = (method != "GET" && method != "DELETE").then_some("{}");
        let r = api.call(method, &concrete, Some(&write), body);
        assert_ne!(
            r.problem_type(),
            "urn:sealpost:problem:no-such-route",
            "{method} {path} is documented but not served"
        );
        assert!(r.status < 500, "{method} {path}: {}", r.status);
    }
    daemon.stop();
}

/// A POST retried with the same Idempotency-Key gets the first answer, not a second thread.
#[test]
fn idempotent_posts() {
    let sb = Sandbox::with_keyring("");
    let (_, write) = key(&sb, "write");
    let (_, other) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    let body = json!({"subject": "Lab results", "from": {"address": "lee@clinic.example.test"},
                      "to": [{"address": "jane@example.test"}], "body": "Your results are in."})
    .to_string();
    let first = api.post_once("/v1/threads", &write, "retry-1", &body);
    assert_eq!(first.status, 201, "{}", first.body);
    let again = api.post_once("/v1/threads", &write, "retry-1", &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the same answer");
    assert!(again.headers.contains("idempotent-replayed: true"));
    let threads = api.call("GET", "/v1/threads", Some(&write), None);
    assert_eq!(
        threads.body["items"].as_array().unwrap().len(),
        1,
        "one thread, not two"
    );

    // The same key for a different request is refused; another key's keys are its own.
    let changed = body.replace("Your results", "Other results");
    let r = api.post_once("/v1/threads", &write, "retry-1", &changed);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.problem_type(),
        "urn:sealpost:problem:idempotency-key-reused"
    );
    let r = api.post_once("/v1/threads", &other, "retry-1", &changed);
    assert_eq!(r.status, 201, "{}", r.body);

    // A remembered answer with personal data in it is sealed like the rest.
    let person = json!({"address": "kim@example.test", "name": "Kimberly Quux-Remembered",
                        "mobile": "+4915199887766"})
    .to_string();
    let first = api.post_once("/v1/people", &write, "person-1", &person);
    assert_eq!(first.status, 201, "{}", first.body);
    let again = api.post_once("/v1/people", &write, "person-1", &person);
    assert_eq!(again.body, first.body);
    let stored = common::stored_bytes(&sb);
    let stored = String::from_utf8_lossy(&stored);
    assert!(!stored.contains("Quux-Remembered") && !stored.contains("4915199887766"));

    // An error answer is kept too (the request was not carried out; retrying changes nothing).
    let bad =
        r#"{"subject": "", "from": {"address": "lee@clinic.example.test"}, "to": [], "body": "x"}"#;
    let r = api.post_once("/v1/threads", &write, "retry-2", bad);
    assert_eq!(r.status, 400);
    let r2 = api.post_once("/v1/threads", &write, "retry-2", bad);
    assert_eq!(r2.status, 400);
    assert!(r2.headers.contains("idempotent-replayed: true"));
    assert!(r2.headers.contains("application/problem+json"));
    let r = api.request(
        "POST",
        "/v1/threads",
        Some(&write),
        Some(&body),
        "application/json",
        &["Idempotency-Key: \u{7f}bad key"],
    );
    assert_eq!(r.status, 400);
    daemon.stop();
}

/// Pages of threads stay stable while threads are made; filters narrow them.
#[test]
fn thread_pages_and_filters() {
    let sb = Sandbox::with_keyring("");
    let (_, write) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    let w = Some(write.as_str());
    let make = |to: &str| {
        let r = api.call(
            "POST",
            "/v1/threads",
            w,
            Some(
                &json!({"subject": "S", "from": {"address": "lee@clinic.example.test"},
                        "to": [{"address": to}], "body": "Hello."})
                .to_string(),
            ),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["thread_id"].as_str().unwrap().to_owned()
    };
    let mut made: Vec<String> = (0..5)
        .map(|i| make(&format!("p{i}@example.test")))
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/threads?limit=2&cursor={c}"),
            None => "/v1/threads?limit=2".to_owned(),
        };
        let page = api.call("GET", &path, w, None);
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["thread_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        if pages == 1 {
            // A thread made while paging lands before the first page, not in the next ones.
            make("late@example.test");
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no thread twice: {seen:?}");
    made.sort();
    assert_eq!(sorted, made, "every thread made before paging, once");

    let only = api.call("GET", "/v1/threads?participant=p3@example.test", w, None);
    assert_eq!(only.body["items"].as_array().unwrap().len(), 1);
    let open = api.call("GET", "/v1/threads?status=closed", w, None);
    assert_eq!(open.body["items"].as_array().unwrap().len(), 0);
    let future = api.call(
        "GET",
        "/v1/threads?updated_since=2100-01-01T00:00:00Z",
        w,
        None,
    );
    assert_eq!(future.body["items"].as_array().unwrap().len(), 0);
    let past = api.call(
        "GET",
        "/v1/threads?updated_since=2000-01-01T00:00:00Z",
        w,
        None,
    );
    assert_eq!(past.body["items"].as_array().unwrap().len(), 6);
    for (query, field) in [
        ("cursor=bogus", "cursor"),
        ("limit=0", "limit"),
        ("status=archived", "status"),
        ("updated_since=yesterday", "updated_since"),
    ] {
        let r = api.call("GET", &format!("/v1/threads?{query}"), w, None);
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.body["field"], field, "{query}");
    }
    daemon.stop();
}

/// A key over `api.requests_per_minute` is answered 429 with Retry-After; another key is not.
#[test]
fn rate_limited_per_key() {
    let port = common::free_port();
    let sb = Sandbox::with_keyring(&format!(
        "\n[api]\nlisten = \"127.0.0.1:{port}\"\nrequests_per_minute = 3\n"
    ));
    let (_, first) = key(&sb, "read");
    let (_, second) = key(&sb, "read");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port };
    let statuses: Vec<u16> = (0..5)
        .map(|_| api.call("GET", "/v1/people", Some(&first), None).status)
        .collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let r = api.call("GET", "/v1/people", Some(&first), None);
    assert_eq!(r.status, 429);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:rate-limited");
    assert!(r.headers.contains("retry-after: "), "{}", r.headers);
    assert_eq!(
        api.call("GET", "/v1/people", Some(&second), None).status,
        200
    );
    let doc = api.call("GET", "/v1/openapi.json", None, None);
    assert!(
        doc.body["paths"]["/v1/people"]["get"]["responses"]["429"].is_object(),
        "429 is documented"
    );
    daemon.stop();
}

/// `/metrics` tells what happened at every door, by closed vocabularies only; `/readyz` says
/// ready once the daemon runs.
#[test]
fn metrics_count_what_happened() {
    let sb = Sandbox::with_keyring("");
    let (_, write) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    assert_eq!(api.call("GET", "/readyz", None, None).status, 200);

    let thread = sb.new_thread("secure", "Scan", "Your scan is booked.\n");
    common::wait_outbox(&sb, std::time::Duration::from_secs(20), |rows| {
        rows.iter().all(|r| r["status"] == "sent")
    });
    assert_eq!(
        api.call("GET", "/v1/people", Some(&write), None).status,
        200
    );
    assert_eq!(
        api.call("GET", "/v1/threads/00000000000000aa", Some(&write), None)
            .status,
        404
    );
    // An SMTP session: mail to postmaster is for whoever runs the mail system (held, in no
    // thread), a made-up reply address is refused at RCPT.
    let sent = common::smtp_send(
        sb.smtp_port,
        "someone@example.net",
        &["postmaster@reply.example.test", "r-bogus@reply.example.test"],
        b"From: someone@example.net\r\nTo: postmaster@reply.example.test\r\nSubject: hi\r\n\r\nhello\r\n",
        None,
    );
    let refused = sent["rcpt"]["r-bogus@reply.example.test"][0]
        .as_i64()
        .unwrap();
    assert!(refused >= 500, "{sent}");

    let r = api.call("GET", "/metrics", None, None);
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains("content-type: application/openmetrics-text"),
        "{}",
        r.headers
    );
    let text = r.body.as_str().unwrap().to_owned();
    for expected in [
        "sealpost_smtp_sessions_total{result=\"accepted\"} 1".to_owned(),
        format!("sealpost_smtp_refusals_total{{code=\"{refused}\"}} 1"),
        "sealpost_inbound_messages_total{door=\"smtp\",outcome=\"held\",reason=\"postmaster\"} 1"
            .to_owned(),
        "sealpost_outbox_attempts_total{result=\"sent\"} 1".to_owned(),
        "sealpost_outbox_notifications{status=\"sent\"} 1".to_owned(),
        "sealpost_outbox_notifications{status=\"failed\"} 0".to_owned(),
        "sealpost_notification_delivery_seconds_count 1".to_owned(),
        "sealpost_held_messages 1".to_owned(),
        "sealpost_api_requests_total{route=\"/v1/people\",method=\"GET\",status=\"200\"} 1"
            .to_owned(),
        "sealpost_api_requests_total{route=\"/v1/threads/{thread_id}\",method=\"GET\",status=\"404\"} 1"
            .to_owned(),
        "sealpost_api_request_duration_seconds_count{route=\"/v1/people\",method=\"GET\"} 1"
            .to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected} missing from:\n{text}");
    }
    assert!(text.contains("sealpost_store_commit_duration_seconds_count"));
    assert!(text.ends_with("# EOF\n"));
    // Never an address, a thread id, or a subject.
    for private in ["example.net", "example.test", thread.as_str(), "Scan"] {
        assert!(!text.contains(private), "{private} in /metrics");
    }
    let stopped = daemon.stop();
    assert_eq!(stopped.status, 0);
}

/// With api.tls_cert/api.tls_key the API speaks only TLS, with that certificate; a client that
/// connects and never finishes its handshake holds up nobody else.
#[test]
fn api_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, tls_key) = common::self_signed_cert(tmp.path());
    let port = common::free_port();
    let sb = Sandbox::with_keyring(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        tls_key.display()
    ));
    let (_, read) = key(&sb, "read");
    let daemon = Daemon::start(&sb, &[]);
    // A silent client, connected first.
    let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let curl = |url: &str, extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ca = cert.to_str().unwrap();
    let auth = format!("Authorization: Bearer {read}");
    assert_eq!(
        curl(
            &format!("https://localhost:{port}/v1/people"),
            &["--cacert", ca, "-H", &auth]
        ),
        "200"
    );
    assert_eq!(
        curl(
            &format!("https://localhost:{port}/healthz"),
            &["--cacert", ca]
        ),
        "200"
    );
    // Served over TLS, every answer pins HTTPS (issue 24, finding 12); errors too.
    for path in ["/healthz", "/v1/people", "/nothing-here"] {
        let head = std::process::Command::new("curl")
            .args([
                "-s",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
                "--cacert",
                ca,
            ])
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
        assert!(
            head.contains("strict-transport-security: max-age=31536000"),
            "{path}: {head}"
        );
    }
    // Not trusted without the certificate; no answer in plain HTTP.
    assert_eq!(
        curl(&format!("https://localhost:{port}/healthz"), &[]),
        "000"
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/healthz"), &[]),
        "000"
    );
    daemon.stop();

    // Anywhere but loopback needs TLS (or a proxy, said so).
    let sb = Sandbox::new("[api]\nlisten = \"0.0.0.0:0\"\n");
    let r = sb.run(&["check-config"]);
    assert_eq!(r.status, 64, "{}", r.stderr);
    assert!(r.stderr.contains("api.tls_cert"), "{}", r.stderr);
}

/// Issue 24, finding 10: a client that dropped mid-request left its Idempotency-Key answering
/// 409 "in progress" for 24 hours — usually after the thread was created, so a retry with a
/// new key sent the patient a duplicate. A request whose body arrived is carried out whatever
/// the client does, and its key resolves to the real outcome: the retry gets the answer.
#[test]
fn a_client_that_drops_mid_request_gets_the_real_outcome_on_retry() {
    use std::io::Write;
    let sb = Sandbox::with_keyring("");
    let (_, w) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    let body = json!({"subject": "Lab results", "from": {"address": "lee@clinic.example.test"},
                      "to": [{"address": "jane@example.test"}], "body": "Your results are in."})
    .to_string();
    // The database is busy (another process holds its lock) while the request is handled…
    let lock = rusqlite::Connection::open(sb.data_dir().join("sealpost.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", sb.api_port)).unwrap();
    write!(
        c,
        "POST /v1/threads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {w}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: dropped-1\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // …and the client gives up and goes away before it is answered.
    std::thread::sleep(Duration::from_millis(700));
    c.shutdown(std::net::Shutdown::Both).unwrap();
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    // The retry with the same key gets the first request's answer: one thread, not two.
    let retry = common::wait_for(Duration::from_secs(20), || {
        let r = api.post_once("/v1/threads", &w, "dropped-1", &body);
        (r.status != 409).then_some(r)
    })
    .expect("the key resolves");
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert!(
        retry
            .headers
            .to_ascii_lowercase()
            .contains("idempotent-replayed: true"),
        "{}",
        retry.headers
    );
    let threads = sb.run(&["thread", "list"]).ok().json_lines();
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert_eq!(threads[0]["thread_id"], retry.body["thread_id"]);
    daemon.stop();
}

/// Issue 24, finding 9: subjects took bidi overrides, zero-width characters and 300 000
/// characters through the API. Subjects and names are checked the same way at every door:
/// one line, at most 200 characters, nothing hidden or direction-changing.
#[test]
fn subjects_and_names_are_checked_the_same_way_everywhere() {
    let sb = Sandbox::with_keyring("");
    let (_, w) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port: sb.api_port };
    let thread = |subject: &str, name: &str| {
        api.call(
            "POST",
            "/v1/threads",
            Some(&w),
            Some(
                &json!({"subject": subject, "from": {"address": "lee@clinic.example.test"},
                        "to": [{"address": "jane@example.test", "name": name}],
                        "body": "Hello."})
                .to_string(),
            ),
        )
    };
    for (subject, name) in [
        ("x".repeat(300_000), "Jane Doe".to_owned()),
        ("Lab \u{202e}stluser".to_owned(), "Jane Doe".to_owned()),
        ("Lab\u{200b}results".to_owned(), "Jane Doe".to_owned()),
        ("Lab results".to_owned(), "Jane\u{202e}Doe".to_owned()),
        ("Lab results".to_owned(), "x".repeat(201)),
    ] {
        let r = thread(&subject, &name);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.problem_type(), "urn:sealpost:problem:invalid-field");
    }
    assert_eq!(thread("Lab results", "Jane Doe").status, 201);
    // The CLI says the same.
    for args in [
        vec!["--subject", "Lab \u{202e}stluser"],
        vec!["--subject", &"x".repeat(201)],
    ] {
        let mut all = vec![
            "thread",
            "new",
            "--from",
            "lee@clinic.example.test",
            "--to",
            "jane@example.test",
        ];
        all.extend(args);
        let r = sb.run_with_stdin(&all, "Hello.");
        assert_ne!(r.status, 0);
        assert!(r.stderr.contains("--subject"), "{}", r.stderr);
    }
    daemon.stop();
}
