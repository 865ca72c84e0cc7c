// Drives Loghound's web UI in headless Chromium against a real server fed
// by a real agent (started by tests/tests/web_ui.rs), saved searches and
// alerts included, with webhooks going to a real receiver. Expectations
// come from the watched log file itself, read here, never from the server;
// the tables and charts of queries with pipes are checked cell by cell
// against what the stats API answers for the same query and range, and the
// fields panel field by field against what the fields API answers.
//
// Environment:
//   LOGHOUND_URL           the server, http://127.0.0.1:PORT
//   LOGHOUND_TOKEN         a token with the read and admin scopes
//   LOGHOUND_READ_TOKEN    a token with the read scope only
//   LOGHOUND_LOG_FILE      the file the agent follows; lines are appended to it
//   LOGHOUND_HOOK_URL      a webhook receiver for the Loghound JSON format
//   LOGHOUND_HOOK_SECRET   the secret that webhook's requests are signed with
//   LOGHOUND_SLACK_URL     a webhook receiver for the Slack format
//   LOGHOUND_ALERT_SEARCH  the name to save the alert's search under
//   LOGHOUND_ALERT_WORD    a word only the line the alert waits for has
//   LOGHOUND_CHROMIUM      the browser (default /usr/bin/chromium)
//   LOGHOUND_SCREENSHOTS   where to save one PNG per page (optional)
//
// Prints `ok: <check>` per passed check and `PASS` at the end; exits 1 at
// the first failed check, printing what was expected and what was seen.
//
// What only the test can do, it is asked for: the script prints
// `ask: <question>` and reads one line of JSON from stdin, `{"error": …}`
// when the test could not answer:
//   ask: append-alert-line   the test appends a line with
//                            LOGHOUND_ALERT_WORD, severity ERROR, to the
//                            log file → {"line": "<the line>"}
//   ask: notification-link   the link of the notification the receiver got
//                            for it, as path and query → {"path": "/?q=…"}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const WAIT_MS = 30_000;
// A notification needs the agent's batch, an index commit and a delivery.
const NOTIFY_WAIT_MS = 60_000;

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}
const BASE = need('LOGHOUND_URL');
const TOKEN = need('LOGHOUND_TOKEN');
const READ_TOKEN = need('LOGHOUND_READ_TOKEN');
const LOG_FILE = need('LOGHOUND_LOG_FILE');
const HOOK_URL = need('LOGHOUND_HOOK_URL');
const HOOK_SECRET = need('LOGHOUND_HOOK_SECRET');
const SLACK_URL = need('LOGHOUND_SLACK_URL');
const ALERT_SEARCH = need('LOGHOUND_ALERT_SEARCH');
const ALERT_WORD = need('LOGHOUND_ALERT_WORD');
const ALERT_QUERY = `${ALERT_WORD} severity:error`;
const ALERT_RULE = 'Card processor down';
// A word only the JSON lines of the fields panel's check have.
const FIELDS_WORD = 'fieldsprobe';
const CHROMIUM = process.env.LOGHOUND_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.LOGHOUND_SCREENSHOTS || '';

class CheckFailed extends Error {}
function expect(condition, message) {
  if (!condition) throw new CheckFailed(message);
}
function expectEqual(seen, wanted, what) {
  const a = JSON.stringify(seen);
  const b = JSON.stringify(wanted);
  expect(a === b, `${what}: expected ${b}, saw ${a}`);
}

// ---- the oracle: the log file as written --------------------------------

function fileLines() {
  const text = fs.readFileSync(LOG_FILE, 'utf8');
  const lines = text.split('\n');
  lines.pop(); // after the last newline
  return lines;
}
// Words as the index splits them: runs of letters and digits, lowercased.
const words = (line) => line.split(/[^\p{L}\p{N}]+/u).filter(Boolean).map((w) => w.toLowerCase());
const hasWord = (line, word) => words(line).includes(word);
const levelOf = (line) => line.split(' ')[1];

// ---- page helpers --------------------------------------------------------

async function waitSearchDone(page) {
  await page.waitForFunction(() => {
    const results = document.querySelector('#results');
    const count = document.querySelector('#count');
    return results && results.getAttribute('aria-busy') === 'false' && count &&
      (count.dataset.count !== '' || !document.querySelector('#query-error').hidden ||
       !document.querySelector('#search-error').hidden);
  }, null, { timeout: WAIT_MS });
}

async function search(page, query) {
  await page.fill('#q', query);
  await page.press('#q', 'Enter');
  await waitSearchDone(page);
}

async function shownCount(page) {
  const text = await page.getAttribute('#count', 'data-count');
  expect(text !== null && text !== '', `no count shown (search error: ${await page.textContent('#search-error')})`);
  return Number(text);
}

const messages = (page, scope = '#results') => page.$$eval(`${scope} .hit .msg`, (els) => els.map((e) => e.textContent));

async function screenshot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

// ---- the stats oracle: the API itself ------------------------------------

// The stats API's answer for `query` over [from, to), asked with the token.
async function apiStats(query, from, to) {
  const url = `${BASE}/api/v1/stats?${new URLSearchParams({ q: query, from, to })}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const body = await response.json();
  expect(response.ok, `the stats API answers ${JSON.stringify(query)}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body;
}

// Runs `run` (a search on the page) and returns what the page last asked
// the stats API ({q, from, to}) and the paths of every API request made.
async function statsSearch(page, run) {
  const urls = [];
  const onRequest = (r) => { if (new URL(r.url()).pathname.startsWith('/api/')) urls.push(new URL(r.url())); };
  page.on('request', onRequest);
  try {
    await run();
  } finally {
    page.off('request', onRequest);
  }
  const asked = urls.filter((url) => url.pathname === '/api/v1/stats').pop();
  expect(asked, `the page asked the stats API; it asked ${JSON.stringify(urls.map((u) => u.pathname))}`);
  const params = Object.fromEntries(['q', 'from', 'to'].map((name) => [name, asked.searchParams.get(name)]));
  return { ...params, paths: urls.map((url) => url.pathname) };
}

// The table as shown: header names and kinds, and per cell its text, the
// `datetime` of a time cell and whether it is right-aligned.
const shownTable = (page) => page.$eval('#stats-table', (table) => ({
  columns: [...table.querySelectorAll('thead th')].map((th) => ({ name: th.textContent, kind: th.dataset.kind })),
  rows: [...table.querySelectorAll('tbody tr')].map((tr) => [...tr.cells].map((td) => ({
    text: td.textContent,
    datetime: td.querySelector('time') ? td.querySelector('time').getAttribute('datetime') : null,
    right: getComputedStyle(td).textAlign === 'right',
  }))),
}));

// Whether a cell's text shows `value`: numbers (thousands separated, at
// most three decimals or three significant digits) right-aligned, null as a
// dash, a bucket's time as its `datetime`.
function cellShows(cell, value, kind) {
  if (value === null) return cell.text === '—' || cell.text === '-';
  if (kind === 'time') return cell.datetime === value && !Number.isNaN(Date.parse(cell.text.replace(' ', 'T')));
  if (typeof value === 'number') {
    const shown = Number(cell.text.replace(/,/g, ''));
    const tolerance = Number.isInteger(value) ? 0 : Math.max(0.0005, Math.abs(value) * 0.005);
    return cell.right && Math.abs(shown - value) <= tolerance;
  }
  return cell.text === String(value);
}

