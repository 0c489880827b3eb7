// A time-series chart (uPlot) that follows its container's width.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./ui.js";

export function Chart({ title, unit, points, field, color = "#3867d6" }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = [points.map((p) => p.time), points.map((p) => p[field])];

  useEffect(() => {
    const el = box.current;
    const width = () => Math.max(240, el.clientWidth);
    plot.current = new uPlot(
      {
        width: width(),
        height: 160,
        legend: { show: false },
        scales: { x: { time: true } },
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
