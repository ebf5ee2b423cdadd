//! Stacked step charts of PSS over time, written as plain SVG.
//!
//! Each band is one filled polygon between the cumulative curve below it and its own top,
//! drawn as steps: a value holds from its sample to the next, as the data does (a `smaps`
//! split is held until the next read, see `record::timeline`). The RSS line is drawn over
//! the stack. The SVG scales to its container (a `viewBox` and `width="100%"`); the legend
//! sits beside the plot, top band first as the eye meets them, and the peak label has a
//! strip of its own above the plot, so no data is drawn over it.

use std::fmt::Write;

use crate::attribute::Category;
use crate::record::timeline::{Band, Timeline};
use crate::units::{bytes, seconds};

use super::axis::{bytes_scale, time_scale};

#[derive(Debug, thiserror::Error)]
#[error("cannot draw chart {title:?}: {message}")]
pub struct ChartError {
    pub title: String,
    pub message: String,
}

/// A stable colour per category, so the same band has the same colour in every chart.
pub fn color(c: Category) -> (u8, u8, u8) {
    const PALETTE: [(u8, u8, u8); 14] = [
        (118, 183, 0),   // code.cuda
        (238, 76, 44),   // code.torch
        (55, 118, 171),  // code.python
        (150, 150, 150), // code.other
        (148, 103, 189), // weights
        (196, 156, 148), // file.other
        (255, 157, 46),  // heap
        (140, 86, 75),   // stack
        (214, 39, 40),   // pinned
        (23, 190, 207),  // shm
        (127, 218, 230), // shared-anon
        (44, 160, 44),   // gpu-driver
        (199, 199, 199), // kernel
        (60, 60, 60),    // other
    ];
    PALETTE[c.index() % PALETTE.len()]
}

/// Colours for process bands, in order of size.
const PROCESS_COLORS: [(u8, u8, u8); 8] = [
    (55, 118, 171),
    (255, 157, 46),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (23, 190, 207),
    (188, 189, 34),
];
const FOLDED_COLOR: (u8, u8, u8) = (205, 205, 205);

/// Bands thinner than this share of the axis at their peak are folded into one: a band a
/// pixel high is invisible, and a legend entry for it names nothing the reader can find.
const MIN_BAND_SHARE: f64 = 0.015;

const FONT: &str = "system-ui,-apple-system,'Segoe UI',sans-serif";
const TEXT: u32 = 13;
const TITLE: u32 = 15;
const LEGEND_W: f64 = 176.0;
const CHAR_W: f64 = 0.58;

/// A drawn chart and the bands it shows, bottom first (after folding thin ones).
pub struct Chart {
    pub svg: String,
    pub series: Vec<String>,
}

/// Draws `timeline` as an SVG document whose coordinates are `width`×`height`; it scales to
/// the width of whatever holds it.
pub fn stacked_svg(timeline: &Timeline, width: u32, height: u32) -> Result<String, ChartError> {
    Ok(draw(timeline, width, height)?.svg)
}

/// XML text: `&`, `<`, `>` and quotes escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Line breaks and tabs read as spaces; other control characters are not allowed
            // in XML at all.
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
    out
}

fn rgb((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// At most `max` characters, with an ellipsis when cut.
fn fit(s: &str, max: usize) -> String {
    super::ellipsize(s, max)
}

/// The bands to draw: thin ones folded into one grey band on top.
fn visible_bands(tl: &Timeline, y_top: f64) -> Vec<(Band, (u8, u8, u8))> {
    let mut out = Vec::new();
    let mut folded: Option<(Band, Vec<String>)> = None;
    for (i, b) in tl.bands.iter().enumerate() {
        let peak = b.values.iter().copied().max().unwrap_or(0);
        if peak == 0 {
            continue;
        }
        if (peak as f64) < MIN_BAND_SHARE * y_top {
            let (f, names) = folded.get_or_insert_with(|| {
                (
                    Band {
                        name: String::new(),
                        category: None,
                        values: vec![0; tl.times.len()],
                    },
                    Vec::new(),
                )
            });
            for (sum, v) in f.values.iter_mut().zip(&b.values) {
                *sum = sum.saturating_add(*v);
            }
            names.push(b.name.clone());
            continue;
        }
        let colour = match b.category {
            Some(c) => color(c),
            None => PROCESS_COLORS[i % PROCESS_COLORS.len()],
        };
        out.push((b.clone(), colour));
    }
    if let Some((mut f, names)) = folded {
        f.name = match names.as_slice() {
            [one] => one.clone(),
            _ => format!(
                "{} small {}",
                names.len(),
                if tl.stacked_by == "process" {
                    "processes"
                } else {
                    "categories"
                }
            ),
        };
        out.push((f, FOLDED_COLOR));
    }
    out
}

/// Maps data to the plot's pixels.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        let f = (t / self.x_max).clamp(0.0, 1.0);
        self.left + f * (self.right - self.left)
    }
    fn y(&self, v: f64) -> f64 {
        let f = (v / self.y_max).clamp(0.0, 1.0);
        self.bottom - f * (self.bottom - self.top)
    }
}