// Every header and cell of the shown table against the API's answer.
async function expectTableOf(page, answer, what) {
  const shown = await shownTable(page);
  expectEqual(shown.columns, answer.columns.map(({ name, kind }) => ({ name, kind })), `${what}: columns`);
  expectEqual(shown.rows.length, answer.rows.length, `${what}: rows`);
  answer.rows.forEach((row, r) => {
    expectEqual(shown.rows[r].length, row.length, `${what}: cells in row ${r}`);
    row.forEach((value, c) => {
      const cell = shown.rows[r][c];
      expect(cellShows(cell, value, answer.columns[c].kind),
        `${what}: row ${r} column ${JSON.stringify(answer.columns[c].name)} shows ${JSON.stringify(cell)}, the API answers ${JSON.stringify(value)}`);
    });
  });
  expectEqual([await page.getAttribute('#count', 'data-count'), await page.getAttribute('#count', 'data-groups')],
    [String(answer.count), String(answer.groups)], `${what}: count and groups`);
  const countText = await page.textContent('#count');
  expect(countText.includes(answer.count.toLocaleString('en-US')) && countText.includes(answer.groups.toLocaleString('en-US')),
    `${what}: the count shows ${answer.count} matches and ${answer.groups} groups, saw ${JSON.stringify(countText)}`);
}

// ---- the fields oracle: the API itself -----------------------------------

// The fields API's answer for the page's request parameters, asked with the token.
async function apiFields(params) {
  const query = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== null));
  const url = `${BASE}/api/v1/fields?${new URLSearchParams(query)}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const body = await response.json();
  expect(response.ok, `the fields API answers ${JSON.stringify(query)}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body;
}

// How many lines the search API counts for `query` (over the last hour
// unless a range is given).
async function apiCount(query, from = new Date(Date.now() - 3600_000).toISOString(), to = new Date().toISOString()) {
  const url = `${BASE}/api/v1/search?${new URLSearchParams({ q: query, from, to, limit: '1' })}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const body = await response.json();
  expect(response.ok, `the search API answers ${JSON.stringify(query)}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body.count;
}

async function waitFieldsDone(page) {
  await page.waitForFunction(() => {
    const panel = document.querySelector('#fields');
    return panel && ['done', 'error'].includes(panel.dataset.state);
  }, null, { timeout: WAIT_MS });
  expectEqual(await page.getAttribute('#fields', 'data-state'), 'done',
    `the fields panel's state (it says ${JSON.stringify(await page.textContent('#fields-status'))})`);
}

// Runs `run` (a search on the page), waits for the fields panel, and returns
// what the page asked the fields API ({q, from, to, top}), after checking
// that it asked for the query and range its search used.
async function fieldsSearch(page, run) {
  const urls = [];
  const onRequest = (r) => { const url = new URL(r.url()); if (url.pathname.startsWith('/api/')) urls.push(url); };
  page.on('request', onRequest);
  try {
    await run();
    await waitSearchDone(page);
    await waitFieldsDone(page);
  } finally {
    page.off('request', onRequest);
  }
  const last = (pathname) => urls.filter((url) => url.pathname === pathname).pop();
  const searched = last('/api/v1/search');
  const asked = last('/api/v1/fields');
  expect(searched && asked, `the page asked the search and fields APIs; it asked ${JSON.stringify(urls.map((u) => u.pathname))}`);
  const params = (url, names) => Object.fromEntries(names.map((name) => [name, url.searchParams.get(name)]));
  const fieldsParams = params(asked, ['q', 'from', 'to', 'top']);
  expectEqual(params(asked, ['q', 'from', 'to']), params(searched, ['q', 'from', 'to']),
    'the query and range of the fields panel and of the search');
  return fieldsParams;
}

// The panel as shown: per field its name, its stats line, its numeric line
// and per top value its text, count, the bar's filled share and whether it
// has both filter controls.
const shownFields = (page) => page.$eval('#fields', (panel) => ({
  total: panel.querySelector('#fields-total').textContent,
  fields: [...panel.querySelectorAll('#fields-list > .field')].map((li) => ({
    name: li.querySelector('.field-name').textContent,
    stats: li.querySelector('.field-stats').textContent,
    numeric: li.querySelector('.field-numeric')
      ? Object.fromEntries([...li.querySelectorAll('.field-numeric [data-stat]')].map((s) => [s.dataset.stat, s.querySelector('.stat-value').textContent]))
      : null,
    values: [...li.querySelectorAll('.field-values > .value')].map((v) => {
      const bar = v.querySelector('.value-bar').getBoundingClientRect().width;
      return {
        text: v.querySelector('.value-in').textContent,
        count: v.querySelector('.value-count').textContent,
        share: bar > 0 ? v.querySelector('.value-fill').getBoundingClientRect().width / bar : null,
        filters: Boolean(v.querySelector('button.value-in') && v.querySelector('button.value-out')),
      };
    }),
  })),
}));

const numbersIn = (text) => (text.match(/\d[\d,]*(\.\d+)?/g) || []).map((n) => Number(n.replace(/,/g, '')));
const shownValue = (value) => (value === '' ? '""' : String(value));
const closeTo = (text, value) => {
  const shown = Number(text.replace(/,/g, ''));
  return Math.abs(shown - value) <= (Number.isInteger(value) ? 0 : Math.max(0.0005, Math.abs(value) * 0.005));
};

// Every field, count, distinct count, top value and count, bar and numeric
// summary of the shown panel against the API's answer.
async function expectPanelOf(page, answer, what) {
  const shown = await shownFields(page);
  expectEqual(shown.fields.map((f) => f.name), answer.fields.map((f) => f.name), `${what}: field names`);
  expect(numbersIn(shown.total).includes(answer.count), `${what}: the panel says ${answer.count} matches, saw ${JSON.stringify(shown.total)}`);
  answer.fields.forEach((field, i) => {
    const seen = shown.fields[i];
    const where = `${what}: field ${i} ${JSON.stringify(field.name)}`;
    expectEqual(numbersIn(seen.stats), [field.count, field.distinct], `${where}: lines and distinct values shown as ${JSON.stringify(seen.stats)}`);
    expectEqual(seen.values.map((v) => [v.text, numbersIn(v.count)]), field.top.map((t) => [shownValue(t.value), [t.count]]), `${where}: top values and counts`);
    for (const [j, top] of field.top.entries()) {
      const { share } = seen.values[j];
      expect(share !== null && Math.abs(share - top.count / answer.count) <= 0.02,
        `${where}: the bar of ${JSON.stringify(top.value)} fills ${share} of its width, its share of the matches is ${top.count / answer.count}`);
      expect(seen.values[j].filters || top.value === '', `${where}: ${JSON.stringify(top.value)} has a filter-in and a filter-out control`);
    }
    expectEqual(seen.numeric === null, !field.numeric, `${where}: whether a numeric line is shown`);
    if (field.numeric) {
      for (const stat of ['min', 'avg', 'p99', 'max']) {
        const value = field.numeric[stat];
        const text = seen.numeric[stat];
        expect(text !== undefined && (value === null ? !/\d/.test(text) : closeTo(text, value)),
          `${where}: ${stat} shows ${JSON.stringify(text)}, the API answers ${value}`);
      }
    }
  });
}

// ---- questions to the test -----------------------------------------------

const stdinLines = readline.createInterface({ input: process.stdin, terminal: false });
const answers = stdinLines[Symbol.asyncIterator]();

async function ask(question) {
  console.log(`ask: ${question}`);
  const { value, done } = await answers.next();
  expect(!done, `no answer to "${question}": stdin is closed`);
  let answer;
  try {
    answer = JSON.parse(value);
  } catch {
    throw new CheckFailed(`answer to "${question}" is not JSON: ${value}`);
  }
  expect(!answer.error, `the test could not answer "${question}": ${answer.error}`);
  return answer;
}

// ---- the alerts page -----------------------------------------------------

