// Live tail over server-sent events (`GET /api/v1/tail`). EventSource
// cannot set headers, so the stream rides on the session cookie; it
// resumes by itself after a dropped connection (`Last-Event-ID`).
//
// Pausing freezes the display, not the stream: lines keep arriving into a
// buffer and appear on resume, so none are lost. A buffer that grows past
// MAX_BUFFERED closes the stream; resuming reopens it after the last
// buffered id, which the server honours exactly.

const MAX_BUFFERED = 20000;
const MAX_RETRIES = 6;

export class LiveTail {
  // `onHits(hits)` gets batches oldest first, at most once per frame;
  // `onState(state, detail)`: 'connecting' | 'live' | 'paused' | 'error' | 'stopped'.
  constructor({ onHits, onState }) {
    this.onHits = onHits;
    this.onState = onState;
    this.source = null;
    this.buffer = [];
    this.lastId = null;
    this.paused = false;
    this.running = false;
    this.retries = 0;
    this.frame = 0;
    this.received = 0;
  }

  start(query) {
    this.stop();
    this.query = query;
    this.running = true;
    this.paused = false;
    this.lastId = null;
    this.received = 0;
    this.open();
  }

  stop() {
    this.running = false;
    this.close();
    this.buffer = [];
    cancelAnimationFrame(this.frame);
    this.onState('stopped');
  }

  pause() {
    if (!this.running) return;
    this.paused = true;
    this.onState('paused', this.buffer.length);
  }

  resume() {
    if (!this.running) return;
    this.paused = false;
    if (!this.source) this.open();
    this.schedule();
    this.onState(this.source && this.source.readyState === EventSource.OPEN ? 'live' : 'connecting');
  }

  close() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  open() {
    const url = new URL('/api/v1/tail', window.location.origin);
    url.searchParams.set('q', this.query);
    if (this.lastId) url.searchParams.set('after', this.lastId);
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    this.onState('connecting');
    source.addEventListener('open', () => {
      this.retries = 0;
      this.onState(this.paused ? 'paused' : 'live', this.buffer.length);
    });
    source.addEventListener('hit', (event) => {
      let hit;
      try {
        hit = JSON.parse(event.data);
      } catch {
        return;
      }
      this.lastId = event.lastEventId || hit.id;
      this.received += 1;
      this.buffer.push(hit);
      if (this.paused) {
        if (this.buffer.length >= MAX_BUFFERED) this.close();
        this.onState('paused', this.buffer.length);
      } else {
        this.schedule();
      }
    });
    source.addEventListener('dropped', (event) => {
      // The server gave up on us (too slow); continue after its last id.
      try {
        this.lastId = JSON.parse(event.data).last_id || this.lastId;
      } catch {
        // keep the last id we saw
      }
      this.close();
      if (this.running && !this.paused) this.open();
    });
    source.addEventListener('error', () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (or is gone): retry with backoff.
        this.close();
        this.retries += 1;
        if (this.retries > MAX_RETRIES) {
          this.onState('error', 'the server refused the live tail; try searching again');
          return;
        }
        this.onState('error', 'connection lost; reconnecting');
        setTimeout(() => { if (this.running && !this.source) this.open(); }, 500 * 2 ** this.retries);
      } else {
        this.onState('connecting');
      }
    });
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.paused || this.buffer.length === 0) return;
      const hits = this.buffer;
      this.buffer = [];
      this.onHits(hits);
      this.onState('live');
    });
  }
}
