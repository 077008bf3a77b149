//! The page shell shared by every page: document head, inline style sheet, navigation.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The style sheet, inline (the CSP allows inline styles only). Mobile first: one column,
/// charts scale with their `viewBox`, wide tables scroll sideways inside their box.
pub const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#fff}
header.site{background:#1d3557;color:#fff;padding:.6rem 1rem}
header.site a{color:#fff;margin-right:1rem;text-decoration:none;font-weight:600}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.3rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #d0d7de}
h3{font-size:1.1rem;margin:1rem 0 .4rem}
a{color:#0b5cad}
.grid{display:grid;gap:1rem;grid-template-columns:1fr}
.grid>*{min-width:0}
@media (min-width:48rem){.grid{grid-template-columns:1fr 1fr}}
figure{margin:0 0 1rem;padding:.5rem;border:1px solid #d0d7de;border-radius:6px;min-width:0}
figcaption{font-weight:600;margin-bottom:.3rem}
svg.chart{width:100%;height:auto;display:block}
svg.chart text{font-size:11px;fill:#444}
svg.chart .bar{fill:#457b9d}
svg.chart .count{fill:#6c757d}
svg.chart .whisker{stroke:#1b1f24;stroke-width:1.5}
svg.chart .axis{stroke:#888;stroke-width:1}
svg.chart .grid-line{stroke:#e5e5e5;stroke-width:1}
svg.chart .series{fill:none;stroke-width:2}
svg.chart .band{fill-opacity:.15;stroke:none}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.15rem .4rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
caption{text-align:left;font-size:.85rem;color:#555}
.legend{list-style:none;padding:0;margin:.3rem 0;display:flex;flex-wrap:wrap;gap:.2rem 1rem;font-size:.85rem}
.swatch{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;vertical-align:middle;border-radius:2px}
.downloads{font-size:.85rem}
.muted{color:#555}
.warn{background:#fff3cd;border:1px solid #e0b000;padding:.2rem .5rem;font-weight:700}
.bad{color:#a4000f;font-weight:700}
.added{color:#116329}.removed{color:#a4000f}
pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
dl.fields{display:grid;grid-template-columns:1fr;gap:0 1rem;margin:.3rem 0}
@media (min-width:40rem){dl.fields{grid-template-columns:9rem 1fr}}
dl.fields dt{font-weight:600}
dl.fields dd{margin:0 0 .3rem;overflow-wrap:anywhere}
article.counter{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .8rem;margin:.6rem 0}
ul.changes li{margin:.2rem 0;overflow-wrap:anywhere}
details{margin:.3rem 0}
summary{cursor:pointer;color:#0b5cad}
"#;

/// A whole page: `title` in `<title>` and `<h1>`, then `body`.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                // No favicon request: an empty icon inline.
                link rel="icon" href="data:,";
                title { (title) " · clearcount" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.site {
                    nav aria-label="Site" {
                        a href="/" { "Dashboard" }
                        a href="/config" { "Config" }
                        a href="/data/" { "Data" }
                        a href="/log/checkpoint" { "Log" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
    .into_string()
}

/// A small error page.
pub fn error_page(title: &str, message: &str) -> String {
    page(title, html! { p { (message) } })
}

/// A share in [0, 1] as a percentage with one decimal (`12.3%`), as in every data table.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_escaped() {
        let p = page("<script>alert(1)</script>", html! { p { "x" } });
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn percentages() {
        assert_eq!(pct(0.0), "0.0%");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(1.0), "100.0%");
    }
}
