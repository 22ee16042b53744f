//! A few lines of hand-written SVG for the chapter programs' figures: no
//! plotting crate, and the same bytes on every run (every coordinate is
//! printed with a fixed number of decimals).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// An SVG document being written.
pub struct Svg {
    width: f32,
    height: f32,
    body: String,
}

/// Escape `s` for use as SVG text or an attribute value.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the chapter programs write their figures: `book/src/generated/`.
pub fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated")
}

impl Svg {
    /// An empty document of `width` × `height` pixels.
    pub fn new(width: f32, height: f32) -> Self {
        Svg {
            width,
            height,
            body: String::new(),
        }
    }

    /// A filled rectangle with its top-left corner at (`x`, `y`).
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"/>"#
        );
    }

    /// Text at (`x`, `y`) (the baseline), `anchor` one of `start`, `middle`, `end`.
    pub fn text(&mut self, x: f32, y: f32, size: f32, anchor: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" font-family="sans-serif" text-anchor="{anchor}">{}</text>"#,
            escape(s)
        );
    }

    /// Text like [`Svg::text`], turned by `degrees` about its anchor point.
    pub fn text_rotated(&mut self, x: f32, y: f32, size: f32, anchor: &str, degrees: f32, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" font-family="sans-serif" text-anchor="{anchor}" transform="rotate({degrees:.0} {x:.1} {y:.1})">{}</text>"#,
            escape(s)
        );
    }

    /// A straight line; `dash` is an SVG `stroke-dasharray` (empty: solid).
    #[allow(clippy::too_many_arguments)]
    pub fn line(
        &mut self,
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        stroke: &str,
        width: f32,
        dash: &str,
    ) {
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{dash}""#)
        };
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#
        );
    }

    /// A polyline through `points`.
    pub fn polyline(&mut self, points: &[(f32, f32)], stroke: &str, width: f32) {
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="{width}"/>"#,
            pts.join(" ")
        );
    }

    /// A filled circle.
    pub fn circle(&mut self, x: f32, y: f32, r: f32, fill: &str) {
        let _ = writeln!(
            self.body,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="{fill}"/>"#
        );
    }

    /// The whole document.
    pub fn finish(&self) -> String {
        let (w, h) = (self.width, self.height);
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n{}</svg>\n",
            self.body
        )
    }

    /// Write the document to `book/src/generated/<name>`.
    ///
    /// # Errors
    /// When the directory cannot be created or the file written.
    pub fn write(&self, name: &str) -> std::io::Result<()> {
        let dir = generated_dir();
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), self.finish())
    }
}

/// One panel of a bar chart: bars for `values` (fractions in [0, 1], drawn
/// against a full height of `h` at 1), each labelled with its value above
/// and `labels[i]` below, coloured `colors[i]`; `title` above the panel.
/// The panel's top-left corner is (`x0`, `y0`); it spans `w` × (`h` + 50).
#[allow(clippy::too_many_arguments)]
pub fn bar_panel(
    svg: &mut Svg,
    x0: f32,
    y0: f32,
    w: f32,
    h: f32,
    title: &str,
    values: &[f32],
    labels: &[String],
    colors: &[&str],
) {
    let bw = w / values.len().max(1) as f32;
    svg.text(x0 + 4.0, y0 + 16.0, 13.0, "start", title);
    let base = y0 + 34.0 + h;
    for (i, &v) in values.iter().enumerate() {
        let bh = v.clamp(0.0, 1.0) * h;
        let x = x0 + i as f32 * bw;
        svg.rect(x + 2.0, base - bh, bw - 4.0, bh, colors[i]);
        svg.text(
            x + bw / 2.0,
            base - bh - 4.0,
            9.0,
            "middle",
            &format!("{v:.2}"),
        );
        if let Some(label) = labels.get(i) {
            svg.text(x + bw / 2.0, base + 14.0, 10.0, "middle", label);
        }
    }
}
