//! `clearcount upload --now` against `clearcount-server serve --dev` (and against a real
//! server, which refuses the week in progress), with the example tool `greet`.

use clearcount_tests::e2e::http_get;
use clearcount_tests::*;

/// Wednesday of the week of 2026-11-23.
const NOW: &str = "2026-11-25T10:00:00Z";
const TODAY: &str = "2026-11-25";
const WEEK: &str = "2026-11-23";

/// A greet log served by `clearcount-server serve --dev` (or without `--dev`).
fn server(dev: bool) -> GreetServer {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let log_dir = tmp.path().join("log");
    let signer = signer();
    make_log(&log_dir, &signer, &[&greet_config(1.0)]);
    let args: &[&str] = if dev { &["--dev"] } else { &[] };
    let server = Server::start_with(&log_dir, &tmp.path().join("data"), TODAY, args);
    GreetServer {
        dir: tmp.path().join("cc"),
        url: server.url(),
        server,
        key: signer.verifier().to_string(),
        tmp,
    }
}

/// greet opted in this very week (through its own `telemetry on`), then run once.
fn opted_in_and_used(s: &GreetServer) {
    let ep = Some((s.url.as_str(), s.key.as_str()));
    let on = greet(&s.dir, NOW, ep, &["telemetry", "on", "--yes"]);
    assert!(on.status.success(), "{on:?}");
    let run = greet(&s.dir, NOW, ep, &["alice"]);
    assert!(run.status.success(), "{run:?}");
}

#[test]
fn a_development_server_takes_the_week_in_progress_and_says_what_it_is() {
    let s = server(true);
    opted_in_and_used(&s);
    let o = clearcount(&s.dir, NOW, &["upload", "--now"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{o:?}");
    assert!(text.contains("the week so far was sent"), "{text}");
    let stored = s.server.stored();
    assert_eq!(stored.len(), 1, "{stored:?}\n{}", s.server.output());
    let r: serde_json::Value = serde_json::from_str(&stored[0]).unwrap();
    assert_eq!(r["week"], WEEK);
    assert_eq!(r["programs"][0]["name"], "greet");
    // The copy kept is what the server stored; the week's own upload is left alone.
    let weeks = upload_state(&s.dir).join("weeks");
    let copy = std::fs::read_to_string(weeks.join(format!("{WEEK}.now.json"))).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&copy).unwrap(), r);
    for kind in ["sent.json", "pending.json", "unsampled", "rejected.json"] {
        assert!(!weeks.join(format!("{WEEK}.{kind}")).exists(), "{kind}");
    }
    // The report shows in the week's aggregates at once.
    let agg = e2e::http_json(&format!("{}/data/aggregates/{WEEK}.json", s.url));
    assert!(agg.to_string().contains("\"greet\""), "{agg}");
    // Every page says this is a development server.
    for page in ["/", "/config", "/programs/greet"] {
        let r = reqwest::blocking::Client::new()
            .get(format!("{}{page}", s.url))
            .header("accept", "text/html")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{page}");
        assert!(r.headers().contains_key("x-clearcount-dev"), "{page}");
        let body = r.text().unwrap();
        assert!(body.contains("DEVELOPMENT SERVER"), "{page}: {body}");
        assert!(body.contains("<title>[dev] "), "{page}");
    }
}

#[test]
fn a_real_server_refuses_the_week_in_progress_and_nothing_is_marked() {
    let s = server(false);
    opted_in_and_used(&s);
    let o = clearcount(&s.dir, NOW, &["upload", "--now"]);
    let text = stdout(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("refused by the server: HTTP 422"), "{text}");
    assert!(text.contains("serve --dev"), "{text}");
    assert!(s.server.stored().is_empty());
    let weeks = upload_state(&s.dir).join("weeks");
    let marked: Vec<_> = std::fs::read_dir(&weeks)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(marked.is_empty(), "{marked:?}");
    let (_, page) = http_get(&format!("{}/", s.url));
    assert!(!page.contains("DEVELOPMENT SERVER"));
}

#[test]
fn without_consent_nothing_is_sent_now() {
    let s = server(true);
    let ep = Some((s.url.as_str(), s.key.as_str()));
    let run = greet(&s.dir, NOW, ep, &["alice"]);
    assert!(run.status.success(), "{run:?}");
    let o = clearcount(&s.dir, NOW, &["upload", "--now"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("No program is opted in"), "{o:?}");
    // Opted out again after opting in: still nothing.
    let on = greet(&s.dir, NOW, ep, &["telemetry", "on", "--yes"]);
    assert!(on.status.success(), "{on:?}");
    let off = greet(&s.dir, NOW, ep, &["telemetry", "local"]);
    assert!(off.status.success(), "{off:?}");
    let o = clearcount(&s.dir, NOW, &["upload", "--now"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(s.server.stored().is_empty());
}
