// Text helpers with no DOM: offsets between the server's units and
// JavaScript's, filter terms, and time formatting.

// Converts `[start, end)` UTF-8 byte ranges into `message` (as the search
// API answers `highlights`) into UTF-16 index ranges for `String#slice`.
// Ranges that do not fall on character boundaries are widened to them;
// ranges past the end are clipped. Result is sorted and non-overlapping.
export function byteRangesToStringRanges(message, ranges) {
  if (!ranges || ranges.length === 0) return [];
  // byteAt[i]: the UTF-8 offset of UTF-16 index i, for every code point start.
  const starts = []; // pairs [byte offset, string index] per code point
  let byte = 0;
  let index = 0;
  for (const ch of message) {
    starts.push([byte, index]);
    const cp = ch.codePointAt(0);
    byte += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    index += ch.length;
  }
  starts.push([byte, index]);
  const toIndex = (target, roundUp) => {
    // Binary search for the code point containing byte `target`.
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid][0] <= target) lo = mid; else hi = mid - 1;
    }
    if (roundUp && starts[lo][0] < target && lo + 1 < starts.length) return starts[lo + 1][1];
    return starts[lo][1];
  };
  const out = ranges
    .filter((r) => Array.isArray(r) && r.length === 2 && r[1] > r[0])
    .map(([s, e]) => [toIndex(Math.max(0, s), false), toIndex(Math.min(e, byte), true)])
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

// The UTF-16 index of the `position`-th character (Unicode scalar value),
// which is how the server counts query error positions.
export function charPositionToIndex(text, position) {
  let count = 0;
  let index = 0;
  for (const ch of text) {
    if (count === position) return index;
    count += 1;
    index += ch.length;
  }
  return text.length;
}

// Whether the query has a `|` outside double quotes, which starts its
// pipes (a backslash escapes the next character inside quotes), as the
// server splits it.
export function hasPipe(query) {
  let quoted = false;
  let escaped = false;
  for (const ch of query) {
    if (escaped) escaped = false;
    else if (ch === '\\' && quoted) escaped = true;
    else if (ch === '"') quoted = !quoted;
    else if (ch === '|' && !quoted) return true;
  }
  return false;
}

// A `name:value` query term, quoting the value when the language needs it.
export function filterTerm(name, value) {
  const plain = /^[\p{L}\p{N}_./@-]+$/u.test(value) && !value.startsWith('-');
  if (plain) return `${name}:${value}`;
  return `${name}:"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

// The fields API lists the built-in fields first, in this order, then the
// parsed fields by name.
const BUILT_IN_FIELDS = ['host', 'source', 'app', 'severity'];
// Names a query reads as something other than a parsed field.
const RESERVED_NAMES = new Set([...BUILT_IN_FIELDS, 'message', 'file_id', 'fields', 'tags']);
// What the query language accepts as a field name (the server's lexer).
const FIELD_NAME = /^[\p{Alphabetic}_@][\p{Alphabetic}\p{N}_@.-]*$/u;

// How a query names each field of the fields API's answer, in its order:
// a built-in field as it is, a parsed field by its name, or as
// `fields.NAME` when its name means something else in a query; `null` for
// a name the language cannot write. A built-in name is the built-in field
// while the answer is still in the built-in part of its list.
export function fieldQueryNames(names) {
  let next = 0; // where in BUILT_IN_FIELDS the next built-in field may be
  return names.map((name) => {
    const at = BUILT_IN_FIELDS.indexOf(name, next);
    if (at >= 0) {
      next = at + 1;
      return name;
    }
    next = BUILT_IN_FIELDS.length;
    if (!FIELD_NAME.test(name) || name.split('.').includes('')) return null;
    const taken = RESERVED_NAMES.has(name) || name.startsWith('tags.') || name.startsWith('fields.');
    return taken ? `fields.${name}` : name;
  });
}

// A field value of an API answer (a JSON string, number or boolean) as
// text, the way it is shown and written into a query.
export function valueText(value) {
  if (value === null || value === undefined) return NO_VALUE;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

// Appends a term to a query unless the query already has it as a word.
export function addTerm(query, term) {
  const trimmed = query.trim();
  if (trimmed.split(/\s+/).includes(term)) return trimmed;
  return trimmed ? `${trimmed} ${term}` : term;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

// `YYYY-MM-DD HH:MM:SS.mmm` in local time: fixed width, sorts as text.
export function formatTimestamp(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A short local time for axes and labels; the date only when it differs
// from today.
export function formatShort(ms, withSeconds = false) {
  const d = new Date(ms);
  const today = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}${withSeconds ? `:${pad(d.getSeconds())}` : ''}`;
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

// A duration in words: 10 s, 5 min, 1 h, 1 day.
export function formatDuration(secs) {
  if (secs % 86400 === 0) return secs === 86400 ? '1 day' : `${secs / 86400} days`;
  if (secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs % 60 === 0) return `${secs / 60} min`;
  return `${secs} s`;
}

export function formatCount(n) {
  return n.toLocaleString('en-US');
}

// What a missing value (null) looks like in a table or a legend.
export const NO_VALUE = '—';

// A computed number for a table: thousands separated, at most three
// decimals (three significant digits below 1).
export function formatNumber(n) {
  if (Number.isInteger(n)) return formatCount(n);
  const small = Math.abs(n) < 1;
  return n.toLocaleString('en-US', small ? { maximumSignificantDigits: 3 } : { maximumFractionDigits: 3 });
}
