//! The convergence plot: fraction of up-to-date nodes per round against the
//! push-pull epidemic curve (theory.md section 2).

use plotters::prelude::*;

use crate::report::Report;
use crate::scenario::push_pull_curve;

/// Draws `report`'s per-round fraction of up-to-date nodes, and the push-pull
/// mean-field curve for the same cluster size, into an SVG file.
pub fn draw(report: &Report, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let rounds = report.per_round.len().max(1);
    let ideal = push_pull_curve(report.nodes, rounds);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{:?}: {} nodes, {} keys, budget {} B, loss {:.0} %",
                report.scenario,
                report.nodes,
                report.keys,
                report.budget,
                report.loss * 100.0
            ),
            ("sans-serif", 18),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..rounds as f64, 0f64..1.0)?;
    chart.configure_mesh().x_desc("round").y_desc("fraction of nodes up to date").draw()?;
    let observed: Vec<(f64, f64)> =
        std::iter::once((0.0, 0.0)).chain(report.per_round.iter().map(|r| (r.round as f64, r.up_to_date))).collect();
    chart
        .draw_series(LineSeries::new(observed, &BLUE))?
        .label("rumormill (simulated)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    let curve: Vec<(f64, f64)> = ideal.iter().enumerate().map(|(i, f)| (i as f64, *f)).collect();
    chart
        .draw_series(LineSeries::new(curve, &RED))?
        .label("push-pull epidemic (mean field)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}