/// A step outline through `(t, v)` pairs: each value holds until the next time, the last
/// until `end`. Runs of one value make one segment.
fn steps(f: &Frame, times: &[f64], values: &[f64], end: f64) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(2 * times.len() + 2);
    for (i, (&t, &v)) in times.iter().zip(values).enumerate() {
        let y = f.y(v);
        if i > 0 && pts.last().is_some_and(|p| p.1 == y) {
            continue;
        }
        let x = f.x(t);
        if let Some(&(_, prev)) = pts.last() {
            pts.push((x, prev));
        }
        pts.push((x, y));
    }
    if let Some(&(_, y)) = pts.last() {
        pts.push((f.x(end), y));
    }
    pts
}

fn path(pts: &[(f64, f64)]) -> String {
    let mut s = String::with_capacity(pts.len() * 14);
    for (x, y) in pts {
        let _ = write!(s, "{x:.1},{y:.1} ");
    }
    s.trim_end().to_string()
}

fn text(o: &mut String, x: f64, y: f64, size: u32, anchor: &str, class: &str, body: &str) {
    let _ = writeln!(
        o,
        "<text class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\">{}</text>",
        escape(body)
    );
}

/// Draws `tl`; the SVG's coordinate space is `width`×`height`.
pub fn draw(tl: &Timeline, width: u32, height: u32) -> Result<Chart, ChartError> {
    let bad = |message: &str| ChartError {
        title: tl.title.clone(),
        message: message.to_string(),
    };
    if tl
        .times
        .iter()
        .chain(tl.rss.iter().map(|p| &p.0))
        .any(|t| !t.is_finite())
        || !tl.x_range.1.is_finite()
    {
        return Err(bad("a sample time is not a number"));
    }
    let (w, h) = (f64::from(width.max(320)), f64::from(height.max(200)));
    let end = tl.end_s().max(tl.x_range.1);
    let stack_max = tl.peak().map_or(0, |p| p.1);
    let rss_max = tl.rss.iter().map(|p| p.1).max().unwrap_or(0);
    let y = bytes_scale(stack_max.max(rss_max).max(1 << 20) as f64);
    let top = if tl.subtitle.is_empty() { 52.0 } else { 70.0 };
    let frame = Frame {
        left: 56.0,
        right: w - LEGEND_W - 12.0,
        top,
        bottom: h - 46.0,
        x_max: if end > 0.0 { end } else { 1.0 },
        y_max: y.max,
    };
    let x = time_scale(frame.x_max, ((frame.right - frame.left) / 70.0) as usize);
    let bands = visible_bands(tl, y.max);

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" font-family=\"{FONT}\" role=\"img\"><title>{}</title>",
        escape(&tl.title)
    );
    let _ = writeln!(o, "<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>");
    let _ = writeln!(
        o,
        "<text class=\"title\" x=\"8\" y=\"20\" font-size=\"{TITLE}\" font-weight=\"600\">{}</text>",
        escape(&fit(&tl.title, 90))
    );
    if !tl.subtitle.is_empty() {
        text(
            &mut o,
            8.0,
            40.0,
            12,
            "start",
            "subtitle",
            &fit(&tl.subtitle, 110),
        );
    }

    // Grid and axes.
    let _ = writeln!(
        o,
        "<rect class=\"plot\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#bbb\"/>",
        frame.left,
        frame.top,
        frame.right - frame.left,
        frame.bottom - frame.top
    );
    for (v, label) in &y.ticks {
        let py = frame.y(*v);
        let _ = writeln!(
            o,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/>",
            frame.left, frame.right
        );
        text(
            &mut o,
            frame.left - 6.0,
            py + 4.5,
            TEXT,
            "end",
            "tick",
            label,
        );
    }
    text(
        &mut o,
        frame.left - 6.0,
        frame.top - 8.0,
        TEXT,
        "end",
        "unit",
        y.unit,
    );
    for (t, label) in &x.ticks {
        let px = frame.x(*t);
        let _ = writeln!(
            o,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>",
            frame.bottom,
            frame.bottom + 4.0
        );
        text(
            &mut o,
            px,
            frame.bottom + 18.0,
            TEXT,
            "middle",
            "tick",
            label,
        );
    }
    let axis = match x.unit {
        "s" => "seconds since the start",
        "min" => "minutes since the start",
        _ => "hours since the start",
    };
    text(
        &mut o,
        (frame.left + frame.right) / 2.0,
        h - 8.0,
        TEXT,
        "middle",
        "axis",
        axis,
    );

    // The stack, bottom band first.
    let mut below = vec![0f64; tl.times.len()];
    for (band, colour) in &bands {
        let top: Vec<f64> = below
            .iter()
            .zip(&band.values)
            .map(|(b, &v)| b + v as f64)
            .collect();
        let mut outline = steps(&frame, &tl.times, &top, tl.end_s());
        let mut base = steps(&frame, &tl.times, &below, tl.end_s());
        base.reverse();
        outline.extend(base);
        let _ = writeln!(
            o,
            "<polygon class=\"band\" data-name=\"{}\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.88\"/>",
            escape(&band.name),
            path(&outline),
            rgb(*colour)
        );
        below = top;
    }

    // RSS over the stack, held from sample to sample like everything else.
    if !tl.rss.is_empty() {
        let times: Vec<f64> = tl.rss.iter().map(|p| p.0).collect();
        let values: Vec<f64> = tl.rss.iter().map(|p| p.1 as f64).collect();
        let last = times.last().copied().unwrap_or(0.0);
        let _ = writeln!(
            o,
            "<polyline class=\"rss\" points=\"{}\" fill=\"none\" stroke=\"#111\" stroke-width=\"1.4\"/>",
            path(&steps(&frame, &times, &values, last))
        );
    }

    // The peak: a rule down to the stack's top, its label in a strip of its own.
    if let Some((t, v)) = tl.peak().filter(|p| p.1 > 0) {
        let label = format!("PSS peak {} at {}", bytes(v), seconds(t));
        let px = frame.x(t);
        let half = label.chars().count() as f64 * CHAR_W * f64::from(TEXT) / 2.0;
        let lx = px.clamp(
            frame.left + half,
            (frame.right - half).max(frame.left + half),
        );
        let _ = writeln!(
            o,
            "<line class=\"peak-rule\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c00\" stroke-dasharray=\"3,3\"/>",
            frame.top - 2.0,
            frame.y(v as f64)
        );
        text(
            &mut o,
            lx,
            frame.top - 10.0,
            TEXT,
            "middle",
            "peak-label",
            &label,
        );
    }

    // The legend beside the plot: the RSS line, then the bands from the top of the stack.
    let lx = frame.right + 14.0;
    let mut ly = frame.top + 4.0;
    let rss_label = format!("RSS, peak {}", bytes(rss_max));
    if !tl.rss.is_empty() {
        let _ = writeln!(
            o,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#111\" stroke-width=\"2\"/>",
            lx + 14.0,
            ly + 6.0,
            ly + 6.0
        );
        text(
            &mut o,
            lx + 20.0,
            ly + 11.0,
            TEXT,
            "start",
            "legend",
            &rss_label,
        );
        ly += 22.0;
    }
    let room = ((frame.bottom - ly) / 20.0).max(0.0) as usize;
    for (i, (band, colour)) in bands.iter().rev().enumerate() {
        if i >= room {
            break;
        }
        let _ = writeln!(
            o,
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"14\" height=\"12\" fill=\"{}\"/>",
            rgb(*colour)
        );
        text(
            &mut o,
            lx + 20.0,
            ly + 11.0,
            TEXT,
            "start",
            "legend",
            &fit(&band.name, 21),
        );
        ly += 20.0;
    }
    if tl.times.is_empty() {
        text(
            &mut o,
            (frame.left + frame.right) / 2.0,
            (frame.top + frame.bottom) / 2.0,
            TEXT,
            "middle",
            "empty",
            "no smaps read: no categories to draw",
        );
    }
    o.push_str("</svg>\n");
    Ok(Chart {
        svg: o,
        series: bands.into_iter().map(|(b, _)| b.name).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn texts(svg: &str, class: &str) -> Vec<String> {
        svg.split(&format!("<text class=\"{class}\""))
            .skip(1)
            .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].to_string()))
            .collect()
    }

    fn timeline(times: Vec<f64>, bands: Vec<(Category, Vec<u64>)>, rss: Vec<u64>) -> Timeline {
        Timeline {
            title: "t".into(),
            rss: times.iter().copied().zip(rss).collect(),
            bands: bands
                .into_iter()
                .map(|(c, values)| Band {
                    name: c.name().into(),
                    category: Some(c),
                    values,
                })
                .collect(),
            x_range: (0.0, times.last().copied().unwrap_or(1.0)),
            times,
            step_s: 0.1,
            stacked_by: "category",
            ..Default::default()
        }
    }

    #[test]
    fn one_polygon_per_band_and_the_legend_top_first() {
        let tl = timeline(
            vec![0.0, 10.0, 20.0],
            vec![
                (Category::CodePython, vec![3 * MIB; 3]),
                (Category::Heap, vec![MIB, 2 * MIB, MIB]),
            ],
            vec![5 * MIB, 6 * MIB, 5 * MIB],
        );
        let chart = draw(&tl, 760, 340).unwrap();
        assert!(chart.svg.starts_with("<svg") && chart.svg.contains("viewBox=\"0 0 760 340\""));
        assert!(chart.svg.contains("width=\"100%\""));
        assert_eq!(chart.svg.matches("<polygon").count(), 2);
        assert_eq!(chart.series, ["code.python", "heap"]);
        let legend = texts(&chart.svg, "legend");
        assert_eq!(legend, ["RSS, peak 6.00 MiB", "heap", "code.python"]);
        assert_eq!(
            texts(&chart.svg, "peak-label"),
            ["PSS peak 5.00 MiB at 10.0 s"]
        );
        // Whole numbers on both axes, and a zero on each.
        let ticks = texts(&chart.svg, "tick");
        assert!(ticks.iter().all(|t| !t.contains('.')), "{ticks:?}");
        assert_eq!(ticks.iter().filter(|t| *t == "0").count(), 2, "{ticks:?}");
    }

    #[test]
    fn values_hold_as_steps() {
        // 0 until a read at 1 s finds 10 MiB: the band rises at 1 s, not before.
        let tl = timeline(
            vec![0.0, 1.0, 2.0],
            vec![(Category::Weights, vec![0, 10 * MIB, 10 * MIB])],
            vec![10 * MIB; 3],
        );
        let svg = draw(&tl, 760, 340).unwrap().svg;
        let points = svg.split("points=\"").nth(1).unwrap();
        let pts: Vec<(f64, f64)> = points[..points.find('"').unwrap()]
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        let frame_x = |t: f64| 56.0 + t / 2.0 * (760.0 - LEGEND_W - 12.0 - 56.0);
        // Every point at a time before 1 s sits on the baseline.
        let base = pts.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        for p in pts.iter().filter(|p| p.0 < frame_x(1.0) - 0.1) {
            assert_eq!(p.1, base, "{pts:?}");
        }
    }

    #[test]
    fn thin_bands_fold_into_one_and_the_empty_chart_draws() {
        let tl = timeline(
            vec![0.0, 1.0],
            vec![
                (Category::CodeOther, vec![1024, 1024]),
                (Category::Stack, vec![2048, 2048]),
                (Category::Heap, vec![500 * MIB, 500 * MIB]),
            ],
            vec![501 * MIB; 2],
        );
        let chart = draw(&tl, 760, 340).unwrap();
        assert_eq!(chart.series, ["heap", "2 small categories"]);
        assert!(draw(&Timeline::default(), 300, 200).is_ok());
        let one = timeline(vec![0.5], vec![(Category::Heap, vec![MIB])], vec![MIB]);
        let chart = draw(&one, 760, 340).unwrap();
        assert_eq!(chart.svg.matches("<polygon").count(), 1);
    }

    #[test]
    fn hostile_titles_are_escaped() {
        let tl = Timeline {
            title: "</text><script>x</script>".into(),
            ..Default::default()
        };
        let svg = draw(&tl, 760, 340).unwrap().svg;
        assert!(!svg.contains("<script"));
    }
}
