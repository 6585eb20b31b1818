//! The scale run's picture: completed actions over time, against the line the rate limits
//! allow, throttles marked (SVG, plotters).

use std::path::Path;

/// Completed actions over time, against the line the rate limits allow, throttles marked.
pub fn plot(
    path: &Path,
    completions: &[f64],
    throttles: &[f64],
    buckets: &[(String, f64, f64, f64, f64, u64)],
    launches: usize,
    concurrency: usize,
) -> Result<(), String> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let end = completions.last().copied().unwrap_or(1.0).max(1.0) * 1.05;
    // The most completions the limits allow by time t: for each bucket, what it lets through by
    // then, over the calls one launch makes of it.
    let allowed = |t: f64| -> f64 {
        buckets
            .iter()
            .filter(|(_, calls, ..)| *calls > 0.0)
            .map(|(_, calls, size, refill, ..)| {
                let per_launch = calls / launches as f64;
                (size + refill * t) / per_launch
            })
            .fold(f64::INFINITY, f64::min)
            .min(launches as f64)
    };
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{launches} launches under AWS's rate limits, concurrency {concurrency}"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..(launches as f64 * 1.05))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the launches were delivered")
        .y_desc("lifecycle actions completed")
        .draw()
        .map_err(|e| e.to_string())?;
    let steps = 400;
    chart
        .draw_series(LineSeries::new(
            (0..=steps).map(|i| {
                let t = end * i as f64 / steps as f64;
                (t, allowed(t))
            }),
            ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label("what the rate limits allow")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(120, 120, 120)));
    chart
        .draw_series(LineSeries::new(
            completions
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, (i + 1) as f64)),
            ShapeStyle::from(&BLUE).stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label("completed by pinhook")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    // Each throttle as a tick on the completion curve, where it happened.
    let done_by = |t: f64| completions.partition_point(|c| *c <= t) as f64;
    chart
        .draw_series(
            throttles
                .iter()
                .filter(|t| **t >= 0.0 && **t <= end)
                .map(|t| Circle::new((*t, done_by(*t)), 2, RED.filled())),
        )
        .map_err(|e| e.to_string())?
        .label("a throttled request")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
