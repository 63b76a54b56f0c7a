//! Latency against offered load, from several JSON summaries, as a PNG.
//!
//! One colour per `label` (a server or setup): a solid line with circles for the median and a
//! lighter line with triangles for p99 of the registration latency, on a log scale, against the
//! offered registrations per second. Text is drawn with DejaVu Sans embedded in the binary
//! (plotters' `ab_glyph` feature), so no system font or C library is needed.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::summary::Summary;

/// One point per run: (offered/s, p50 µs, p99 µs).
pub type Series = BTreeMap<String, Vec<(f64, u64, u64)>>;

/// Groups summaries by label, each sorted by offered load.
pub fn series(summaries: &[Summary]) -> Series {
    let mut out = Series::new();
    for s in summaries {
        let lat = &s.latency_us.registration;
        out.entry(s.label.clone()).or_default().push((
            s.rates.offered_per_s,
            lat.p50.max(1),
            lat.p99.max(1),
        ));
    }
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Draws the plot into `out` (PNG, 1024x640).
pub fn draw(summaries: &[Summary], out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    // Registering the same font twice is harmless; plotters keeps the first.
    let _ =
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    let data = series(summaries);
    let all = data.values().flatten();
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_min = all.clone().map(|p| p.1).min().unwrap_or(1).max(1) as f64 / 1.5;
    let y_max = all.map(|p| p.2).max().unwrap_or(10).max(10) as f64 * 1.5;

    let root = BitMapBackend::new(out, (1024, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("REGISTER latency vs offered load", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered registrations/s")
        .y_desc("latency (µs, log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (label, points)) in data.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let light = color.mix(0.5);
        let p50: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1 as f64)).collect();
        let p99: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.2 as f64)).collect();
        chart
            .draw_series(LineSeries::new(p50.clone(), color.stroke_width(2)))?
            .label(format!("{label} p50"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(p50.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        chart
            .draw_series(LineSeries::new(p99.clone(), light.stroke_width(2)))?
            .label(format!("{label} p99"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], light.stroke_width(2))
            });
        chart.draw_series(
            p99.iter()
                .map(|&p| TriangleMarker::new(p, 5, light.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Latency, Percentiles, Rates};

    fn run(label: &str, rate: f64, p50: u64, p99: u64) -> Summary {
        Summary {
            label: label.into(),
            rates: Rates {
                offered_per_s: rate,
                ..Rates::default()
            },
            latency_us: Latency {
                registration: Percentiles {
                    p50,
                    p99,
                    ..Percentiles::default()
                },
                ..Latency::default()
            },
            ..Summary::default()
        }
    }

    #[test]
    fn groups_by_label_sorted_by_load_and_draws_a_png() {
        let runs = [
            run("b", 2000.0, 300, 900),
            run("a", 5000.0, 200, 5000),
            run("a", 1000.0, 100, 400),
        ];
        let s = series(&runs);
        assert_eq!(s.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(s["a"], [(1000.0, 100, 400), (5000.0, 200, 5000)]);
        let path =
            std::env::temp_dir().join(format!("sipreg-loadgen-plot-{}.png", std::process::id()));
        draw(&runs, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(
            bytes.len() > 5000,
            "a plot with text, {} bytes",
            bytes.len()
        );
    }
}