const ruleRow = (page, name) => page.locator('#alerts-rows tr', { has: page.locator('td.name', { hasText: name }) });
const ruleState = (page, name) => ruleRow(page, name).locator('.badge').getAttribute('data-state');
// `event:status` of each delivery in the shown history, newest first.
const historyItems = (page) => page.locator('#history-list > li[data-event]')
  .evaluateAll((items) => items.map((i) => `${i.dataset.event}:${i.dataset.status}`));

// Presses Refresh until `done()` holds, for at most NOTIFY_WAIT_MS. (The
// page also polls a history with pending deliveries by itself; the test
// does not rely on that.)
async function refreshUntil(page, what, done) {
  const deadline = Date.now() + NOTIFY_WAIT_MS;
  for (;;) {
    if (await done()) return;
    if (Date.now() > deadline) {
      throw new CheckFailed(`${what}: not shown within ${NOTIFY_WAIT_MS} ms; the page shows:\n${await page.innerText('main')}`);
    }
    await page.click('#refresh-alerts');
    await page.waitForTimeout(500);
  }
}

// ---- the checks ----------------------------------------------------------

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('sign in with a token; the cookie is HttpOnly and SameSite=Strict', async ({ page, context }) => {
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#signin-token');
  await screenshot(page, 'signin');
  await page.fill('#signin-token', 'lh_not_a_token');
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#signin-error:not([hidden])');
  expect((await page.textContent('#signin-error')).includes('unknown or revoked'), 'a wrong token is refused with a message');
  await page.fill('#signin-token', TOKEN);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#q');
  await waitSearchDone(page);
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === 'loghound_session');
  expect(session, `a loghound_session cookie, saw ${JSON.stringify(cookies.map((c) => c.name))}`);
  expect(session.httpOnly, 'the session cookie is HttpOnly');
  expectEqual(session.sameSite, 'Strict', 'SameSite');
  expect(!(await page.evaluate(() => document.cookie)).includes('loghound_session'), 'scripts cannot read the cookie');
});

check('UTF-8 byte ranges become the right string ranges', async ({ page }) => {
  const seen = await page.evaluate(async () => {
    const { byteRangesToStringRanges, charPositionToIndex } = await import('/assets/js/text.js');
    const message = 'café ☕ 😀 timeout';
    const bytes = new TextEncoder().encode(message);
    const start = bytes.length - 'timeout'.length;
    const [[s, e]] = byteRangesToStringRanges(message, [[start, bytes.length]]);
    return { word: message.slice(s, e), emoji: charPositionToIndex('😀x', 1) };
  });
  expectEqual(seen, { word: 'timeout', emoji: 2 }, 'conversion');
});

check('a query shows the right count and lines, newest first, highlighted', async ({ page }) => {
  const lines = fileLines();
  const wanted = lines.filter((l) => hasWord(l, 'timeout')).reverse();
  expect(wanted.length > 0, 'the log file has timeout lines');
  await search(page, 'timeout');
  expectEqual(await shownCount(page), wanted.length, 'count of "timeout"');
  expectEqual(await messages(page), wanted, 'lines of "timeout"');
  const marks = await page.$$eval('#results .hit', (rows) => rows.map((row) => [...row.querySelectorAll('mark')].map((m) => m.textContent)));
  marks.forEach((found, i) => {
    const times = words(wanted[i]).filter((w) => w === 'timeout').length;
    expectEqual(found.map((m) => m.toLowerCase()), Array(times).fill('timeout'), `highlights of line ${JSON.stringify(wanted[i])}`);
  });
  expect(new URL(page.url()).searchParams.get('q') === 'timeout', `the URL holds the query: ${page.url()}`);
  await screenshot(page, 'search');
});

check('the histogram total equals the count', async ({ page }) => {
  for (const query of ['timeout', '']) {
    await search(page, query);
    const bars = await page.$$eval('#histogram rect.bar', (rects) => rects.map((r) => Number(r.dataset.count)));
    expect(bars.length > 0, `histogram bars for ${JSON.stringify(query)}`);
    expectEqual(bars.reduce((a, b) => a + b, 0), await shownCount(page), `histogram sum for ${JSON.stringify(query)}`);
  }
  expectEqual(await shownCount(page), fileLines().length, 'count of everything');
});

check('dragging across the histogram selects a sub-range', async ({ page }) => {
  await search(page, '');
  const total = await shownCount(page);
  const box = await page.locator('#histogram svg').boundingBox();
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await waitSearchDone(page);
  const url = new URL(page.url());
  const from = Date.parse(url.searchParams.get('from'));
  const to = Date.parse(url.searchParams.get('to'));
  expect(from < to, `the URL holds the selected range: ${page.url()}`);
  expectEqual(await page.inputValue('#range'), 'custom', 'range picker');
  const inRange = fileLines().filter((l) => { const t = Date.parse(l.split(' ')[0]); return t >= from && t < to; });
  expectEqual(await shownCount(page), inRange.length, 'count in the selected range');
  expect(inRange.length < total, 'the selection is narrower than everything');
  await page.selectOption('#range', '1h');
  await waitSearchDone(page);
});

check('older results load on scroll, without repeats', async ({ page }) => {
  await search(page, '');
  const total = await shownCount(page);
  const firstPage = await page.locator('#results .hit').count();
  expect(firstPage > 0 && total > firstPage, `more lines (${total}) than the first page shows (${firstPage})`);
  for (let i = 0; i < 20; i += 1) {
    const rows = await page.locator('#results .hit').count();
    if (rows >= total) break;
    await page.locator('#more').scrollIntoViewIfNeeded();
    await page.waitForFunction((n) => document.querySelectorAll('#results .hit').length > n, rows, { timeout: WAIT_MS });
  }
  const ids = await page.$$eval('#results .hit', (rows) => rows.map((r) => r.dataset.id));
  expectEqual(ids.length, total, 'rows after scrolling');
  expectEqual(new Set(ids).size, ids.length, 'distinct rows');
  expectEqual(await messages(page), fileLines().reverse(), 'all lines, newest first');
});

check('clicking a chip adds its filter', async ({ page }) => {
  await search(page, 'timeout');
  await page.click('#results .hit .chip.sev[data-filter-value="error"]');
  await waitSearchDone(page);
  expectEqual(await page.inputValue('#q'), 'timeout severity:error', 'query after the chip');
  const wanted = fileLines().filter((l) => hasWord(l, 'timeout') && levelOf(l) === 'ERROR');
  expectEqual(await shownCount(page), wanted.length, 'count after the chip');
});

check('a bad query shows the server\'s error at its position', async ({ page }) => {
  const query = 'host:web3 (timeout OR "unclosed';
  const answer = await page.request.get(`${BASE}/api/v1/search?${new URLSearchParams({ q: query })}`);
  expectEqual(answer.status(), 400, 'the API answers 400');
  const body = await answer.json();
  await search(page, query);
  await page.waitForSelector('#query-error:not([hidden])');
  expectEqual(await page.textContent('#query-error-message'), body.error, 'error message');
  expectEqual(await page.getAttribute('#query-error', 'data-position'), String(body.position), 'position');
  const marked = await page.textContent('#query-error-echo mark');
  expectEqual(marked, [...query][body.position] ?? ' ', 'the marked character');
  expectEqual(await page.getAttribute('#q', 'aria-invalid'), 'true', 'the box is marked invalid');
});

