// Small inline-SVG charts: no library, every figure also written out as text.

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

function chart(width, height, title, ...children) {
  // role=img with a title: a screen reader announces the chart by what it shows; the numbers
  // are in the chart's text (and in the tables beside it).
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": title },
    svg("title", {}, title),
    ...children,
  );
}

/**
 * A funnel: one centred bar per row, as wide as its value against the largest.
 * rows: [{id, label, value, note}]
 */
export function funnelChart(rows, title) {
  const width = 400;
  const rowHeight = 38;
  const labelWidth = 104;
  const barArea = width - labelWidth - 8;
  const largest = Math.max(1, ...rows.map((row) => row.value));
  const height = rows.length * rowHeight + 4;
  const bars = rows.map((row, index) => {
    const y = index * rowHeight + 2;
    const barWidth = Math.max(3, (row.value / largest) * barArea);
    const x = labelWidth + (barArea - barWidth) / 2;
    const centre = labelWidth + barArea / 2;
    return svg(
      "g",
      { class: "funnel-row", "data-stage": row.id },
      svg("text", { x: 0, y: y + rowHeight / 2 + 5, class: "chart-label" }, row.label),
      svg("rect", { x, y: y + 3, width: barWidth, height: rowHeight - 8, rx: 4, class: `bar stage-${row.id.toLowerCase()}` }),
      // Inside its bar when the bar has room for it, else just past the bar's end.
      barWidth >= 28
        ? svg("text", { x: centre, y: y + rowHeight / 2 + 6, "text-anchor": "middle", class: "chart-value funnel-count inside" }, String(row.value))
        : svg("text", { x: x + barWidth + 6, y: y + rowHeight / 2 + 6, class: "chart-value funnel-count" }, String(row.value)),
    );
  });
  return chart(width, height, title, ...bars);
}

/**
 * Horizontal bars on one scale. bars: [{label, value, text, kind}]; `text` is the value as
 * written beside the bar, `kind` a CSS class (value, cost, ...).
 */
export function barChart(bars, title) {
  const width = 400;
  const rowHeight = 30;
  const labelWidth = 124;
  const textWidth = 84;
  const barArea = width - labelWidth - textWidth;
  const largest = Math.max(1e-9, ...bars.map((bar) => bar.value));
  const height = bars.length * rowHeight + 4;
  const rows = bars.map((bar, index) => {
    const y = index * rowHeight + 2;
    const barWidth = bar.value > 0 ? Math.max(2, (bar.value / largest) * barArea) : 0;
    return svg(
      "g",
      {},
      svg("text", { x: 0, y: y + rowHeight / 2 + 5, class: "chart-label" }, bar.label),
      svg("rect", { x: labelWidth, y: y + 5, width: barWidth, height: rowHeight - 10, rx: 3, class: `bar ${bar.kind}` }),
      svg("text", { x: labelWidth + barWidth + 6, y: y + rowHeight / 2 + 5, class: "chart-value" }, bar.text),
    );
  });
  return chart(width, height, title, ...rows);
}

/** A share as a thin meter (0..1). */
export function shareMeter(share, title) {
  const width = 240;
  const filled = Math.max(0, Math.min(1, share)) * width;
  return chart(
    width,
    14,
    title,
    svg("rect", { x: 0, y: 0, width, height: 14, rx: 7, class: "meter-track" }),
    svg("rect", { x: 0, y: 0, width: filled, height: 14, rx: 7, class: "meter-fill" }),
  );
}

/**
 * Points over time on a 0..1 scale (adoption rates), with a dashed threshold line.
 * points: [{at: Date, value, text}]
 */
export function trendChart(points, threshold, title) {
  const width = 480;
  const height = 170;
  const left = 40;
  const right = 16;
  const top = 12;
  const bottom = 28;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const times = points.map((point) => point.at.getTime());
  const first = Math.min(...times);
  const last = Math.max(...times);
  const span = last - first || 1;
  const xOf = (time) => (points.length === 1 ? left + plotWidth / 2 : left + ((time - first) / span) * plotWidth);
  const yOf = (value) => top + (1 - Math.max(0, Math.min(1, value))) * plotHeight;
  const axis = [0, 0.5, 1].map((tick) =>
    svg(
      "g",
      {},
      svg("line", { x1: left, x2: width - right, y1: yOf(tick), y2: yOf(tick), class: "gridline" }),
      svg("text", { x: left - 6, y: yOf(tick) + 4, "text-anchor": "end", class: "chart-axis" }, `${Math.round(tick * 100)}%`),
    ),
  );
  const line =
    points.length > 1
      ? svg("polyline", { points: points.map((p) => `${xOf(p.at.getTime())},${yOf(p.value)}`).join(" "), class: "trend-line" })
      : null;
  const dots = points.map((point) =>
    svg("circle", { cx: xOf(point.at.getTime()), cy: yOf(point.value), r: 4, class: "trend-dot" }, svg("title", {}, point.text)),
  );
  const ends = [points[0], points[points.length - 1]].filter((p, i, all) => i === 0 || p !== all[0]);
  const dates = ends.map((point, index) =>
    svg(
      "text",
      {
        x: xOf(point.at.getTime()),
        y: height - 8,
        "text-anchor": points.length === 1 ? "middle" : index === 0 ? "start" : "end",
        class: "chart-axis",
      },
      point.at.toISOString().slice(0, 10),
    ),
  );
  const needed =
    threshold === null
      ? null
      : svg(
          "g",
          {},
          svg("line", { x1: left, x2: width - right, y1: yOf(threshold), y2: yOf(threshold), class: "threshold" }),
          svg("text", { x: width - right, y: yOf(threshold) - 5, "text-anchor": "end", class: "chart-axis" }, `policy ${Math.round(threshold * 100)}%`),
        );
  return chart(width, height, title, ...axis, needed, line, ...dots, ...dates);
}

/**
 * Monthly columns against a budget line. months: [{label, value, text, over, partial}]
 */
export function costChart(months, budget, title) {
  const width = 480;
  const height = 190;
  const left = 8;
  const top = 22;
  const bottom = 30;
  const plotHeight = height - top - bottom;
  const largest = Math.max(1e-9, budget ?? 0, ...months.map((month) => month.value));
  const slot = (width - left * 2) / Math.max(months.length, 1);
  const barWidth = Math.min(44, slot * 0.6);
  const yOf = (value) => top + (1 - value / largest) * plotHeight;
  const columns = months.map((month, index) => {
    const centre = left + slot * index + slot / 2;
    const kind = month.over ? "over" : month.partial ? "partial" : "cost";
    return svg(
      "g",
      {},
      svg("rect", { x: centre - barWidth / 2, y: yOf(month.value), width: barWidth, height: top + plotHeight - yOf(month.value), class: `bar ${kind}` }),
      svg("text", { x: centre, y: yOf(month.value) - 5, "text-anchor": "middle", class: "chart-value small" }, month.text),
      svg("text", { x: centre, y: height - 10, "text-anchor": "middle", class: "chart-axis" }, month.label),
    );
  });
  const budgetLine =
    budget === null
      ? null
      : svg(
          "g",
          {},
          svg("line", { x1: left, x2: width - left, y1: yOf(budget), y2: yOf(budget), class: "threshold" }),
          // At the left: the latest month, at the right, is the one read first; keep it clear.
          svg("text", { x: left, y: yOf(budget) - 5, class: "chart-axis" }, "budget"),
        );
  return chart(width, height, title, ...columns, budgetLine);
}
