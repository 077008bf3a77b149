//! Inline SVG charts. Each chart scales with its `viewBox`, is an `img` for assistive
//! technology with a `<title>` (and `aria-labelledby` pointing at it), and is always followed
//! by a data table on the page.
//!
//! Classes the browser tests count: `rect.bar` (one per label of an estimate chart),
//! `path.whisker` (its confidence interval), `rect.count` (one per bar of a count chart),
//! `path.series` (one per label of a line chart), `path.band` (its confidence band, one per
//! run of weeks with data).

use maud::{Markup, html};

/// Series colours (Okabe–Ito, readable by colour-blind people); past eight, dashes differ.
pub const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#7f7f7f", "#000000",
];

/// The colour and dash pattern of series `i`.
pub fn series_style(i: usize) -> (&'static str, &'static str) {
    let dash = match (i / PALETTE.len()) % 4 {
        0 => "none",
        1 => "6 3",
        2 => "2 3",
        _ => "8 3 2 3",
    };
    (PALETTE[i % PALETTE.len()], dash)
}

/// One bar of an estimate chart.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateBar {
    /// The label under the bar.
    pub label: String,
    /// The estimate in [0, 1].
    pub estimate: f64,
    /// Lower end of its confidence interval.
    pub low: f64,
    /// Upper end of its confidence interval.
    pub high: f64,
}

fn clamp01(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

const TOP: f64 = 12.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const PLOT_H: f64 = 160.0;

fn y_of(v: f64) -> f64 {
    TOP + (1.0 - clamp01(v)) * PLOT_H
}

/// The horizontal grid and percent axis of the estimate and line charts.
fn percent_axis(width: f64) -> Markup {
    html! {
        @for i in 0..=4 {
            @let v = f64::from(i) / 4.0;
            @let y = y_of(v);
            line.grid-line x1=(f(LEFT)) x2=(f(width - RIGHT)) y1=(f(y)) y2=(f(y)) {}
            text x=(f(LEFT - 4.0)) y=(f(y + 4.0)) text-anchor="end" { (i * 25) "%" }
        }
        line.axis x1=(f(LEFT)) x2=(f(LEFT)) y1=(f(TOP)) y2=(f(TOP + PLOT_H)) {}
        line.axis x1=(f(LEFT)) x2=(f(width - RIGHT)) y1=(f(TOP + PLOT_H)) y2=(f(TOP + PLOT_H)) {}
    }
}

/// An x-axis label under position `x`, slanted when there are many.
fn x_label(x: f64, text: &str, slant: bool) -> Markup {
    let y = TOP + PLOT_H + 14.0;
    html! {
        @if slant {
            text x=(f(x)) y=(f(y)) text-anchor="end" transform=(format!("rotate(-35 {} {})", f(x), f(y))) { (text) }
        } @else {
            text x=(f(x)) y=(f(y)) text-anchor="middle" { (text) }
        }
    }
}

fn height(slant: bool) -> f64 {
    TOP + PLOT_H + if slant { 70.0 } else { 26.0 }
}

/// A bar chart of estimates with confidence-interval whiskers. `id` must be unique on the
/// page; the chart's title element gets the id `{id}-t`.
pub fn estimate_chart(id: &str, title: &str, bars: &[EstimateBar]) -> Markup {
    let n = bars.len().max(1) as f64;
    let step = 44.0;
    let width = (LEFT + RIGHT + n * step).max(320.0);
    let step = (width - LEFT - RIGHT) / n;
    let bw = step * 0.6;
    let slant = bars.len() > 6 || bars.iter().any(|b| b.label.len() > 7);
    let h = height(slant);
    let tid = format!("{id}-t");
    html! {
        svg.chart.estimates id=(id) role="img" aria-labelledby=(tid) viewBox=(format!("0 0 {} {}", f(width), f(h))) xmlns="http://www.w3.org/2000/svg" {
            title id=(tid) { (title) }
            (percent_axis(width))
            @for (i, b) in bars.iter().enumerate() {
                @let cx = LEFT + step * (i as f64 + 0.5);
                @let y = y_of(b.estimate);
                rect.bar x=(f(cx - bw / 2.0)) y=(f(y)) width=(f(bw)) height=(f(TOP + PLOT_H - y)) {
                    title { (b.label) ": " (super::layout::pct(clamp01(b.estimate))) " (" (super::layout::pct(clamp01(b.low))) " to " (super::layout::pct(clamp01(b.high))) ")" }
                }
                @let (lo, hi) = (y_of(b.low), y_of(b.high));
                @let cap = bw / 4.0;
                path.whisker d=(format!("M{} {}V{}M{} {}H{}M{} {}H{}", f(cx), f(lo), f(hi), f(cx - cap), f(lo), f(cx + cap), f(cx - cap), f(hi), f(cx + cap))) {}
                (x_label(cx, &b.label, slant))
            }
        }
    }
}

/// A vertical bar chart of counts (reports per week). Long series label only every few bars.
pub fn count_chart(id: &str, title: &str, bars: &[(String, u64)]) -> Markup {
    let n = bars.len().max(1) as f64;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let width = (LEFT + RIGHT + n * 14.0).max(320.0);
    let step = (width - LEFT - RIGHT) / n;
    let bw = (step * 0.7).max(1.0);
    let every = (bars.len() / 8).max(1);
    let slant = bars.len() > 1;
    let h = height(slant);
    let tid = format!("{id}-t");
    let ystep = nice_step(max);
    let ticks = (max / ystep).ceil() as u64;
    let top = ystep * ticks as f64;
    let yc = |v: f64| TOP + (1.0 - v / top) * PLOT_H;
    html! {
        svg.chart.counts id=(id) role="img" aria-labelledby=(tid) viewBox=(format!("0 0 {} {}", f(width), f(h))) xmlns="http://www.w3.org/2000/svg" {
            title id=(tid) { (title) }
            @for t in 0..=ticks {
                @let v = ystep * t as f64;
                line.grid-line x1=(f(LEFT)) x2=(f(width - RIGHT)) y1=(f(yc(v))) y2=(f(yc(v))) {}
                text x=(f(LEFT - 4.0)) y=(f(yc(v) + 4.0)) text-anchor="end" { (v) }
            }
            line.axis x1=(f(LEFT)) x2=(f(LEFT)) y1=(f(TOP)) y2=(f(TOP + PLOT_H)) {}
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let cx = LEFT + step * (i as f64 + 0.5);
                @let y = yc(*v as f64);
                rect.count x=(f(cx - bw / 2.0)) y=(f(y)) width=(f(bw)) height=(f(TOP + PLOT_H - y)) {
                    title { (label) ": " (v) }
                }
                @if i % every == 0 || i + 1 == bars.len() {
                    (x_label(cx, label, slant))
                }
            }
        }
    }
}

