// Charts over time, drawn as SVG: the histogram of matches (bars) and a
// timechart's lines. Dragging across either (or clicking one bar) selects
// a sub-range.

import { h } from './dom.js';
import { formatCount, formatDuration, formatNumber, formatShort, NO_VALUE } from './text.js';

const SVG = 'http://www.w3.org/2000/svg';
const HEIGHT = 96;
const AXIS = 16; // px at the bottom for time labels
const TOP = 6;
const LINES_HEIGHT = 200;
const LINES_LEFT = 56; // px at the left for value labels
const LINES_RIGHT = 8;
// Series drawn at most (the largest by total); the table has them all.
const MAX_SERIES = 12;
// Colours and dash patterns of the series, as classes of style.css.
const COLOURS = 6;
const DASHES = 3;
// Markers on every point while a chart has at most this many.
const MAX_MARKERS = 2000;

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

export class Histogram {
  // `onSelect(fromMs, toMs)` is called when the user selects a range.
  constructor(container, onSelect) {
    this.container = container;
    this.onSelect = onSelect;
    this.data = null;
    new ResizeObserver(() => this.draw()).observe(container);
  }

  // `answer` is the histogram API's JSON; the bounds are the search's.
  show(answer, fromMs, toMs) {
    this.data = { answer, fromMs, toMs };
    this.draw();
  }

  clear() {
    this.data = null;
    this.container.replaceChildren();
  }

  draw() {
    if (!this.data) return;
    const { answer, fromMs, toMs } = this.data;
    const width = Math.max(200, this.container.clientWidth);
    const root = svg('svg', {
      width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img',
      'aria-label': `${formatCount(answer.count)} matches from ${formatShort(fromMs)} to ` +
        `${formatShort(toMs)}` + (answer.interval_ms ? `, in buckets of ${formatDuration(answer.interval_ms / 1000)}` : ''),
    });
    const span = Math.max(1, toMs - fromMs);
    const x = (ms) => ((Math.min(Math.max(ms, fromMs), toMs) - fromMs) / span) * width;
    const plotHeight = HEIGHT - AXIS - TOP;
    const max = Math.max(1, ...answer.buckets.map((b) => b.count));
    const bars = svg('g', { class: 'bars' });
    for (const bucket of answer.buckets) {
      const start = Date.parse(bucket.start);
      const end = Date.parse(bucket.end);
      const x0 = x(start);
      const w = Math.max(1, x(end) - x0 - 1);
      const h = bucket.count === 0 ? 0 : Math.max(2, (bucket.count / max) * plotHeight);
      const rect = svg('rect', {
        class: 'bar', x: x0.toFixed(1), y: (TOP + plotHeight - h).toFixed(1),
        width: w.toFixed(1), height: h.toFixed(1),
        'data-count': bucket.count, 'data-start': start, 'data-end': end,
      });
      const title = svg('title');
      title.textContent = `${formatCount(bucket.count)} from ${formatShort(start, true)} to ${formatShort(end, true)}`;
      rect.append(title);
      bars.append(rect);
    }
    root.append(bars);
    if (answer.count === 0) {
      const empty = svg('text', { class: 'empty', x: width / 2, y: TOP + plotHeight / 2, 'text-anchor': 'middle' });
      empty.textContent = 'No matches in this range';
      root.append(empty);
    }
    const ticks = Math.max(2, Math.floor(width / 140));
    for (let i = 0; i <= ticks; i += 1) {
      const ms = fromMs + (span * i) / ticks;
      const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
      const label = svg('text', { class: 'axis', x: x(ms), y: HEIGHT - 4, 'text-anchor': anchor });
      label.textContent = formatShort(ms, span < 10 * 60 * 1000);
      root.append(label);
    }
    const brush = svg('rect', { class: 'brush', x: 0, y: 0, width: 0, height: HEIGHT - AXIS, visibility: 'hidden' });
    root.append(brush);
    attachDrag(root, brush, (px) => fromMs + (Math.min(Math.max(px, 0), width) / width) * span, this.onSelect);
    this.container.replaceChildren(root);
  }
}

