//! Every page of the public web is valid HTML (no HTML5 parse error from html5ever, the
//! parser of Servo), escapes what it shows, loads nothing, sets no cookie, and `/config`
//! keeps serving the exact TOML bytes to everything that is not a browser.

mod web;

use clearcount_config_log::note::Signer;
use scraper::{Html, Selector};
use web::*;

/// The HTML5 parse errors of a document (html5ever's tree builder and tokenizer).
fn parse_errors(html: &str) -> Vec<String> {
    Html::parse_document(html)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn the_checker_fails_on_invalid_html() {
    let ok = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head><body><p>a</p></body></html>";
    assert!(parse_errors(ok).is_empty(), "{:?}", parse_errors(ok));
    for bad in [
        // No doctype.
        "<html><head><title>t</title></head><body></body></html>",
        // A stray end tag.
        "<!DOCTYPE html><html><head><title>t</title></head><body><p>a</b></p></body></html>",
        // An unclosed element at the end.
        "<!DOCTYPE html><html><head><title>t</title></head><body><div><span>a</body></html>",
        // A duplicate attribute.
        "<!DOCTYPE html><html><head><title>t</title></head><body><p id=a id=b>a</p></body></html>",
        // An unescaped '<' in text.
        "<!DOCTYPE html><html><head><title>t</title></head><body><p>a </ b</p></body></html>",
    ] {
        assert!(!parse_errors(bad).is_empty(), "not caught: {bad}");
    }
}

fn count(doc: &Html, css: &str) -> usize {
    doc.select(&Selector::parse(css).unwrap()).count()
}

#[test]
fn every_page_is_valid_escaped_and_self_contained() {
    let f = filled_server();
    let s = &f.server;
    let pages = [
        ("/", 200),
        ("/programs/ripgrep", 200),
        ("/programs/fd", 200),
        ("/config", 200),
        ("/config/0", 200),
        ("/config/1", 200),
        ("/config/7", 404),
        ("/programs/nope", 404),
        ("/programs/%3Cscript%3E", 404),
    ];
    for (path, want) in pages {
        let (status, headers, body) = get_html(s, path);
        assert_eq!(status, want, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(headers.get("set-cookie").is_none(), "{path}");
        let errors = parse_errors(&body);
        assert!(errors.is_empty(), "{path}: HTML parse errors {errors:?}");
        let doc = Html::parse_document(&body);
        // Nothing is loaded: no script, no external style sheet, image, frame or font.
        for css in [
            "script",
            "link:not([rel=icon][href='data:,'])",
            "img",
            "iframe",
            "object",
            "embed",
            "[src]",
            "[style*=url]",
        ] {
            assert_eq!(count(&doc, css), 0, "{path}: {css}");
        }
        assert_eq!(count(&doc, "html[lang=en]"), 1, "{path}");
        assert_eq!(count(&doc, "meta[name=viewport]"), 1, "{path}");
        // Every chart has a title and is labelled by it.
        for svg in doc.select(&Selector::parse("svg").unwrap()) {
            let id = svg.value().attr("aria-labelledby").unwrap_or_default();
            assert!(!id.is_empty(), "{path}: svg without aria-labelledby");
            assert_eq!(
                count(&doc, &format!("svg > title[id='{id}']")),
                1,
                "{path}: {id}"
            );
            assert!(svg.value().attr("viewBox").is_some(), "{path}");
        }
        // Every id is unique.
        let mut ids: Vec<&str> = doc
            .select(&Selector::parse("[id]").unwrap())
            .map(|e| e.value().attr("id").unwrap())
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "{path}: duplicate ids");
    }

    // The hostile description is shown, escaped; the link's `&` is escaped in the attribute.
    let (_, _, config) = get_html(s, "/config");
    assert!(config.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quotes&quot;"));
    assert!(!config.contains("<script>"));
    assert!(config.contains("href=\"https://example.org/issues/2?a=1&amp;b=2\""));
    let doc = Html::parse_document(&config);
    assert_eq!(
        count(
            &doc,
            "article.counter a[href='https://example.org/issues/1']"
        ),
        1
    );
}

#[test]
fn config_page_content_and_toml_negotiation() {
    let f = filled_server();
    let s = &f.server;
    let plain = |path: &str, accept: Option<&str>| {
        let mut r = reqwest::blocking::Client::new().get(s.url(path));
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        let r = r.send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        r.bytes().unwrap().to_vec()
    };
    let c1 = config1();
    assert_eq!(plain("/config", None), c1.as_bytes());
    assert_eq!(plain("/config", Some("*/*")), c1.as_bytes());
    assert_eq!(plain("/config/0", Some("text/plain")), CONFIG0.as_bytes());
    assert_eq!(
        plain("/config/0?raw", Some("text/html,*/*;q=0.8")),
        CONFIG0.as_bytes()
    );

    let (_, _, html) = get_html(s, "/config");
    let doc = Html::parse_document(&html);
    // Every counter with every field.
    assert_eq!(count(&doc, "article.counter"), 3);
    for text in [
        "How many times rg ran in the week.",
        "Interactive or scripted use?",
        "maintainer@example.org",
        "2099-06-30",
        "0, 1, 10, 100, 1000",
        "default, pcre2, fancy, other, none",
        "ε = 2",
        "NO RANDOMIZED RESPONSE",
        "0.6 (60.0%",
        "&gt;=14.0.0",
    ] {
        assert!(html.contains(text), "config page lacks {text}");
    }
    // The history: both entries, and the change of entry 1 from the structured diff.
    assert_eq!(count(&doc, "section.entry"), 2);
    assert!(
        html.contains("0.5</code> → <code>0.6"),
        "sample_rate change"
    );
    assert!(html.contains("fancy"), "labels change");
    // The checkpoint and the exact verify command, with the published verifier key.
    let key = std::fs::read_to_string(f.dir.path().join("log/verifier.key")).unwrap();
    let cmd = format!(
        "clearcount-log verify http://{}/log --key {}",
        s.addr,
        key.trim()
    );
    assert!(html.contains(&cmd), "no verify command {cmd}");
    let note = std::fs::read_to_string(f.dir.path().join("log/checkpoint")).unwrap();
    assert!(note.starts_with(&format!("{ORIGIN}\n2\n")));
    let first_line_of_sig = note.lines().nth(4).unwrap();
    assert!(html.contains(first_line_of_sig));

    // A wrong published key is not shown as the key to use.
    std::fs::write(
        f.dir.path().join("log/verifier.key"),
        Signer::generate(ORIGIN).unwrap().verifier().to_string(),
    )
    .unwrap();
    let (_, _, html) = get_html(s, "/config");
    assert!(html.contains("does not verify the current checkpoint"));
    assert!(html.contains("--key VERIFIER_KEY"));

    // /config/1 shows its own diff against entry 0, and no history.
    let (_, _, one) = get_html(s, "/config/1");
    let doc = Html::parse_document(&one);
    assert_eq!(count(&doc, "section.entry"), 0);
    assert!(one.contains("0.5</code> → <code>0.6"));
}

#[test]
fn dashboard_lists_every_program_with_reports_per_week() {
    let f = filled_server();
    let (_, _, html) = get_html(&f.server, "/");
    let doc = Html::parse_document(&html);
    assert_eq!(count(&doc, "section.program"), 2);
    // One bar per week for each program, and the table says the same numbers.
    for (pi, name) in ["fd", "ripgrep"].iter().enumerate() {
        assert_eq!(
            count(&doc, &format!("#p{pi}-weeks rect.count")),
            f.weeks.len(),
            "{name}"
        );
        let rows: Vec<(String, u64)> = doc
            .select(&Selector::parse(&format!("#p{pi}-weeks-data tbody tr")).unwrap())
            .map(|tr| {
                let th = tr.select(&Selector::parse("th").unwrap()).next().unwrap();
                let td = tr.select(&Selector::parse("td").unwrap()).next().unwrap();
                (
                    th.text().collect(),
                    td.text().collect::<String>().parse().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, u64)> = f
            .weeks
            .iter()
            .enumerate()
            .map(|(i, w)| {
                (
                    w.to_string(),
                    (30 + 10 * i + if i >= 2 { 25 } else { 0 }) as u64,
                )
            })
            .collect();
        assert_eq!(rows, want, "{name}");
    }
}

/// The program page pools a counter whose definition did not change, shows count buckets as
/// ranges, draws confidence bands on the trend charts and gives both estimates; raw-report
/// links go only to published days that hold reports.
#[test]
fn program_page_pools_ranges_bands_and_raw_links() {
    let Filled { dir, server, weeks } = filled_server();
    let (_, _, page) = get_html(&server, "/programs/ripgrep");
    let doc = Html::parse_document(&page);
    // `invocations` is the same under configs 0 and 1: one chart of the pooled counts;
    // `engine` changed between them: one chart each.
    assert_eq!(count(&doc, "figure.latest[data-counter='invocations']"), 1);
    assert_eq!(
        count(
            &doc,
            "figure.latest[data-counter='invocations'][data-config-index='0 1']"
        ),
        1
    );
    assert_eq!(count(&doc, "figure.latest[data-counter='engine']"), 2);
    let cells = |css: &str| -> Vec<String> {
        doc.select(&Selector::parse(css).unwrap())
            .map(|e| e.text().collect())
            .collect()
    };
    let fig = "figure.latest[data-counter='invocations']";
    assert_eq!(
        cells(&format!("{fig} table.estimates tbody th")),
        ["0", "1-9", "10-99", "100-999", "1000+"]
    );
    // The pooled reports: every report of the latest week under either config.
    let latest = weeks.last().unwrap().to_string();
    let agg: serde_json::Value =
        reqwest::blocking::get(server.url(&format!("/data/aggregates/{latest}.json")))
            .unwrap()
            .json()
            .unwrap();
    let total: u64 = agg["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["program"] == "ripgrep")
        .map(|p| p["reports"].as_u64().unwrap())
        .sum();
    let reports = cells(&format!("{fig} table.estimates tbody td:last-child"));
    assert!(
        reports.iter().all(|r| *r == total.to_string()),
        "{reports:?}"
    );
    // Estimates sum to 100% (to the printed rounding), raw estimates are shown too.
    let pct = |s: &String| s.trim_end_matches('%').parse::<f64>().unwrap();
    let est: f64 = cells(&format!("{fig} table.estimates tbody td:nth-child(2)"))
        .iter()
        .map(pct)
        .sum();
    assert!((est - 100.0).abs() < 0.3, "{est}");
    assert_eq!(
        cells(&format!("{fig} table.estimates thead th"))[4],
        "Raw estimate"
    );
    // Trend charts: a line and a band per label.
    let hist = "figure.history[data-counter='invocations']";
    assert_eq!(count(&doc, &format!("{hist} svg path.series")), 5);
    assert!(count(&doc, &format!("{hist} svg path.band")) >= 5);
    // Every report arrived on TODAY, which is not published yet: no day is linked.
    assert_eq!(count(&doc, "details.raw a"), 0);
    assert!(page.contains("raw reports: none published yet"));

    // Two days later the same data has one published day with reports: exactly that link.
    drop(server);
    let later = Server::start(
        &dir.path().join("log"),
        &dir.path().join("data"),
        "2026-11-27",
    );
    let (_, _, page) = get_html(&later, "/programs/ripgrep");
    let doc = Html::parse_document(&page);
    let links: Vec<String> = doc
        .select(&Selector::parse("details.raw a").unwrap())
        .map(|a| a.value().attr("href").unwrap().to_string())
        .collect();
    assert_eq!(links, [format!("/data/reports/{TODAY}.ndjson")]);
}