/// A step of 1, 2 or 5 times a power of ten giving at most about five ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if raw <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

/// A horizontal bar chart of counts (version, OS and architecture breakdowns).
pub fn breakdown_chart(id: &str, title: &str, bars: &[(String, u64)]) -> Markup {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let row = 22.0;
    let label_w = 110.0;
    let width = 360.0;
    let h = row * bars.len().max(1) as f64 + 8.0;
    let tid = format!("{id}-t");
    html! {
        svg.chart.breakdown id=(id) role="img" aria-labelledby=(tid) viewBox=(format!("0 0 {} {}", f(width), f(h))) xmlns="http://www.w3.org/2000/svg" {
            title id=(tid) { (title) }
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let y = 4.0 + row * i as f64;
                @let w = (width - label_w - 60.0) * (*v as f64) / max;
                text x=(f(label_w - 6.0)) y=(f(y + 14.0)) text-anchor="end" { (truncate(label, 18)) }
                rect.count x=(f(label_w)) y=(f(y + 3.0)) width=(f(w.max(1.0))) height=(f(row - 6.0)) {
                    title { (label) ": " (v) }
                }
                text x=(f(label_w + w.max(1.0) + 4.0)) y=(f(y + 14.0)) { (v) }
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// One line of a line chart: a label, its value per x position (`None`: no data) and, per
/// position, the confidence interval drawn as a band around the line (may be empty: no band).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// The label.
    pub label: String,
    /// One value per x position.
    pub values: Vec<Option<f64>>,
    /// One interval `(low, high)` per x position, or empty.
    pub bands: Vec<Option<(f64, f64)>>,
}

/// A line chart of shares over `xs` (weeks), one path per series; gaps where a value is
/// missing. Colours and dashes follow [`series_style`], in the order of `series`.
pub fn line_chart(id: &str, title: &str, xs: &[String], series: &[Series]) -> Markup {
    let n = xs.len().max(1) as f64;
    let width = (LEFT + RIGHT + n * 12.0).max(320.0);
    let step = (width - LEFT - RIGHT) / n;
    let x_of = |i: usize| LEFT + step * (i as f64 + 0.5);
    let every = (xs.len() / 8).max(1);
    let slant = xs.len() > 1;
    let h = height(slant);
    let tid = format!("{id}-t");
    html! {
        svg.chart.lines id=(id) role="img" aria-labelledby=(tid) viewBox=(format!("0 0 {} {}", f(width), f(h))) xmlns="http://www.w3.org/2000/svg" {
            title id=(tid) { (title) }
            (percent_axis(width))
            @for (i, x) in xs.iter().enumerate() {
                @if i % every == 0 || i + 1 == xs.len() {
                    (x_label(x_of(i), x, slant))
                }
            }
            @for (si, s) in series.iter().enumerate() {
                @let (colour, _) = series_style(si);
                @for d in bands_of(&s.bands, &x_of) {
                    path.band d=(d) fill=(colour) {
                        title { (s.label) ": confidence band" }
                    }
                }
            }
            @for (si, s) in series.iter().enumerate() {
                @let (colour, dash) = series_style(si);
                @let d = path_of(&s.values, &x_of);
                @if !d.is_empty() {
                    path.series d=(d) stroke=(colour) stroke-dasharray=(dash) {
                        title { (s.label) }
                    }
                }
            }
        }
    }
}

/// The `d` of one closed band per run of consecutive intervals: along the upper ends, back
/// along the lower ends. A lone interval is drawn as a thin bar.
fn bands_of(bands: &[Option<(f64, f64)>], x_of: &impl Fn(usize) -> f64) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<(usize, f64, f64)> = Vec::new();
    let flush = |run: &mut Vec<(usize, f64, f64)>, out: &mut Vec<String>| {
        if run.is_empty() {
            return;
        }
        let half = if run.len() == 1 { 2.0 } else { 0.0 };
        let mut d = String::new();
        for (j, (i, _, high)) in run.iter().enumerate() {
            let cmd = if j == 0 { 'M' } else { 'L' };
            d.push_str(&format!("{cmd}{} {}", f(x_of(*i) - half), f(y_of(*high))));
        }
        for (i, low, _) in run.iter().rev() {
            d.push_str(&format!("L{} {}", f(x_of(*i) + half), f(y_of(*low))));
        }
        d.push('Z');
        out.push(d);
        run.clear();
    };
    for (i, b) in bands.iter().enumerate() {
        match b {
            Some((low, high)) if low.is_finite() && high.is_finite() => run.push((i, *low, *high)),
            _ => flush(&mut run, &mut out),
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The `d` of a polyline through the present values; a lone point is drawn as a short dash.
fn path_of(values: &[Option<f64>], x_of: &impl Fn(usize) -> f64) -> String {
    let mut d = String::new();
    let mut prev = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let (x, y) = (x_of(i), y_of(*v));
                let next = values.get(i + 1).is_some_and(|n| n.is_some());
                if prev {
                    d.push_str(&format!("L{} {}", f(x), f(y)));
                } else if next {
                    d.push_str(&format!("M{} {}", f(x), f(y)));
                } else {
                    d.push_str(&format!("M{} {}H{}", f(x - 3.0), f(y), f(x + 3.0)));
                }
                prev = true;
            }
            None => prev = false,
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(n: usize) -> Vec<EstimateBar> {
        (0..n)
            .map(|i| EstimateBar {
                label: format!("l{i}"),
                estimate: i as f64 / n as f64,
                low: 0.0,
                high: 1.0,
            })
            .collect()
    }

    #[test]
    fn one_bar_and_whisker_per_label() {
        for n in [1, 3, 32] {
            let s = estimate_chart("c", "t", &bars(n)).into_string();
            assert_eq!(s.matches("<rect class=\"bar\"").count(), n);
            assert_eq!(s.matches("<path class=\"whisker\"").count(), n);
            assert!(s.contains("aria-labelledby=\"c-t\""));
        }
    }

    #[test]
    fn geometry_stays_in_the_plot() {
        let b = [EstimateBar {
            label: "x".into(),
            estimate: 2.0,
            low: -1.0,
            high: f64::NAN,
        }];
        let s = estimate_chart("c", "t", &b).into_string();
        assert!(!s.contains("NaN") && !s.contains("inf") && !s.contains("-1"));
        assert_eq!(y_of(1.0), TOP);
        assert_eq!(y_of(0.0), TOP + PLOT_H);
    }

    #[test]
    fn labels_are_escaped() {
        let b = [EstimateBar {
            label: "<b>&\"".into(),
            estimate: 0.5,
            low: 0.4,
            high: 0.6,
        }];
        let s = estimate_chart("c", "<t>", &b).into_string();
        assert!(!s.contains("<b>") && !s.contains("<t>"));
        assert!(s.contains("&lt;b&gt;&amp;"));
    }

    #[test]
    fn lines_break_at_gaps() {
        let d = path_of(&[Some(0.5), Some(0.5), None, Some(1.0), Some(0.0)], &|i| {
            i as f64 * 10.0
        });
        assert_eq!(d.matches('M').count(), 2);
        assert_eq!(d.matches('L').count(), 2);
        let xs: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        let s = line_chart(
            "l",
            "t",
            &xs,
            &[
                Series {
                    label: "a".into(),
                    values: vec![Some(0.1), Some(0.2), Some(0.3)],
                    bands: vec![Some((0.0, 0.2)), None, Some((0.2, 0.4))],
                },
                Series {
                    label: "b".into(),
                    values: vec![None, None, None],
                    bands: Vec::new(),
                },
            ],
        )
        .into_string();
        assert_eq!(s.matches("<path class=\"series\"").count(), 1);
        // Two runs of intervals: two bands, each closed.
        assert_eq!(s.matches("<path class=\"band\"").count(), 2);
        let run = bands_of(&[Some((0.1, 0.3)), Some((0.2, 0.4))], &|i| i as f64 * 10.0);
        assert_eq!(run.len(), 1);
        assert!(run[0].starts_with('M') && run[0].ends_with('Z'));
        assert_eq!(run[0].matches('L').count(), 3);
    }

    #[test]
    fn count_axis_steps() {
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(9.0), 2.0);
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(1234.0), 500.0);
        let s = count_chart("w", "t", &[("a".into(), 3), ("b".into(), 0)]).into_string();
        assert_eq!(s.matches("<rect class=\"count\"").count(), 2);
    }
}