check('a query with pipes shows the table the stats API answers, with the range in the URL', async ({ page }) => {
  const query = '| stats count(), count_distinct(host), avg(status) by (severity, app) | sort count() desc';
  const asked = await statsSearch(page, () => search(page, query));
  expectEqual(asked.q, query, 'the query sent to the stats API');
  expect(!asked.paths.includes('/api/v1/search') && !asked.paths.includes('/api/v1/histogram'),
    `a pipe query asks only the stats API, saw ${JSON.stringify(asked.paths)}`);
  const answer = await apiStats(query, asked.from, asked.to);
  expect(answer.rows.length > 1, `the API has rows for ${query}: ${JSON.stringify(answer)}`);
  await expectTableOf(page, answer, query);
  expect(await page.isVisible('#stats-table') && await page.isHidden('#histogram') && await page.isHidden('#results'),
    'the table replaces the histogram and the lines');
  expect(await page.isHidden('#stats-chart'), 'no chart without a time column');
  const url = new URL(page.url());
  expectEqual([url.searchParams.get('q'), url.searchParams.get('range')], [query, '1h'], 'the URL holds the query and range');
  await screenshot(page, 'stats');

  // A shared link with a custom range: the same table over that span.
  const from = new Date(Date.now() - 5 * 60 * 1000).toISOString();
  const to = new Date().toISOString();
  const link = `${BASE}/?${new URLSearchParams({ q: query, from, to })}`;
  const linked = await statsSearch(page, async () => { await page.goto(link); await waitSearchDone(page); });
  expectEqual([linked.from, linked.to].map(Date.parse), [from, to].map(Date.parse), 'the range the link asks for');
  expectEqual(await page.inputValue('#q'), query, 'query from the link');
  expectEqual(await page.inputValue('#range'), 'custom', 'range picker');
  const narrower = await apiStats(query, linked.from, linked.to);
  expect(narrower.count < answer.count, `the last 5 minutes match fewer lines (${narrower.count}) than the hour (${answer.count})`);
  await expectTableOf(page, narrower, `${query} over the link's range`);

  // top: rows cut by the pipe, said beside the table.
  const top = '| top 2 by severity';
  await page.selectOption('#range', '1h');
  await waitSearchDone(page);
  const topAsked = await statsSearch(page, () => search(page, top));
  const topAnswer = await apiStats(top, topAsked.from, topAsked.to);
  expect(topAnswer.groups > topAnswer.rows.length, `top cuts the groups: ${JSON.stringify(topAnswer)}`);
  await expectTableOf(page, topAnswer, top);
  expect((await page.textContent('#stats-note')).includes(`Showing ${topAnswer.rows.length} of ${topAnswer.groups} groups`),
    `the note says how many groups are shown, saw ${JSON.stringify(await page.textContent('#stats-note'))}`);
});