// Selects a range by dragging across `root` (or clicking a bar): `msAt(px)`
// is the time at a point, `onSelect(fromMs, toMs)` gets the range.
function attachDrag(root, brush, msAt, onSelect) {
  let drag = null;
  const pointX = (event) => event.clientX - root.getBoundingClientRect().left;
  const hide = () => brush.setAttribute('visibility', 'hidden');
  root.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    root.setPointerCapture(event.pointerId);
    drag = { startX: pointX(event), target: event.target };
  });
  root.addEventListener('pointermove', (event) => {
    if (!drag) return;
    const x1 = pointX(event);
    brush.setAttribute('x', Math.min(drag.startX, x1).toFixed(1));
    brush.setAttribute('width', Math.abs(x1 - drag.startX).toFixed(1));
    brush.setAttribute('visibility', 'visible');
  });
  root.addEventListener('pointerup', (event) => {
    if (!drag) return;
    const { startX, target } = drag;
    drag = null;
    hide();
    const x1 = pointX(event);
    if (Math.abs(x1 - startX) >= 4) {
      const a = msAt(Math.min(startX, x1));
      const b = msAt(Math.max(startX, x1));
      if (b - a >= 1) onSelect(Math.floor(a), Math.ceil(b));
    } else if (target instanceof SVGRectElement && target.classList.contains('bar')) {
      onSelect(Number(target.dataset.start), Number(target.dataset.end));
    }
  });
  root.addEventListener('pointercancel', () => { drag = null; hide(); });
}

// The lines of a timechart answer (one with a column of kind `time`): one
// series per combination of the group columns' values, in the order they
// first appear, each with its points [bucket start ms, value of the first
// aggregate column] oldest first. `label` names the combination (the
// aggregate's name when there are no group columns).
export function timechartSeries(answer) {
  const { columns } = answer;
  const time = columns.findIndex((c) => c.kind === 'time');
  const value = columns.findIndex((c) => c.kind === 'aggregate');
  const groups = columns.flatMap((c, i) => (c.kind === 'group' ? [i] : []));
  if (time < 0 || value < 0) return [];
  const byKey = new Map();
  for (const row of answer.rows) {
    const values = groups.map((i) => row[i]);
    const key = JSON.stringify(values);
    let series = byKey.get(key);
    if (!series) {
      const label = groups.length
        ? values.map((v) => (v === null || v === undefined ? NO_VALUE : String(v))).join(', ')
        : columns[value].name;
      series = { key, label, points: [] };
      byKey.set(key, series);
    }
    series.points.push([Date.parse(row[time]), row[value]]);
  }
  const all = [...byKey.values()];
  for (const series of all) series.points.sort((a, b) => a[0] - b[0]);
  return all;
}

// Round numbers for a value axis: 1, 2 or 5 times a power of ten, at or
// above `n`.
function niceCeil(n) {
  if (n <= 0) return 0;
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= n);
}

export class LineChart {
  // `onSelect(fromMs, toMs)` is called when the user selects a range;
  // `legend` is the list that names the series.
  constructor(container, legend, onSelect) {
    this.container = container;
    this.legend = legend;
    this.onSelect = onSelect;
    this.data = null;
    new ResizeObserver(() => this.draw()).observe(container);
  }

  // `answer` is the stats API's JSON for a timechart; the bounds are the
  // search's.
  show(answer, fromMs, toMs) {
    const all = timechartSeries(answer);
    const total = (s) => s.points.reduce((sum, [, v]) => sum + (typeof v === 'number' ? Math.abs(v) : 0), 0);
    const drawn = new Set([...all].sort((a, b) => total(b) - total(a)).slice(0, MAX_SERIES));
    const series = all.filter((s) => drawn.has(s));
    const valueColumn = answer.columns.find((c) => c.kind === 'aggregate');
    const groupNames = answer.columns.filter((c) => c.kind === 'group').map((c) => c.name);
    this.data = {
      answer, series, groupNames, hidden: all.length - series.length,
      valueName: valueColumn ? valueColumn.name : '', fromMs, toMs,
    };
    this.drawLegend();
    this.draw();
  }

  clear() {
    this.data = null;
    this.container.replaceChildren();
    this.legend.replaceChildren();
  }

  drawLegend() {
    const { series, hidden, valueName, groupNames } = this.data;
    // Without groups the one series is named after the aggregate already.
    const title = groupNames.length
      ? h('li', { class: 'legend-title' }, h('code', {}, valueName), ' by ', h('code', {}, groupNames.join(', ')))
      : null;
    const items = series.map((s, i) => h('li', { 'data-series': s.label },
      h('span', { class: `swatch ${styleOf(i)}`, 'aria-hidden': 'true' }), s.label));
    if (hidden > 0) items.push(h('li', { class: 'more-series' }, `and ${formatCount(hidden)} more series, in the table`));
    this.legend.replaceChildren(...(title ? [title] : []), ...items);
  }

