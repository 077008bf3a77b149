//! An adversarial corpus of bad reports against the real server binary, on SQLite and
//! PostgreSQL: each gets a 4xx with an error naming the problem, nothing is stored, the server
//! stays healthy; then good reports (including one for a config appended while running) pass.

mod common;

use common::*;

struct Case {
    name: &'static str,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    status: u16,
    expect: &'static str,
}

fn good() -> String {
    report(0, WEEK, 0.1, "10", "pcre2", "0")
}

fn json(name: &'static str, body: String, status: u16, expect: &'static str) -> Case {
    Case {
        name,
        body: body.into_bytes(),
        content_type: Some("application/json"),
        status,
        expect,
    }
}

fn swap(from: &str, to: &str) -> String {
    let g = good();
    assert!(g.contains(from), "{from}");
    g.replacen(from, to, 1)
}

fn corpus() -> Vec<Case> {
    let mut v = vec![
        json("empty body", String::new(), 400, "empty"),
        json("whitespace body", "  \n ".into(), 400, "empty"),
        json("not json", "hello".into(), 400, "invalid report JSON"),
        json("truncated", good()[..good().len() - 5].to_string(), 400, "EOF"),
        json("array", "[]".into(), 400, "must be a JSON object"),
        json("report in array form", r#"[1,"2026-11-16",{"origin":"test.clearcount.example/config","index":0},0.1,[]]"#.into(), 400, "must be a JSON object"),
        json("config in array form", swap(r#"{"origin":"test.clearcount.example/config","index":0}"#, r#"["test.clearcount.example/config",0]"#), 400, "arrays are allowed only as the value of `programs`"),
        json("null", "null".into(), 400, "invalid type: null"),
        json("string", "\"report\"".into(), 400, "invalid type: string"),
        json("number", "42".into(), 400, "invalid type: integer"),
        json("deep nesting", "[".repeat(5000) + &"]".repeat(5000), 400, "nesting"),
        json("deep nesting in x", swap(r#""x":0.1"#, &format!(r#""x":{}1{}"#, "[".repeat(10), "]".repeat(10))), 400, "nesting"),
        json("oversized whitespace", format!("{}{}", " ".repeat(70_000), good()), 413, "larger than"),
        json("oversized 2 MB", format!("[{}0]", "0,".repeat(1_000_000)), 413, "larger than"),
        json("unknown top-level field", swap(r#""x":0.1"#, r#""x":0.1,"id":"u-123""#), 400, "unknown field `id`"),
        json("unknown config field", swap(r#""index":0"#, r#""index":0,"hash":"ab""#), 400, "unknown field `hash`"),
        json("unknown program field", swap(r#""arch":"x86_64""#, r#""arch":"x86_64","hostname":"h""#), 400, "unknown field `hostname`"),
        json("timestamp field", swap(r#""format":1"#, r#""format":1,"time":"2026-11-20T10:00:00Z""#), 400, "unknown field `time`"),
        json("missing week", swap(r#""week":"2026-11-16","#, ""), 400, "missing field `week`"),
        json("missing programs", r#"{"format":1,"week":"2026-11-16","config":{"origin":"test.clearcount.example/config","index":0},"x":0.1}"#.into(), 400, "missing field `programs`"),
        json("missing config", swap(r#""config":{"origin":"test.clearcount.example/config","index":0},"#, ""), 400, "missing field `config`"),
        json("missing x", swap(r#""x":0.1,"#, ""), 400, "missing field `x`"),
        json("missing counters", swap(r#","counters":{"runs":"0"}"#, ""), 400, "missing field `counters`"),
        json("duplicated field x", swap(r#""x":0.1"#, r#""x":0.1,"x":0.2"#), 400, "duplicate field `x`"),
        json("duplicated field week", swap(r#""format":1"#, r#""format":1,"week":"2026-11-09""#), 400, "duplicate field `week`"),
        json("duplicated counter", swap(r#""engine":"pcre2""#, r#""engine":"pcre2","engine":"default""#), 400, "duplicated counter `engine`"),
        json("duplicated counter same label", swap(r#""runs":"0""#, r#""runs":"0","runs":"0""#), 400, "duplicated counter `runs`"),
        json("format as string", swap(r#""format":1"#, r#""format":"1""#), 400, "invalid type: string"),
        json("format 2", swap(r#""format":1"#, r#""format":2"#), 422, "unknown report format 2"),
        json("format 0", swap(r#""format":1"#, r#""format":0"#), 422, "unknown report format 0"),
        json("format float", swap(r#""format":1"#, r#""format":1.0"#), 400, "invalid type: floating point"),
        json("format negative", swap(r#""format":1"#, r#""format":-1"#), 400, "invalid value"),
        json("x as string", swap(r#""x":0.1"#, r#""x":"0.1""#), 400, "invalid type: string"),
        json("x null", swap(r#""x":0.1"#, r#""x":null"#), 400, "invalid type: null"),
        json("x negative", swap(r#""x":0.1"#, r#""x":-0.1"#), 422, "x = -0.1 is outside"),
        json("x equal to sample rate", swap(r#""x":0.1"#, r#""x":0.5"#), 422, "outside [0, 0.5)"),
        json("x above sample rate", swap(r#""x":0.1"#, r#""x":0.93"#), 422, "x = 0.93 is outside"),
        json("x above one", swap(r#""x":0.1"#, r#""x":7"#), 422, "x = 7 is outside"),
        json("x overflow", swap(r#""x":0.1"#, r#""x":1e400"#), 400, "number out of range"),
        json("x NaN literal", swap(r#""x":0.1"#, r#""x":NaN"#), 400, "invalid report JSON"),
        json("week not Monday", swap(WEEK, "2026-11-17"), 422, "not a Monday"),
        json("week Sunday", swap(WEEK, "2026-11-22"), 422, "not a Monday"),
        json("week not ended", swap(WEEK, "2026-11-23"), 422, "has not ended"),
        json("week in the future", swap(WEEK, "2027-01-04"), 422, "has not ended"),
        json("week too old", swap(WEEK, "2026-10-19"), 422, "more than 4 weeks old"),
        json("week years old", swap(WEEK, "2020-01-06"), 422, "more than 4 weeks old"),
        json("week slashes", swap(WEEK, "2026/11/16"), 422, "not a date"),
        json("week impossible date", swap(WEEK, "2026-02-30"), 422, "not a date"),
        json("week unpadded", swap(WEEK, "2026-1-5"), 422, "not a date"),
        json("week as number", swap(r#""2026-11-16""#, "20261116"), 400, "invalid type: integer"),
        json("unknown config index", swap(r#""index":0"#, r#""index":5"#), 422, "config index 5 is not in the log"),
        json("huge config index", swap(r#""index":0"#, r#""index":18446744073709551615"#), 422, "is not in the log"),
        json("negative config index", swap(r#""index":0"#, r#""index":-1"#), 400, "invalid value"),
        json("config index as string", swap(r#""index":0"#, r#""index":"0""#), 400, "invalid type: string"),
        json("wrong origin", swap(r#""origin":"test.clearcount.example/config""#, r#""origin":"evil.example/config""#), 422, "config origin `evil.example/config`"),
        json("unknown program", swap(r#""name":"fd""#, r#""name":"grep""#), 422, "unknown program `grep`"),
        json("path-like program", swap(r#""name":"fd""#, r#""name":"../../etc/passwd""#), 422, "unknown program `../../etc/passwd`"),
        json("duplicated program", swap(r#"{"name":"fd","version":"devel","os":"macos","arch":"aarch64","counters":{"runs":"0"}}"#, r#"{"name":"ripgrep","version":"14.1.0","os":"linux","arch":"x86_64","counters":{"invocations":"10","engine":"pcre2"}}"#), 422, "program `ripgrep` appears more than once"),
        json("no programs", r#"{"format":1,"week":"2026-11-16","config":{"origin":"test.clearcount.example/config","index":0},"x":0.1,"programs":[]}"#.into(), 422, "no programs"),
        json("null program", swap(r#"{"name":"fd","version":"devel","os":"macos","arch":"aarch64","counters":{"runs":"0"}}"#, "null"), 400, "invalid type: null"),
        json("version outside requirement", swap("14.1.0", "13.0.0"), 422, "version `13.0.0` of program `ripgrep` is not accepted"),
        json("version not in the exact list", swap(r#""name":"fd","version":"devel""#, r#""name":"fd","version":"8.7.2""#), 422, "version `8.7.2` of program `fd` is not accepted"),
        json("version not semver", swap("14.1.0", "latest"), 422, "not semver or `devel`"),
        json("version with build metadata user id", swap("14.1.0", "14.1.0+user.alice"), 422, "build metadata is not accepted"),
        json("unknown os", swap(r#""os":"linux""#, r#""os":"freebsd""#), 422, "os `freebsd`"),
        json("unknown arch", swap(r#""arch":"x86_64""#, r#""arch":"riscv64""#), 422, "arch `riscv64`"),
        json("unknown counter", swap(r#""runs":"0""#, r#""runs":"0","secret":"1""#), 422, "unknown counter `secret` of program `fd`"),
        json("missing counter", swap(r#","engine":"pcre2""#, ""), 422, "counter `engine` of program `ripgrep` is missing"),
        json("empty counters", swap(r#""runs":"0""#, ""), 422, "counter `runs` of program `fd` is missing"),
        json("label out of buckets", swap(r#""invocations":"10""#, r#""invocations":"7""#), 422, "label `7` is not allowed for counter `invocations`"),
        json("none label for count", swap(r#""invocations":"10""#, r#""invocations":"none""#), 422, "label `none` is not allowed"),
        json("unknown category label", swap(r#""engine":"pcre2""#, r#""engine":"fancy""#), 422, "label `fancy` is not allowed for counter `engine`"),
        json("empty label", swap(r#""engine":"pcre2""#, r#""engine":"""#), 422, "label `` is not allowed"),
        json("label as number", swap(r#""invocations":"10""#, r#""invocations":10"#), 400, "invalid type: integer"),
        json("label as object", swap(r#""invocations":"10""#, r#""invocations":{"v":"10"}"#), 400, "invalid type: map"),
        json("expired counter present", swap(r#""engine":"pcre2""#, r#""engine":"pcre2","old":"a""#), 422, "counter `old` of program `ripgrep` expired on 2026-10-29"),
        json("counters as array", swap(r#"{"runs":"0"}"#, r#"[["runs","0"]]"#), 400, "arrays are allowed only"),
        json("trailing garbage", format!("{} x", good()), 400, "trailing characters"),
        json("two documents", format!("{}{}", good(), good()), 400, "trailing characters"),
        json("comment", format!("// hi\n{}", good()), 400, "invalid report JSON"),
        json("byte order mark", format!("\u{feff}{}", good()), 400, "invalid report JSON"),
        json("long label", swap(r#""engine":"pcre2""#, &format!(r#""engine":"{}""#, "a".repeat(60_000))), 422, "is not allowed for counter `engine`"),
        Case { name: "invalid UTF-8", body: swap("pcre2", "pcre\u{1}").replace('\u{1}', "\u{0}").into_bytes().into_iter().map(|b| if b == 0 { 0xff } else { b }).collect(), content_type: Some("application/json"), status: 400, expect: "not valid UTF-8" },
        Case { name: "overlong UTF-8", body: [b"{\"format\":1,\"week\":\"".as_slice(), &[0xc0, 0xaf], b"\"}"].concat(), content_type: Some("application/json"), status: 400, expect: "not valid UTF-8" },
        Case { name: "text/plain", body: good().into_bytes(), content_type: Some("text/plain"), status: 415, expect: "Content-Type must be application/json" },
        Case { name: "no content type", body: good().into_bytes(), content_type: None, status: 415, expect: "Content-Type must be application/json" },
        Case { name: "form content type", body: good().into_bytes(), content_type: Some("application/x-www-form-urlencoded"), status: 415, expect: "Content-Type" },
        Case { name: "latin1 charset", body: good().into_bytes(), content_type: Some("application/json; charset=latin1"), status: 415, expect: "Content-Type" },
    ];
    // Config 0's sample rate is 0.5; config 1's is 0.6 but config 1 is not in the log yet.
    v.push(json(
        "x valid only under a later config",
        swap(r#""x":0.1"#, r#""x":0.55"#),
        422,
        "outside [0, 0.5)",
    ));
    v.push(json(
        "index of config not yet appended",
        swap(r#""index":0"#, r#""index":1"#),
        422,
        "config index 1 is not in the log (the log has 1 entries)",
    ));
    v
}

/// POSTs `case` over a raw connection with `Expect: 100-continue`, sending the body only if the
/// server asks for it, and returns the final status and body.
fn post_expecting_continue(addr: std::net::SocketAddr, case: &Case) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n",
        case.body.len()
    );
    if let Some(ct) = case.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut len = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        if status == 100 {
            stream.write_all(&case.body).unwrap();
            continue;
        }
        let mut body = Vec::new();
        match len {
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body).unwrap();
            }
            None => {
                reader.read_to_end(&mut body).unwrap();
            }
        }
        return (status, String::from_utf8_lossy(&body).into_owned());
    }
}

fn run(database: Option<&str>) {
    let root = tempdir();
    let (log_dir, data) = paths(root.path());
    let (signer, mut log) = make_log(&log_dir, &[CONFIG0]);
    let server = Server::start(&log_dir, &data, database, TODAY);
    let c = client();
    let cases = corpus();
    let names: std::collections::HashSet<_> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "case names are distinct");
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let assert_healthy = |after: &str| {
        let h = c.get(server.url("/healthz")).send().unwrap();
        assert_eq!(h.status().as_u16(), 200, "unhealthy after {after}");
    };
    let mut failures = Vec::new();
    for case in &cases {
        let (status, text) = if case.status == 413 {
            // A server may refuse an oversized body by answering and closing without reading
            // it, which races with a client still writing; `Expect: 100-continue` makes the
            // exchange deterministic (the refusal below covers clients that send it anyway).
            post_expecting_continue(server.addr, case)
        } else {
            let mut req = c.post(server.url("/upload")).body(case.body.clone());
            if let Some(ct) = case.content_type {
                req = req.header("content-type", ct);
            }
            let r = req.send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        };
        let err = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
        match err {
            Some(e) if status == case.status && e.contains(case.expect) => {}
            _ => failures.push(format!(
                "{}: got {status} {text:.300}, want {} containing {:?}",
                case.name, case.status, case.expect
            )),
        }
        assert_healthy(case.name);
    }
    // The oversized case sent whole, without waiting: the server answers 413 or closes the
    // connection before reading it all (RFC 9110, 15.5.14); either way it stays healthy.
    let big = cases.iter().find(|c| c.name == "oversized 2 MB").unwrap();
    match c
        .post(server.url("/upload"))
        .header("content-type", "application/json")
        .body(big.body.clone())
        .send()
    {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(e) => assert!(e.is_request(), "{e:?}"),
    }
    assert_healthy("a 2 MB body sent whole");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        stored_bodies(&data, database).is_empty(),
        "a bad report was stored"
    );

    // Good reports pass; a config appended while running is picked up without restart.
    assert_eq!(
        post(&c, &server, good()),
        (200, r#"{"status":"ok"}"#.into())
    );
    log.append_config(config1().as_bytes(), &signer, day("2020-01-01"))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    // A version of the exact list is accepted.
    let listed = swap(
        r#""name":"fd","version":"devel""#,
        r#""name":"fd","version":"8.7.1""#,
    )
    .replace(r#""x":0.1"#, r#""x":0.15"#);
    assert_eq!(post(&c, &server, listed).0, 200);
    let r1 = report(1, WEEK, 0.55, "1", "fancy", "10");
    assert_eq!(post(&c, &server, r1.clone()).0, 200);
    let r0_fancy = swap(r#""engine":"pcre2""#, r#""engine":"fancy""#);
    assert_eq!(
        post(&c, &server, r0_fancy).0,
        422,
        "config 0 still refuses label fancy"
    );
    // A counter expiring during the week may be present or absent.
    let w = "2026-10-26";
    assert_eq!(
        post(&c, &server, report(0, w, 0.2, "0", "other", "0")).0,
        200
    );
    let with_old = report(0, w, 0.3, "0", "other", "0")
        .replace(r#""engine":"other""#, r#""engine":"other","old":"b""#);
    assert_eq!(post(&c, &server, with_old).0, 200);
    let out = server.stop();
    let stored = stored_bodies(&data, database);
    assert_eq!(stored.len(), 5, "{out}");
    let canon = clearcount_server::report::canonical_json(
        &clearcount_server::report::parse(r1.as_bytes()).unwrap(),
    );
    assert!(stored.contains(&canon));
}

#[test]
fn adversarial_corpus_sqlite() {
    run(None);
}

#[test]
fn adversarial_corpus_postgres() {
    if let Some(db) = pg("adversarial") {
        run(Some(&db.url));
    }
}
