// The histogram of matches over time, drawn as SVG bars. Dragging across
// it (or clicking one bar) selects a sub-range.

import { formatCount, formatDuration, formatShort } from './text.js';

const SVG = 'http://www.w3.org/2000/svg';
const HEIGHT = 96;
const AXIS = 16; // px at the bottom for time labels
const TOP = 6;

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
    this.drag = null;
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
    this.attachDrag(root, brush, (px) => fromMs + (Math.min(Math.max(px, 0), width) / width) * span);
    this.container.replaceChildren(root);
  }

  attachDrag(root, brush, msAt) {
    const pointX = (event) => event.clientX - root.getBoundingClientRect().left;
    root.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      root.setPointerCapture(event.pointerId);
      this.drag = { startX: pointX(event), target: event.target };
    });
    root.addEventListener('pointermove', (event) => {
      if (!this.drag) return;
      const x1 = pointX(event);
      const left = Math.min(this.drag.startX, x1);
      brush.setAttribute('x', left.toFixed(1));
      brush.setAttribute('width', Math.abs(x1 - this.drag.startX).toFixed(1));
      brush.setAttribute('visibility', 'visible');
    });
    const finish = (event) => {
      if (!this.drag) return;
      const { startX, target } = this.drag;
      this.drag = null;
      brush.setAttribute('visibility', 'hidden');
      const x1 = pointX(event);
      if (Math.abs(x1 - startX) >= 4) {
        const a = msAt(Math.min(startX, x1));
        const b = msAt(Math.max(startX, x1));
        if (b - a >= 1) this.onSelect(Math.floor(a), Math.ceil(b));
      } else if (target instanceof SVGRectElement && target.classList.contains('bar')) {
        this.onSelect(Number(target.dataset.start), Number(target.dataset.end));
      }
    };
    root.addEventListener('pointerup', finish);
    root.addEventListener('pointercancel', () => { this.drag = null; brush.setAttribute('visibility', 'hidden'); });
  }
}
