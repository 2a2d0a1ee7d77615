// Small SVG charts drawn by hand: a line over time and horizontal bars. Each chart has a title
// and a text description for screen readers, and a table fallback is the caller's CSV.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(width, height, title, description) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  root.append(svg("title", {}, title), svg("desc", {}, description));
  return root;
}

// points: [{label, value}] oldest first.
export function lineChart(points, title, format) {
  const W = 380, H = 200, L = 40, R = 14, T = 12, B = 30;
  const max = Math.max(1, ...points.map(p => p.value));
  const x = (i) => L + (points.length <= 1 ? 0 : i * (W - L - R) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const description = points.map(p => `${p.label}: ${format(p.value)}`).join(", ");
  const root = frame(W, H, title, description || "–");
  for (const v of [0, max / 2, max]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#c9d1da" }),
                svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  if (points.length) {
    const path = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    root.append(svg("path", { d: path, fill: "none", stroke: "#0b5cad", "stroke-width": 2.5 }));
    points.forEach((p, i) => root.append(svg("circle", { cx: x(i), cy: y(p.value), r: 3, fill: "#0b5cad" })));
    const step = Math.max(1, Math.ceil(points.length / 6));
    const last = points.length - 1;  // its label is always drawn: the ones too close to it are not
    points.forEach((p, i) => { if ((i % step === 0 && last - i >= step / 2) || i === last)
      root.append(svg("text", { x: x(i), y: H - 10, "text-anchor": i === points.length - 1 ? "end" : "middle" }, p.label)); });
  }
  return root;
}

// bars: [{label, value}] largest first.
export function barChart(bars, title, format) {
  const W = 380, row = 28, L = 110, R = 50;
  const H = Math.max(1, bars.length) * row + 8;
  const max = Math.max(1, ...bars.map(b => b.value));
  const root = frame(W, H, title, bars.map(b => `${b.label}: ${format(b.value)}`).join(", ") || "–");
  bars.forEach((b, i) => {
    const width = (W - L - R) * b.value / max;
    root.append(svg("text", { x: L - 8, y: i * row + 22, "text-anchor": "end" }, b.label),
                svg("rect", { x: L, y: i * row + 8, width: Math.max(width, 1), height: row - 10, fill: "#0b5cad", rx: 3 }),
                svg("text", { x: L + width + 6, y: i * row + 22 }, format(b.value)));
  });
  return root;
}