  draw() {
    if (!this.data) return;
    const { answer, series, valueName, fromMs, toMs } = this.data;
    const width = Math.max(240, this.container.clientWidth);
    const plotWidth = width - LINES_LEFT - LINES_RIGHT;
    const plotHeight = LINES_HEIGHT - AXIS - TOP;
    const interval = answer.interval_ms || 0;
    const root = svg('svg', {
      width, height: LINES_HEIGHT, viewBox: `0 0 ${width} ${LINES_HEIGHT}`, role: 'img',
      'aria-label': `${valueName} from ${formatShort(fromMs)} to ${formatShort(toMs)}, ` +
        `${series.length} series` +
        (interval ? `, in buckets of ${formatDuration(interval / 1000)}` : ''),
    });
    const span = Math.max(1, toMs - fromMs);
    const x = (ms) => LINES_LEFT + ((Math.min(Math.max(ms, fromMs), toMs) - fromMs) / span) * plotWidth;
    const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => typeof v === 'number');
    const hi = niceCeil(Math.max(0, ...values)) || 1;
    const lo = -niceCeil(-Math.min(0, ...values));
    const y = (v) => TOP + plotHeight - ((v - lo) / (hi - lo)) * plotHeight;

    const grid = svg('g', { class: 'grid' });
    const ticks = lo < 0 ? [lo, 0, hi] : [0, hi / 2, hi];
    for (const v of ticks) {
      grid.append(svg('line', { x1: LINES_LEFT, x2: width - LINES_RIGHT, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }));
      const label = svg('text', { class: 'axis', x: LINES_LEFT - 6, y: (y(v) + 4).toFixed(1), 'text-anchor': 'end' });
      label.textContent = formatNumber(v);
      grid.append(label);
    }
    root.append(grid);

    const markers = series.reduce((n, s) => n + s.points.length, 0) <= MAX_MARKERS;
    const lines = svg('g', { class: 'lines' });
    series.forEach((s, i) => {
      const where = ([t]) => t + interval / 2;
      let d = '';
      let previous = null;
      for (const point of s.points) {
        const [t, v] = point;
        if (typeof v !== 'number') { previous = null; continue; }
        // A missing bucket (no row for this series) breaks the line.
        const joined = previous !== null && (!interval || t - previous <= interval);
        d += `${joined ? 'L' : 'M'}${x(where(point)).toFixed(1)} ${y(v).toFixed(1)}`;
        previous = t;
      }
      const path = svg('path', { class: `series ${styleOf(i)}`, d, 'data-series': s.label });
      const title = svg('title');
      title.textContent = s.label;
      path.append(title);
      lines.append(path);
      if (!markers) return;
      const dots = svg('g', { class: `points ${styleOf(i)}` });
      for (const point of s.points) {
        const [t, v] = point;
        if (typeof v !== 'number') continue;
        const dot = svg('circle', { class: 'point', cx: x(where(point)).toFixed(1), cy: y(v).toFixed(1), r: 2.5 });
        const tip = svg('title');
        tip.textContent = `${s.label}: ${formatNumber(v)} at ${formatShort(t, true)}`;
        dot.append(tip);
        dots.append(dot);
      }
      lines.append(dots);
    });
    root.append(lines);
    if (series.length === 0) {
      const empty = svg('text', { class: 'empty', x: width / 2, y: TOP + plotHeight / 2, 'text-anchor': 'middle' });
      empty.textContent = answer.count === 0 ? 'No matches in this range' : `No values of ${valueName}`;
      root.append(empty);
    }
    const xTicks = Math.max(2, Math.floor(plotWidth / 140));
    for (let i = 0; i <= xTicks; i += 1) {
      const ms = fromMs + (span * i) / xTicks;
      const anchor = i === 0 ? 'start' : i === xTicks ? 'end' : 'middle';
      const label = svg('text', { class: 'axis', x: x(ms), y: LINES_HEIGHT - 4, 'text-anchor': anchor });
      label.textContent = formatShort(ms, span < 10 * 60 * 1000);
      root.append(label);
    }
    const brush = svg('rect', { class: 'brush', x: 0, y: 0, width: 0, height: LINES_HEIGHT - AXIS, visibility: 'hidden' });
    root.append(brush);
    attachDrag(root, brush, (px) => fromMs + (Math.min(Math.max(px - LINES_LEFT, 0), plotWidth) / plotWidth) * span, this.onSelect);
    this.container.replaceChildren(root);
  }
}

// The classes that give the i-th series its colour and dash pattern.
function styleOf(i) {
  return `c${i % COLOURS} d${Math.floor(i / COLOURS) % DASHES}`;
}
