//! The report's one inline style sheet: readable on screen in a light or dark scheme, and
//! printed in black on white with charts kept whole on a page.

/// The style sheet, inlined in the report's `<head>` so that the file needs nothing else.
pub(crate) const CSS: &str = r#"
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a;
  --grid: #d0d7de; --s0: #0969da; --s1: #8250df; --s2: #bf3989; --s3: #1a7f37;
  --fail: #cf222e; --warn: #9a6700; --base: #57606a; --mark: #57606a; --code: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --grid: #30363d;
    --s0: #4493f8; --s1: #ab7df8; --s2: #f778ba; --s3: #3fb950;
    --fail: #f85149; --warn: #d29922; --base: #8d96a0; --mark: #8d96a0; --code: #161b22; }
}
@media print {
  :root { --fg: #000; --bg: #fff; --muted: #444; --grid: #ccc; --code: #f4f4f4; }
  figure, table, pre { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
}
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid var(--grid); padding-bottom: .2rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .9em;
  background: var(--code); }
pre { padding: .75rem; overflow-x: auto; white-space: pre-wrap; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--grid); padding: .25rem .5rem; text-align: left; }
hr { border: 0; border-top: 1px solid var(--grid); }
figure.chart { margin: 1rem 0; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: .85rem; }
svg text { fill: var(--fg); font: 11px system-ui, sans-serif; }
svg text.title { font-size: 14px; font-weight: 600; }
svg text.label { font-size: 12px; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .axis { stroke: var(--fg); stroke-width: 1; }
svg .line { fill: none; stroke-width: 2; }
svg .level, svg .marker { stroke-width: 1.5; stroke-dasharray: 5 4; }
svg .s0 { stroke: var(--s0); --c: var(--s0); } svg .s1 { stroke: var(--s1); --c: var(--s1); }
svg .s2 { stroke: var(--s2); --c: var(--s2); } svg .s3 { stroke: var(--s3); --c: var(--s3); }
svg .fail { stroke: var(--fail); --c: var(--fail); }
svg .warn { stroke: var(--warn); --c: var(--warn); }
svg .base { stroke: var(--base); --c: var(--base); }
svg .mark { stroke: var(--mark); --c: var(--mark); }
svg circle, svg rect, svg text.level-label, svg text.marker-label { fill: var(--c); }
svg text.level-label, svg text.marker-label { stroke: none; font-size: 10px; }
"#;
