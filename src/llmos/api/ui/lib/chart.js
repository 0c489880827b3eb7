// A time-series chart (uPlot) that follows its container's width.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./ui.js";

// The time axis when there are fewer than two samples (uPlot stretches one over 1,000 days):
// the last few minutes up to the sample, or up to now.
const SHORT_WINDOW_SECONDS = 300;

function timeRange(u, min, max) {
  const times = u.data[0] || [];
  if (times.length >= 2) return [min, max];
  const end = times.length ? times[0] : Date.now() / 1000;
  return [end - SHORT_WINDOW_SECONDS, end + SHORT_WINDOW_SECONDS / 20];
}

export function Chart({ title, unit, points, field, color = "#3867d6" }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = [points.map((p) => p.time), points.map((p) => p[field])];

  useEffect(() => {
    const el = box.current;
    const width = () => Math.max(240, el.clientWidth);
    // The seconds the time axis spans, for tests: the axis itself is drawn on a canvas.
    const showSpan = (u, key) => {
      if (key === "x") el.dataset.xSpan = Math.round(u.scales.x.max - u.scales.x.min);
    };
    plot.current = new uPlot(
      {
        width: width(),
        height: 160,
        legend: { show: false },
        scales: { x: { time: true, range: timeRange } },
        hooks: { setScale: [showSpan] },
        axes: [{}, { label: unit, size: 56 }],
        series: [{}, { label: title, stroke: color, width: 2, fill: `${color}22`, spanGaps: true }],
      },
      data,
      el,
    );
    const observer = new ResizeObserver(() => plot.current.setSize({ width: width(), height: 160 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current.destroy();
    };
  }, []);

  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [points]);

  const last = points.length ? points[points.length - 1][field] : null;
  return html`<figure class="chart card" aria-label=${title}>
    <figcaption><span>${title}</span><b>${last === null || last === undefined ? "–" : `${Number(last).toFixed(2)} ${unit}`}</b></figcaption>
    <div ref=${box} class="chart-box"></div>
  </figure>`;
}
