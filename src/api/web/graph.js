// Opticon dashboard graphs: time series drawn as SVG by this code (no
// chart library). A graph shows one or more series over [from, to] with
// a hover readout (UTC, local time in the tooltip) and drag to zoom.
(() => {
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

/** "2026-12-01 14:05" in UTC. */
function utc(t) {
  return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
}

/** A short number: 1234567 -> "1.23M". */
function short(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100) return v.toFixed(0);
  return (Math.round(v * 100) / 100).toString();
}

/**
 * Draw a graph into `box`: spec {title, unit, series: [{name, label,
 * points: [[t, avg, min, max], ...]}]}, the span [from, to] in Unix
 * seconds, and onZoom(from, to) called after a drag.
 */
function drawGraph(box, spec, from, to, onZoom) {
  const W = 600, H = 160, L = 44, R = 8, T = 8, B = 20;
  box.textContent = "";
  box.className = "graph";
  const h3 = document.createElement("h3");
  h3.textContent = spec.title + (spec.unit ? " (" + spec.unit + ")" : "");
  const legend = document.createElement("span");
  legend.className = "legend muted";
  spec.series.forEach((s, i) => {
    const mark = document.createElement("i");
    mark.className = "c" + i;
    legend.append(mark, document.createTextNode(s.label));
  });
  h3.append(legend);
  box.append(h3);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  svg.setAttribute("aria-label", spec.title);
  box.append(svg);
  const readout = document.createElement("div");
  readout.className = "readout";
  box.append(readout);

  let max = 0, count = 0;
  for (const s of spec.series) for (const p of s.points) { if (p[1] > max) max = p[1]; count++; }
  if (max <= 0) max = 1;
  max *= 1.1;
  const x = (t) => L + ((t - from) / Math.max(1, to - from)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  svg.append(svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  svg.append(svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const f of [0, 0.5, 1]) {
    const v = (max / 1.1) * f;
    const label = svgEl("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" });
    label.textContent = short(v);
    svg.append(label);
  }
  for (const f of [0, 0.5, 1]) {
    const t = from + (to - from) * f;
    const label = svgEl("text", { x: x(t), y: H - 6, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle" });
    label.textContent = utc(t);
    svg.append(label);
  }
  if (count === 0) {
    const e = svgEl("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" });
    e.textContent = "no data in this span";
    svg.append(e);
  }
  spec.series.forEach((s, i) => {
    if (!s.points.length) return;
    // A gap of more than three slices breaks the line.
    const slice = (to - from) / Math.max(1, s.points.length);
    let d = "", last = null;
    for (const p of s.points) {
      const cmd = last === null || p[0] - last > Math.max(3 * slice, 180) ? "M" : "L";
      d += cmd + x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1);
      last = p[0];
    }
    const path = svgEl("path", { class: "line c" + i, d });
    path.dataset.points = String(s.points.length);
    svg.append(path);
  });
  const cursor = svgEl("line", { class: "cursor", x1: 0, y1: T, x2: 0, y2: H - B, visibility: "hidden" });
  const zoom = svgEl("rect", { class: "zoom", x: 0, y: T, width: 0, height: H - T - B, visibility: "hidden" });
  svg.append(cursor, zoom);
  const title = svgEl("title", {});
  svg.append(title);

  const toTime = (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    return from + ((px - L) / (W - L - R)) * (to - from);
  };
  let dragFrom = null;
  svg.addEventListener("mousemove", (ev) => {
    const t = toTime(ev);
    if (t < from || t > to) return;
    cursor.setAttribute("x1", x(t)); cursor.setAttribute("x2", x(t));
    cursor.setAttribute("visibility", "visible");
    const parts = spec.series.map((s) => {
      let best = null;
      for (const p of s.points) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      return s.label + " " + (best ? short(best[1]) : "-");
    });
    readout.textContent = utc(t) + " UTC  " + parts.join("  ");
    title.textContent = new Date(t * 1000).toString();
    if (dragFrom !== null) {
      const a = Math.min(x(dragFrom), x(t)), b = Math.max(x(dragFrom), x(t));
      zoom.setAttribute("x", a); zoom.setAttribute("width", b - a);
      zoom.setAttribute("visibility", "visible");
    }
  });
  svg.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); });
  svg.addEventListener("mousedown", (ev) => { dragFrom = toTime(ev); ev.preventDefault(); });
  svg.addEventListener("mouseup", (ev) => {
    if (dragFrom === null) return;
    const a = Math.max(from, Math.min(dragFrom, toTime(ev)));
    const b = Math.min(to, Math.max(dragFrom, toTime(ev)));
    dragFrom = null;
    zoom.setAttribute("visibility", "hidden");
    if (b - a >= 120 && onZoom) onZoom(Math.floor(a), Math.ceil(b));
  });
  return svg;
}

window.OpticonGraph = { drawGraph, utc, short };
})();