check('a timechart draws one line per series; the legend and the table agree with the API', async ({ page }) => {
  const query = 'api OR payments | timechart span=1m count() by (severity)';
  const asked = await statsSearch(page, () => search(page, query));
  const answer = await apiStats(query, asked.from, asked.to);
  await expectTableOf(page, answer, query);
  const time = answer.columns.findIndex((c) => c.kind === 'time');
  const value = answer.columns.findIndex((c) => c.kind === 'aggregate');
  const groups = answer.columns.flatMap((c, i) => (c.kind === 'group' ? [i] : []));
  expect(time === 0 && value > 0 && groups.length === 1, `a time column, a group and an aggregate: ${JSON.stringify(answer.columns)}`);
  // The series as the API's rows make them: per group value, in order of
  // first appearance, with (bucket time, value) points.
  const series = new Map();
  for (const row of answer.rows) {
    const label = groups.map((i) => (row[i] === null ? '—' : String(row[i]))).join(', ');
    if (!series.has(label)) series.set(label, []);
    series.get(label).push([Date.parse(row[time]), row[value]]);
  }
  expect(series.size > 1, `several series: ${[...series.keys()]}`);
  expect(await page.isVisible('#stats-plot svg'), 'the chart is shown');
  const legend = await page.$$eval('#stats-legend li[data-series]', (items) => items.map((i) => i.textContent));
  expectEqual(legend, [...series.keys()], 'legend');
  const paths = await page.$$eval('#stats-plot svg path.series', (els) => els.map((p) => ({ series: p.dataset.series, d: p.getAttribute('d') })));
  expectEqual(paths.length, series.size, 'one path per series');
  expectEqual(paths.map((p) => p.series), [...series.keys()], 'the series of the paths');
  // Each path passes through its series' values, oldest first, on one
  // linear value scale shared by all paths.
  const drawn = [];
  for (const { series: label, d } of paths) {
    const points = [...d.matchAll(/[ML]\s*(-?[\d.]+)[ ,](-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const wanted = series.get(label).sort((a, b) => a[0] - b[0]).filter(([, v]) => typeof v === 'number');
    expectEqual(points.length, wanted.length, `points of ${label}`);
    points.forEach(([x], i) => expect(i === 0 || x >= points[i - 1][0], `x grows along ${label}: ${d}`));
    points.forEach(([, y], i) => drawn.push({ label, y, v: wanted[i][1] }));
  }
  const low = drawn.reduce((a, b) => (b.v < a.v ? b : a));
  const high = drawn.reduce((a, b) => (b.v > a.v ? b : a));
  expect(high.v > low.v && high.y < low.y, `a larger value is drawn higher: ${JSON.stringify([low, high])}`);
  const perUnit = (low.y - high.y) / (high.v - low.v);
  for (const point of drawn) {
    const wantedY = low.y - (point.v - low.v) * perUnit;
    expect(Math.abs(point.y - wantedY) <= 0.2, `${point.label}: value ${point.v} drawn at y ${point.y}, the scale puts it at ${wantedY.toFixed(1)}`);
  }
  const styles = await page.$$eval('#stats-plot svg path.series', (els) => els.map((p) => getComputedStyle(p).stroke));
  expectEqual(new Set(styles).size, styles.length, 'each series has its own colour');
  await screenshot(page, 'timechart');
  await page.click('#theme-toggle');
  const light = await page.$$eval('#stats-plot svg path.series', (els) => els.map((p) => getComputedStyle(p).stroke));
  expect(light.some((s, i) => s !== styles[i]), `the light theme recolours the lines: ${JSON.stringify([styles, light])}`);
  await screenshot(page, 'timechart-light');
  await page.click('#theme-toggle');

  // Dragging across the chart zooms in: the same query over the selection.
  const box = await page.locator('#stats-plot svg').boundingBox();
  const zoomed = await statsSearch(page, async () => {
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.98, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await waitSearchDone(page);
  });
  const url = new URL(page.url());
  expectEqual([url.searchParams.get('q'), url.searchParams.get('from'), url.searchParams.get('to')].map((v, i) => (i ? Date.parse(v) : v)),
    [query, Date.parse(zoomed.from), Date.parse(zoomed.to)], 'the URL holds the query and the selected range');
  expect(Date.parse(zoomed.to) - Date.parse(zoomed.from) < Date.parse(asked.to) - Date.parse(asked.from), 'the selection is narrower');
  expectEqual(await page.inputValue('#range'), 'custom', 'range picker');
  await expectTableOf(page, await apiStats(query, zoomed.from, zoomed.to), `${query} over the selection`);
  await page.selectOption('#range', '1h');
  await waitSearchDone(page);
});

check('a bad pipe shows the server\'s error at its position', async ({ page }) => {
  const query = 'timeout | stats p99() by (severity)';
  const answer = await fetch(`${BASE}/api/v1/stats?${new URLSearchParams({ q: query })}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  expectEqual(answer.status, 400, 'the API answers 400');
  const body = await answer.json();
  expect(Number.isInteger(body.position), `the API gives a position: ${JSON.stringify(body)}`);
  await search(page, query);
  await page.waitForSelector('#query-error:not([hidden])');
  expectEqual(await page.textContent('#query-error-message'), body.error, 'error message');
  expectEqual(await page.getAttribute('#query-error', 'data-position'), String(body.position), 'position');
  expectEqual(await page.textContent('#query-error-echo mark'), [...query][body.position] ?? ' ', 'the marked character');
  expectEqual(await page.getAttribute('#q', 'aria-invalid'), 'true', 'the box is marked invalid');
  expectEqual(await page.locator('#stats-table tbody tr').count(), 0, 'no table rows for a bad pipe');
  // A | inside quotes is text: a search, not a table.
  await search(page, '"a|b"');
  expect(await page.isHidden('#stats') && await page.isVisible('#histogram'), 'a quoted | searches lines');
  // The page finds pipes where the server does: search refuses a query with
  // pipes, and answers these queries without.
  const queries = ['"a|b"', '"a\\"|b" x', '"a\\\\" | stats count()', 'x | top 3 by host', 'a"|"b', '"x" "|" y|limit 2'];
  const piped = await page.evaluate(async (qs) => {
    const { hasPipe } = await import('/assets/js/text.js');
    return qs.map(hasPipe);
  }, queries);
  for (const [i, q] of queries.entries()) {
    const refused = await fetch(`${BASE}/api/v1/search?${new URLSearchParams({ q })}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const { error } = await refused.json();
    expectEqual(piped[i], refused.status === 400, `whether ${JSON.stringify(q)} has a pipe (search answers ${refused.status}: ${error})`);
  }
});

check('/ focuses the search box', async ({ page }) => {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  expect(await page.evaluate(() => document.activeElement === document.body), 'nothing focused');
  await page.keyboard.press('/');
  expectEqual(await page.evaluate(() => document.activeElement && document.activeElement.id), 'q', 'focused element');
});

check('clicking a line opens its context: the neighbours in the file', async ({ page }) => {
  const lines = fileLines();
  const at = lines.findIndex((l) => hasWord(l, 'contextneedle'));
  expect(at >= 15 && at + 15 < lines.length, 'the needle has 15 lines on each side');
  await search(page, 'contextneedle');
  expectEqual(await shownCount(page), 1, 'needle count');
  await page.click('#results .hit .msg');
  await page.waitForSelector('#context-dialog[open] #context-lines[aria-busy="false"]');
  expectEqual(await messages(page, '#context-lines'), lines.slice(at - 15, at + 16), 'context lines');
  expectEqual(await page.textContent('#context-lines .hit[aria-current="true"] .msg'), lines[at], 'the event itself');
  await screenshot(page, 'context');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#context-dialog', { state: 'hidden' });
});

check('live tail shows appended lines; pause holds them until resume', async ({ page }) => {
  await search(page, '');
  await page.click('#tail-toggle');
  await page.waitForSelector('#tail-status[data-state="live"]');
  const stamp = () => new Date().toISOString();
  const first = `${stamp()} WARN api tailprobe first line appended while following`;
  fs.appendFileSync(LOG_FILE, `${first}\n`);
  await page.waitForFunction((text) => [...document.querySelectorAll('#results .hit.live .msg')].some((m) => m.textContent === text), first, { timeout: WAIT_MS });
  await page.click('#tail-pause');
  await page.waitForSelector('#tail-status[data-state="paused"]');
  const second = `${stamp()} ERROR api tailprobe second line appended while paused`;
  fs.appendFileSync(LOG_FILE, `${second}\n`);
  await page.waitForFunction(() => /1 waiting/.test(document.querySelector('#tail-status').textContent), null, { timeout: WAIT_MS });
  expect(!(await messages(page)).includes(second), 'a paused tail does not show new lines');
  await page.click('#tail-pause');
  await page.waitForFunction((text) => document.querySelector('#results .hit .msg').textContent === text, second, { timeout: WAIT_MS });
  expectEqual((await messages(page)).slice(0, 2), [second, first], 'newest live lines on top');
  await screenshot(page, 'tail');
  await page.click('#tail-toggle');
  await page.waitForSelector('#tail-status[hidden]', { state: 'attached' });
});

check('live tail refuses a query with pipes and says why', async ({ page }) => {
  const tails = [];
  const onRequest = (r) => { if (new URL(r.url()).pathname === '/api/v1/tail') tails.push(r.url()); };
  page.on('request', onRequest);
  try {
    await search(page, '| stats count() by (severity)');
    await page.click('#tail-toggle');
    await page.waitForSelector('#tail-status[data-state="refused"]:not([hidden])');
    expect(/pipes/.test(await page.textContent('#tail-status')), 'the message names the pipes');
    expectEqual(await page.getAttribute('#tail-toggle', 'aria-pressed'), 'false', 'the tail stays off');
    expectEqual(tails, [], 'tail requests for a pipe query');
  } finally {
    page.off('request', onRequest);
  }
  // Following lines, then a query with pipes: the tail stops and says why.
  await search(page, '');
  expect(await page.isHidden('#tail-status'), 'the refusal goes with the pipes');
  await page.click('#tail-toggle');
  await page.waitForSelector('#tail-status[data-state="live"]');
  await search(page, '| top 3 by severity');
  await page.waitForSelector('#tail-status[data-state="refused"]:not([hidden])');
  expectEqual(await page.getAttribute('#tail-toggle', 'aria-pressed'), 'false', 'the tail stopped');
  await search(page, '');
  await page.waitForSelector('#tail-status[hidden]', { state: 'attached' });
});

check('the fields panel shows what the fields API answers; its values filter in and out', async ({ page }) => {
  // JSON lines, so that the matches have parsed fields: numbers, a value
  // with a space, one with quotes, and a parsed `host` beside the agent's.
  const names = ['Ann Lee', 'Bo "B" Chen', 'carl'];
  const statuses = [200, 200, 201, 503, 404];
  const count = 30;
  const start = Date.now() - count * 1000;
  const probes = Array.from({ length: count }, (_, i) => JSON.stringify({
    time: new Date(start + i * 1000).toISOString(), level: i % 4 === 0 ? 'warn' : 'info',
    msg: `${FIELDS_WORD} checkout step ${i}`, method: i % 3 === 0 ? 'POST' : 'GET', status: statuses[i % 5],
    duration_ms: 5.25 + ((i * 37) % 250), user: { name: names[i % 3] }, host: 'db-1', ok: i % 5 !== 3,
  }));
  fs.appendFileSync(LOG_FILE, `${probes.join('\n')}\n`);
  const deadline = Date.now() + WAIT_MS;
  while (await apiCount(FIELDS_WORD) < count) {
    expect(Date.now() < deadline, `the ${count} JSON lines are searchable within ${WAIT_MS} ms`);
    await page.waitForTimeout(200);
  }

  const asked = await fieldsSearch(page, () => search(page, FIELDS_WORD));
  const answer = await apiFields(asked);
  expectEqual(answer.count, count, 'the fields API counts the JSON lines');
  expectEqual(await shownCount(page), answer.count, 'the search count beside the panel');
  const fieldAt = (name, from = 0) => answer.fields.findIndex((f, i) => i >= from && f.name === name);
  const hostAt = fieldAt('host');
  const parsedHostAt = fieldAt('host', hostAt + 1);
  expect(fieldAt('status') >= 0 && answer.fields[fieldAt('status')].numeric && fieldAt('user.name') >= 0 && parsedHostAt > hostAt,
    `the answer has the parsed fields: ${JSON.stringify(answer.fields.map((f) => f.name))}`);
  await expectPanelOf(page, answer, FIELDS_WORD);
  await screenshot(page, 'fields');

  // A value as a filter: the query gains the term, the search counts the
  // lines the panel counted for it, and the panel is that search's.
  const valueRow = (fieldIndex, value) => {
    const valueIndex = answer.fields[fieldIndex].top.findIndex((t) => t.value === value);
    expect(valueIndex >= 0, `${JSON.stringify(value)} is among the top values of ${answer.fields[fieldIndex].name}`);
    const row = page.locator('#fields-list > .field').nth(fieldIndex).locator('.field-values > .value').nth(valueIndex);
    return { row, count: answer.fields[fieldIndex].top[valueIndex].count };
  };
  const filters = [
    { field: fieldAt('user.name'), value: 'Ann Lee', term: 'user.name:"Ann Lee"' },
    { field: fieldAt('user.name'), value: 'Bo "B" Chen', term: 'user.name:"Bo \\"B\\" Chen"' },
    { field: parsedHostAt, value: 'db-1', term: 'fields.host:db-1' },
    { field: fieldAt('status'), value: 503, term: '-status:503', exclude: true },
  ];
  for (const { field, value, term, exclude } of filters) {
    await fieldsSearch(page, () => search(page, FIELDS_WORD));
    const { row, count: valueCount } = valueRow(field, value);
    const filtered = await fieldsSearch(page, () => row.locator(exclude ? 'button.value-out' : 'button.value-in').click());
    const query = `${FIELDS_WORD} ${term}`;
    expectEqual(await page.inputValue('#q'), query, `the query after ${exclude ? 'excluding' : 'choosing'} ${JSON.stringify(value)}`);
    expectEqual(new URL(page.url()).searchParams.get('q'), query, 'the query in the URL');
    expectEqual(filtered.q, query, 'the query of the new panel');
    const wanted = exclude ? answer.count - valueCount : valueCount;
    expectEqual(await shownCount(page), wanted, `the count of ${query} (the panel counted ${valueCount} for ${JSON.stringify(value)} of ${answer.count})`);
    const narrowed = await apiFields(filtered);
    await expectPanelOf(page, narrowed, query);
    // The same field: a name's first entry is a built-in field, a second one a parsed field.
    const { name } = answer.fields[field];
    const nth = answer.fields.slice(0, field).filter((f) => f.name === name).length;
    const values = narrowed.fields.filter((f) => f.name === name)[nth]?.top.map((t) => t.value) || [];
    if (exclude) expect(!values.includes(value), `${query}: the panel no longer lists ${value}, saw ${JSON.stringify(values)}`);
    else expectEqual(values, [value], `${query}: the one value of the field`);
  }

  // The lines do not wait for the panel, and the answer of an older search
  // never replaces the newer one's: the first fields answer is held until
  // a second search's panel is shown.
  const heldCount = valueRow(fieldAt('status'), 503).count;
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  let heldRequest = null;
  let seen;
  const seenHeld = new Promise((resolve) => { seen = resolve; });
  const hold = async (route) => {
    if (!heldRequest) {
      heldRequest = route.request();
      seen();
      await held;
    }
    await route.continue().catch(() => {}); // the page may have given up on it
  };
  const isFields = (url) => url.pathname === '/api/v1/fields';
  await page.route(isFields, hold);
  try {
    await search(page, `${FIELDS_WORD} status:503`);
    await seenHeld;
    expectEqual(await shownCount(page), heldCount, 'the lines are shown while the panel waits');
    expectEqual(await page.getAttribute('#fields', 'aria-busy'), 'true', 'the panel says it is loading');
    const newer = await fieldsSearch(page, () => search(page, FIELDS_WORD));
    release();
    await heldRequest.response().catch(() => null);
    await page.evaluate(() => new Promise((resolve) => { setTimeout(resolve, 200); }));
    await expectPanelOf(page, await apiFields(newer), `${FIELDS_WORD} after an older search's answer`);
  } finally {
    release();
    await page.unroute(isFields, hold);
  }

  // Narrow screens: above the lines, collapsed until opened.
  await page.setViewportSize({ width: 700, height: 860 });
  await page.waitForFunction(() => !document.querySelector('#fields-details').open, null, { timeout: WAIT_MS });
  expect(await page.isHidden('#fields-list'), 'a narrow screen collapses the panel');
  const [panelBox, resultsBox] = await Promise.all(['#fields', '#results'].map((s) => page.locator(s).boundingBox()));
  expect(panelBox.y + panelBox.height <= resultsBox.y, `on a narrow screen the panel is above the lines: ${JSON.stringify([panelBox, resultsBox])}`);
  await page.click('#fields-details > summary');
  expect(await page.isVisible('#fields-list'), 'the collapsed panel opens');
  await screenshot(page, 'fields-narrow');
  await page.setViewportSize({ width: 1400, height: 860 });
  await page.waitForFunction(() => document.querySelector('#fields-details').open, null, { timeout: WAIT_MS });
  const [wideBox, wideResults] = await Promise.all(['#fields', '#results'].map((s) => page.locator(s).boundingBox()));
  expect(wideBox.x >= wideResults.x + wideResults.width, `on a wide screen the panel is beside the lines: ${JSON.stringify([wideBox, wideResults])}`);

  // Both themes colour the bars.
  const barColour = () => page.$eval('#fields .value-fill', (e) => getComputedStyle(e).backgroundColor);
  const dark = await barColour();
  await page.click('#theme-toggle');
  const light = await barColour();
  expect(dark !== light, `the light theme recolours the bars: ${dark} and ${light}`);
  await screenshot(page, 'fields-light');
  await page.click('#theme-toggle');

  // A query with pipes answers a table: no panel, and it is not asked.
  const urls = [];
  const onRequest = (r) => urls.push(new URL(r.url()).pathname);
  page.on('request', onRequest);
  try {
    await search(page, `${FIELDS_WORD} | stats count() by (status)`);
  } finally {
    page.off('request', onRequest);
  }
  expect(await page.isHidden('#fields'), 'no fields panel beside a table');
  expect(!urls.includes('/api/v1/fields'), `a query with pipes does not ask for fields: ${JSON.stringify(urls)}`);
  await search(page, '');
});

async function apiStatus(page, route) {
  return (await page.request.get(`${BASE}${route}`)).status();
}

check('save a search and see it in the list; rename; open', async ({ page }) => {
  await page.goto(`${BASE}/?q=timeout&range=1h`);
  await waitSearchDone(page);
  await page.click('#save-search');
  await page.fill('#save-name', 'Timeouts');
  await page.click('#save-form button[type="submit"]');
  await page.waitForSelector('#save-dialog', { state: 'hidden' });
  await page.click('nav a[href="/saved"]');
  const row = page.locator('#saved-rows tr', { hasText: 'Timeouts' });
  await row.waitFor({ timeout: WAIT_MS });
  expectEqual(await row.locator('td.query').textContent(), 'timeout', 'saved query');
  await page.getByRole('button', { name: 'Rename Timeouts' }).click();
  await page.getByLabel('New name').fill('Upstream timeouts');
  await page.getByLabel('New name').press('Enter');
  await page.locator('#saved-rows td.name', { hasText: 'Upstream timeouts' }).waitFor({ timeout: WAIT_MS });
  const listed = await page.request.get(`${BASE}/api/v1/searches`);
  expectEqual((await listed.json()).searches.map((x) => [x.name, x.query, x.range]), [['Upstream timeouts', 'timeout', '1h']], 'saved searches on the server');
  await page.locator('#saved-rows tr', { hasText: 'Upstream timeouts' }).getByRole('link', { name: 'Open' }).click();
  await page.waitForSelector('#q');
  await waitSearchDone(page);
  expectEqual(await page.inputValue('#q'), 'timeout', 'opened query');
  expectEqual(await page.inputValue('#range'), '1h', 'opened range');
});

check('an alert from the current search: the form shows why email is refused, then saves', async ({ page }) => {
  await page.goto(`${BASE}/?q=${encodeURIComponent('timeout severity:error')}&range=1h`);
  await waitSearchDone(page);
  await page.click('#create-alert');
  await page.waitForSelector('#alert-form');
  expectEqual(await page.$eval('#alert-search', (el) => el.selectedOptions[0].textContent), 'New saved search: timeout severity:error', 'search of a new alert');
  await page.fill('#alert-name', 'Payment timeouts');
  await page.getByLabel('matches in the window reach the threshold').check();
  await page.fill('#alert-threshold', '3');
  await page.selectOption('#alert-interval', '10');
  await page.selectOption('#alert-window', '3600');
  await page.click('#add-webhook');
  await page.getByLabel('Webhook URL').fill(SLACK_URL);
  await page.getByLabel('Webhook format').selectOption('slack');
  await screenshot(page, 'alert-form');
  await page.click('#add-email');
  await page.getByLabel('Email addresses').fill('oncall@example.com, sre@example.com');
  await page.click('#alert-form button[type="submit"]');
  await page.waitForSelector('#alert-error:not([hidden])');
  const refusal = await page.textContent('#alert-error');
  expect(/email needs an SMTP relay/.test(refusal), `the server's refusal of email in the form, saw ${JSON.stringify(refusal)}`);
  expectEqual(await page.locator('#alerts-rows tr').count(), 0, 'rules after the refusal');
  await page.getByRole('button', { name: 'Remove email channel' }).click();
  expect(await page.isHidden('#alert-error'), 'the error goes with the email channel');
  await page.click('#alert-form button[type="submit"]');
  const row = ruleRow(page, 'Payment timeouts');
  await row.waitFor({ timeout: WAIT_MS });
  const text = await row.textContent();
  const cells = await row.locator('td').evaluateAll((tds) => tds.map((td) => td.innerText.replace(/\s+/g, ' ').trim()));
  expectEqual(cells.slice(1, 5), ['Payment timeouts', 'Payment timeouts timeout severity:error', '≥ 3 matches in 1 h checked every 10 s',
    `webhook ${new URL(SLACK_URL).host} (slack)`], 'name, search, rule and channel');
});

check('a rule shows its state: the threshold rule fires', async ({ page }) => {
  // 16 error lines with "timeout" arrived within the hour: at least 3.
  await refreshUntil(page, 'the threshold rule firing', async () => (await ruleState(page, 'Payment timeouts')) === 'firing');
  const checked = await ruleRow(page, 'Payment timeouts').locator('td.checked').textContent();
  expect(/\d\d:\d\d:\d\d\s*fired .*\d\d:\d\d:\d\d/.test(checked), `last checked and fired times, saw ${JSON.stringify(checked)}`);
});

check('a webhook alert on a saved search reports a new line; the history shows it delivered', async ({ page }) => {
  await page.goto(`${BASE}/?q=${encodeURIComponent(ALERT_QUERY)}&range=1h`);
  await waitSearchDone(page);
  expectEqual(await shownCount(page), 0, `count of ${ALERT_QUERY} before the line is written`);
  await page.click('#save-search');
  await page.fill('#save-name', ALERT_SEARCH);
  await page.click('#save-form button[type="submit"]');
  await page.waitForSelector('#save-dialog', { state: 'hidden' });
  await page.click('#create-alert');
  await page.waitForSelector('#alert-form');
  expectEqual(await page.$eval('#alert-search', (el) => el.selectedOptions[0].textContent), `${ALERT_SEARCH} — ${ALERT_QUERY}`, 'the saved search is chosen');
  await page.fill('#alert-name', ALERT_RULE);
  expect(await page.getByLabel('any line matches').isChecked(), 'a new alert fires on any match');
  expectEqual(await page.textContent('#alert-interval-label'), 'Notify at most every', 'interval label of an any rule');
  await page.selectOption('#alert-interval', '10');
  await page.click('#add-webhook');
  await page.getByLabel('Webhook URL').fill(HOOK_URL);
  expectEqual(await page.getByLabel('Webhook format').inputValue(), 'loghound', 'default webhook format');
  await page.getByLabel('Webhook secret').fill(HOOK_SECRET);
  await page.click('#alert-form button[type="submit"]');
  const row = ruleRow(page, ALERT_RULE);
  await row.waitFor({ timeout: WAIT_MS });
  const cells = await row.locator('td').evaluateAll((tds) => tds.map((td) => td.innerText.replace(/\s+/g, ' ').trim()));
  expectEqual(cells.slice(1, 5), [ALERT_RULE, `${ALERT_SEARCH} ${ALERT_QUERY}`, 'any new match notified at most every 10 s',
    `webhook ${new URL(HOOK_URL).host} (loghound, signed)`], 'name, search, rule and channel');
  await page.getByRole('button', { name: `History ${ALERT_RULE}` }).click();
  await page.locator('#history-list li.hint', { hasText: 'Nothing sent yet.' }).waitFor({ timeout: WAIT_MS });

  const { line } = await ask('append-alert-line');
  expect(fileLines().includes(line), `the appended line is in the log file: ${line}`);
  const fire = page.locator('#history-list > li[data-event="fire"]');
  await refreshUntil(page, 'a delivered notification', async () => (await historyItems(page)).includes('fire:delivered'));
  expectEqual(await historyItems(page), ['fire:delivered'], 'the history');
  const text = await fire.textContent();
  expect(text.includes('fire · 1 match') && text.includes(`webhook ${HOOK_URL}`), `the delivery's event, count and channel, saw ${text}`);
  expectEqual(await fire.locator('.attempts li').evaluateAll((items) => items.map((i) => [i.dataset.outcome, i.dataset.statusCode, i.textContent.split('→ ')[1]])),
    [['delivered', '200', 'HTTP 200']], 'attempts');
  await refreshUntil(page, 'the rule\'s fired time', async () => /fired/.test(await row.locator('td.checked').textContent()));
});

check('send test from the UI reaches the receiver; the history shows it', async ({ page }) => {
  await page.getByRole('button', { name: `Send test ${ALERT_RULE}` }).click();
  const test = page.locator('#history-list > li[data-event="test"]');
  await refreshUntil(page, 'a delivered test', async () => (await historyItems(page)).includes('test:delivered'));
  expectEqual(await test.locator('.attempts li').evaluateAll((items) => items.map((i) => i.textContent.split('→ ')[1])), ['HTTP 200'], 'test attempts');
  expectEqual(await historyItems(page), ['test:delivered', 'fire:delivered'], 'the history, newest first');
  await screenshot(page, 'alerts');
});

check('a notification\'s link opens its search as a custom range', async ({ page }) => {
  const { path: linkPath } = await ask('notification-link');
  const link = new URL(linkPath, BASE);
  const from = Date.parse(link.searchParams.get('from'));
  const to = Date.parse(link.searchParams.get('to'));
  expect(from < to, `the link has an RFC 3339 range: ${linkPath}`);
  await page.goto(link.href);
  await waitSearchDone(page);
  expectEqual(await page.inputValue('#q'), ALERT_QUERY, 'query from the link');
  expectEqual(await page.inputValue('#range'), 'custom', 'range picker');
  expect(await page.isVisible('#custom-range'), 'the custom range is shown');
  const shown = await page.evaluate(() => ['#from', '#to'].map((id) => new Date(document.querySelector(id).value).getTime()));
  expectEqual(shown, [from - (from % 1000), to - (to % 1000)], 'custom range inputs (local time, whole seconds)');
  const wanted = fileLines().filter((l) => {
    const t = Date.parse(l.split(' ')[0]);
    return hasWord(l, ALERT_WORD) && levelOf(l) === 'ERROR' && t >= from && t < to;
  });
  expectEqual(wanted.length, 1, 'lines of the alert in the link\'s range');
  expectEqual(await shownCount(page), wanted.length, 'count in the link\'s range');
  expectEqual(await messages(page), wanted, 'lines in the link\'s range');
  const url = new URL(page.url());
  expectEqual([url.searchParams.get('from'), url.searchParams.get('to')].map(Date.parse), [from, to], 'the range stays in the URL');
});

check('mute and unmute a rule', async ({ page }) => {
  await page.goto(`${BASE}/alerts`);
  await ruleRow(page, 'Payment timeouts').waitFor({ timeout: WAIT_MS });
  const before = Date.now();
  await page.getByRole('button', { name: 'Mute 1 h Payment timeouts' }).click();
  await page.waitForFunction(() => document.querySelector('#alerts-rows tr .badge[data-state="muted"]'), null, { timeout: WAIT_MS });
  const after = Date.now();
  const rule = (await (await page.request.get(`${BASE}/api/v1/alerts`)).json()).alerts.find((a) => a.name === 'Payment timeouts');
  const hour = 60 * 60 * 1000;
  expect(rule.muted_until_ms >= before + hour && rule.muted_until_ms <= after + hour, `muted for an hour from the click, saw muted_until_ms ${rule.muted_until_ms} (clicked between ${before} and ${after})`);
  await page.getByRole('button', { name: 'Unmute Payment timeouts' }).click();
  await page.getByRole('button', { name: 'Mute 1 h Payment timeouts' }).waitFor({ timeout: WAIT_MS });
  expect(await ruleState(page, 'Payment timeouts') !== 'muted', 'unmuted');
});

check('a saved search an alert uses is not deleted; the list says why', async ({ page }) => {
  await page.click('nav a[href="/saved"]');
  const row = page.locator('#saved-rows tr', { hasText: ALERT_SEARCH });
  await row.waitFor({ timeout: WAIT_MS });
  expectEqual(await page.locator('#saved-rows td.name').allTextContents(), ['Upstream timeouts', 'Payment timeouts', ALERT_SEARCH].sort(), 'saved searches, by name');
  await page.waitForSelector('#toast[hidden]', { state: 'attached' }); // the alerts page's
  await screenshot(page, 'saved');
  const remove = row.getByRole('button', { name: `Delete ${ALERT_SEARCH}` });
  await remove.click();
  expectEqual(await remove.textContent(), 'Confirm delete', 'the first click asks');
  await remove.click();
  await page.waitForSelector('#toast.bad:not([hidden])');
  const message = await page.textContent('#toast');
  expect(/^Cannot delete: saved search \d+ is used by alert rule\(s\) \d+; delete them first$/.test(message), `the server's refusal, saw ${JSON.stringify(message)}`);
  expectEqual(await page.locator('#saved-rows tr').count(), 3, 'rows after the refused delete');
});

check('a read-only token: write actions are disabled and alerts say they need admin', async ({ browser, watch }) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 }, colorScheme: 'dark' });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    watch(page);
    const alertRequests = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/api/v1/alerts')) alertRequests.push(r.url()); });
    await page.goto(`${BASE}/`);
    await page.fill('#signin-token', READ_TOKEN);
    await page.click('#signin-form button[type="submit"]');
    await page.waitForSelector('#q');
    await waitSearchDone(page);
    expect(await page.isDisabled('#save-search'), 'Save search is disabled');
    expect(await page.isDisabled('#create-alert'), 'Create alert is disabled');
    await page.click('nav a[href="/saved"]');
    const row = page.locator('#saved-rows tr', { hasText: ALERT_SEARCH });
    await row.waitFor({ timeout: WAIT_MS });
    expect(await row.getByRole('button', { name: `Rename ${ALERT_SEARCH}` }).isDisabled(), 'Rename is disabled');
    expect(await row.getByRole('button', { name: `Delete ${ALERT_SEARCH}` }).isDisabled(), 'Delete is disabled');
    expect(await row.getByRole('link', { name: 'Open' }).isVisible(), 'Open is offered');
    expect((await page.textContent('#saved-status')).includes('no admin scope'), 'the saved page says why');
    await page.click('nav a[href="/alerts"]');
    await page.waitForSelector('#alerts-status[data-needs-admin="1"]');
    const status = await page.textContent('#alerts-status');
    expect(status.startsWith('Alerts need a token with the admin scope'), `alerts status, saw ${JSON.stringify(status)}`);
    expect(await page.isHidden('#alerts-table') && await page.isHidden('#new-alert'), 'no rules table and no New alert');
    expectEqual(alertRequests, [], 'requests to the alerts API');
    expectEqual((await page.request.get(`${BASE}/api/v1/alerts`)).status(), 403, 'the API refuses the read-only session');
  } finally {
    await context.close();
  }
});

