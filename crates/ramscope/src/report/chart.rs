//! Stacked-area charts of category PSS over time, drawn as SVG by plotters.
//!
//! Each category is one filled polygon between the cumulative curve below it and its own
//! top, so the stack's outline is the total and every band's height is that category. The
//! RSS line (sampled every tick) is drawn over the stack; a marker shows the stack's peak.

use plotters::prelude::*;

use crate::attribute::Category;
use crate::record::analysis::Timeline;
use crate::units::bytes;

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, thiserror::Error)]
#[error("cannot draw chart {title:?}: {message}")]
pub struct ChartError {
    pub title: String,
    pub message: String,
}

/// A stable colour per category, so the same band has the same colour in every chart.
pub fn color(c: Category) -> RGBColor {
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
    let (r, g, b) = PALETTE[c.index() % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Draws `timeline` as an SVG document of `width`×`height` pixels.
pub fn stacked_svg(timeline: &Timeline, width: u32, height: u32) -> Result<String, ChartError> {
    let mut svg = String::new();
    draw(timeline, &mut svg, width, height).map_err(|message| ChartError {
        title: timeline.title.clone(),
        message,
    })?;
    Ok(svg)
}

fn draw(tl: &Timeline, svg: &mut String, width: u32, height: u32) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| err.to_string();
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;

    let t_min = tl
        .times
        .first()
        .copied()
        .or(tl.rss.first().map(|p| p.0))
        .unwrap_or(0.0);
    let t_max = tl
        .times
        .last()
        .copied()
        .into_iter()
        .chain(tl.rss.last().map(|p| p.0))
        .fold(t_min, f64::max);
    let t_max = if t_max > t_min { t_max } else { t_min + 1.0 };
    let stack_max = tl.peak().map_or(0, |p| p.1);
    let rss_max = tl.rss.iter().map(|p| p.1).max().unwrap_or(0);
    let y_max = (stack_max.max(rss_max) as f64 / MIB * 1.1).max(1.0);

    let mut chart = ChartBuilder::on(&root)
        .caption(&tl.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(t_min..t_max, 0f64..y_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("MiB (PSS by category)")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|x| e(&x))?;

    let n = tl.times.len();
    let mut below = vec![0f64; n];
    for (category, values) in &tl.categories {
        let top: Vec<f64> = below
            .iter()
            .zip(values)
            .map(|(b, &v)| b + v as f64 / MIB)
            .collect();
        let mut outline: Vec<(f64, f64)> =
            tl.times.iter().copied().zip(top.iter().copied()).collect();
        outline.extend(tl.times.iter().copied().zip(below.iter().copied()).rev());
        let fill = color(*category);
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                fill.mix(0.85).filled(),
            )))
            .map_err(|x| e(&x))?
            .label(category.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
        below = top;
    }

    if !tl.rss.is_empty() {
        chart
            .draw_series(LineSeries::new(
                tl.rss.iter().map(|&(t, v)| (t, v as f64 / MIB)),
                BLACK.stroke_width(1),
            ))
            .map_err(|x| e(&x))?
            .label("RSS")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK.stroke_width(1)));
    }

    if let Some((t, v)) = tl.peak().filter(|p| p.1 > 0) {
        let y = v as f64 / MIB;
        let label = format!("peak {} at {:.1} s", bytes(v), t);
        // Labels near the right edge go to the marker's left, so they are not cut off.
        let label_x = if t > t_min + 0.6 * (t_max - t_min) {
            t - 0.3 * (t_max - t_min)
        } else {
            t
        };
        chart
            .draw_series([
                Circle::new((t, y), 5, RED.filled()).into_dyn(),
                Text::new(
                    label,
                    (label_x, y * 1.04),
                    ("sans-serif", 13).into_font().color(&RED),
                )
                .into_dyn(),
            ])
            .map_err(|x| e(&x))?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_polygon_per_category() {
        let tl = Timeline {
            title: "t".into(),
            times: vec![0.0, 1.0, 2.0],
            categories: vec![
                (Category::Heap, vec![1 << 20, 2 << 20, 1 << 20]),
                (Category::CodePython, vec![3 << 20; 3]),
            ],
            rss: vec![(0.0, 5 << 20), (1.0, 6 << 20), (2.0, 5 << 20)],
        };
        let svg = stacked_svg(&tl, 600, 300).unwrap();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polygon").count(), 2);
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim()))
            .collect();
        assert!(
            texts.contains(&"heap") && texts.contains(&"code.python"),
            "{texts:?}"
        );
        assert!(svg.contains("peak 5.00 MiB"));
    }

    #[test]
    fn empty_and_single_sample_timelines_draw() {
        assert!(stacked_svg(&Timeline::default(), 300, 200).is_ok());
        let one = Timeline {
            title: "one".into(),
            times: vec![0.5],
            categories: vec![(Category::Heap, vec![1 << 20])],
            rss: vec![(0.5, 1 << 20)],
        };
        assert!(stacked_svg(&one, 300, 200).is_ok());
    }
}
