//! Charts of a run's curves (the client curve, the store-size curve), as
//! SVG drawn by `plotters`: one file per series, one panel per unit
//! (throughput, p99), the measured figure and its same-run baseline as two
//! lines. Text is written as SVG text, so nothing needs system fonts.

use plotters::prelude::*;

use crate::{Curve, Summary, curves};

/// One chart: its file name (`<series>.svg`) and its SVG text.
pub struct Chart {
    pub file: String,
    pub svg: String,
}

/// The charts of every series in `summary` that has at least two points.
pub fn charts(summary: &Summary) -> Result<Vec<Chart>, String> {
    let all = curves(summary);
    let mut series: Vec<&str> = all.iter().map(|c| c.series.as_str()).collect();
    series.dedup();
    series
        .into_iter()
        .map(|name| {
            let panels: Vec<&Curve> = all.iter().filter(|c| c.series == name).collect();
            draw(name, &panels).map(|svg| Chart {
                file: format!("{}.svg", file_stem(name)),
                svg,
            })
        })
        .collect()
}

fn file_stem(series: &str) -> String {
    let stem: String = series
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("curve-{stem}")
}

fn draw(series: &str, panels: &[&Curve]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let width = 520 * panels.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (width, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((1, panels.len()));
        for (area, curve) in areas.iter().zip(panels) {
            panel(area, series, curve)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &str,
    curve: &Curve,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let xs = curve.points.iter().map(|p| p.0);
    let (x_lo, x_hi) = xs.fold((f64::INFINITY, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let y_hi = curve
        .points
        .iter()
        .flat_map(|p| [Some(p.1), p.2])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0f64, f64::max)
        * 1.1;
    let y_hi = if y_hi > 0.0 { y_hi } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} ({}) by {series}", curve.label, curve.unit),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d((x_lo.max(1e-9)..x_hi * 1.05).log_scale(), 0f64..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(series)
        .y_desc(curve.unit.as_str())
        .x_label_formatter(&|x| crate::number(*x))
        .y_label_formatter(&|y| crate::number(*y))
        .draw()
        .map_err(err)?;
    let measured: Vec<(f64, f64)> = curve.points.iter().map(|p| (p.0, p.1)).collect();
    chart
        .draw_series(LineSeries::new(measured.clone(), BLUE.stroke_width(2)))
        .map_err(err)?
        .label(curve.label.as_str())
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(measured.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(err)?;
    let baseline: Vec<(f64, f64)> = curve
        .points
        .iter()
        .filter_map(|p| p.2.map(|b| (p.0, b)))
        .collect();
    if !baseline.is_empty() {
        chart
            .draw_series(LineSeries::new(baseline.clone(), RED.stroke_width(2)))
            .map_err(err)?
            .label(curve.baseline_label.as_str())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(baseline.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}