check('the theme toggle switches between dark and light', async ({ page }) => {
  await page.goto(`${BASE}/?q=timeout&range=1h`);
  await waitSearchDone(page);
  await page.click('#theme-toggle');
  expectEqual(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'theme after toggle');
  await screenshot(page, 'search-light');
  await page.click('#theme-toggle');
  expectEqual(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'theme after second toggle');
});

check('sign out ends the session; the old cookie is refused', async ({ page, context }) => {
  const before = (await context.cookies(BASE)).find((c) => c.name === 'loghound_session');
  expect(before, 'signed in before signing out');
  await page.click('#sign-out');
  await page.waitForSelector('#signin-token');
  expectEqual(await apiStatus(page, '/api/v1/search'), 401, 'a search after signing out');
  const replayed = await page.request.get(`${BASE}/api/v1/search`, { headers: { Cookie: `loghound_session=${before.value}` } });
  expectEqual(replayed.status(), 401, 'a search with the signed-out cookie');
});

// ---- run -----------------------------------------------------------------

async function main() {
  if (!fs.existsSync(CHROMIUM)) {
    console.error(`FAIL: no browser at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
    process.exit(2);
  }
  // Playwright starts the browser with a fresh temporary profile.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 }, colorScheme: 'dark' });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  // Records what a page reports. Failed loads the UI expects (401 before
  // sign-in; 400 for the bad query and the refused email channel; 409 for
  // deleting a saved search a rule uses) are logged by Chromium; anything
  // else, CSP violations above all, is a problem.
  const watch = (target) => {
    target.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    target.on('console', (message) => {
      const text = message.text();
      if (message.type() === 'error' && !/Failed to load resource: the server responded with a status of (400|401|409)/.test(text)) {
        problems.push(`console: ${text}`);
      }
    });
  };
  watch(page);
  let failed = false;
  for (const { name, fn } of checks) {
    try {
      await fn({ page, context, browser, watch });
      console.log(`ok: ${name}`);
    } catch (error) {
      console.log(`FAIL: ${name}: ${error instanceof CheckFailed ? error.message : error.stack}`);
      if (problems.length) console.log(`the page reported errors:\n  ${problems.join('\n  ')}`);
      const shot = path.join(os.tmpdir(), `loghound-ui-failure-${process.pid}.png`);
      await page.screenshot({ path: shot }).then(() => console.log(`screenshot of the failure: ${shot}`), () => {});
      failed = true;
      break;
    }
  }
  if (!failed && problems.length) {
    console.log(`FAIL: the page reported errors:\n  ${problems.join('\n  ')}`);
    failed = true;
  }
  await browser.close();
  stdinLines.close();
  if (failed) process.exit(1);
  console.log('PASS');
}

main().catch((error) => {
  console.log(`FAIL: ${error.stack}`);
  process.exit(1);
});
