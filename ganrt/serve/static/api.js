// Talking to ganrt serve: JSON errors, Retry-After, latency headers, and one request in flight per panel.

// URLs are relative to the page, so the page also works behind a reverse proxy under a path prefix.
const base = new URL('.', document.baseURI);

export class ApiError extends Error {
  constructor(status, message, retryAfterS = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

const KIND = {
  0: 'Cannot reach the server',
  400: 'Rejected',
  404: 'Not found',
  408: 'Upload too slow',
  413: 'Too large',
  415: 'Wrong file type',
  500: 'Server error',
  503: 'Server busy',
  504: 'Timed out',
};

/** A one-line description of an error for the panel: what kind of problem, then the server's own words. */
export function describe(err) {
  if (err instanceof ApiError) {
    const kind = KIND[err.status] ?? `HTTP ${err.status}`;
    return `${kind}: ${err.message}`;
  }
  return `Error: ${err?.message ?? err}`;
}

/**
 * fetch() against the server. Resolves to {response, serverMs, roundTripMs} for a 2xx answer; rejects with an
 * ApiError carrying the server's {"error": ...} message and Retry-After (seconds) otherwise.
 */
export async function request(path, { method = 'POST', body = undefined, type = undefined, query = {} } = {}) {
  const target = new URL(path, base);
  for (const [key, value] of Object.entries(query)) target.searchParams.set(key, String(value));
  const headers = type ? { 'Content-Type': type } : {};
  const started = performance.now();
  let response;
  try {
    response = await fetch(target, { method, body, headers });
  } catch (err) {
    throw new ApiError(0, err.message);
  }
  const roundTripMs = performance.now() - started;
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const data = await response.json();
      if (data && typeof data.error === 'string') message = data.error;
    } catch {
      // not JSON (a proxy's page): keep the status line
    }
    const retry = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
    throw new ApiError(response.status, message, Number.isFinite(retry) && retry >= 0 ? retry : null);
  }
  const serverMs = Number.parseFloat(response.headers.get('X-Ganrt-Latency-Ms') ?? 'NaN');
  return { response, serverMs, roundTripMs };
}

export function timing({ serverMs, roundTripMs }) {
  const server = Number.isFinite(serverMs) ? `${serverMs.toFixed(1)} ms on the server, ` : '';
  return `${server}${roundTripMs.toFixed(0)} ms round trip`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The requests of one panel. At most one is in flight; while it runs, newer work replaces older waiting work
 * (only the latest drawing matters). A 503 with Retry-After is retried after that many seconds unless newer
 * work arrived meanwhile. The panel's data-busy attribute says whether anything is scheduled or running.
 */
export class Lane {
  #pending = null;
  #running = false;
  #timer = null;
  #since = 0;

  constructor(panel, errorBox) {
    this.panel = panel;
    this.errorBox = errorBox;
    this.#update();
  }

  /**
   * Run task() once delayMs pass without newer calls (debounce), then as submit() does. A stream of calls
   * (a stroke being drawn) still runs at least every 4 * delayMs, so the output follows the pen.
   */
  schedule(task, delayMs) {
    const now = performance.now();
    if (this.#timer === null) this.#since = now;
    clearTimeout(this.#timer);
    this.#pending = task;
    const wait = Math.max(0, Math.min(delayMs, this.#since + 4 * delayMs - now));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#drain();
    }, wait);
    this.#update();
  }

  submit(task) {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending = task;
    this.#drain();
  }

  showError(err) {
    this.errorBox.textContent = describe(err);
    this.errorBox.hidden = false;
  }

  clearError() {
    this.errorBox.hidden = true;
    this.errorBox.textContent = '';
  }

  async #drain() {
    if (this.#running) return;
    this.#running = true;
    this.#update();
    while (this.#pending && this.#timer === null) {
      const task = this.#pending;
      this.#pending = null;
      try {
        await task();
        this.clearError();
      } catch (err) {
        if (err instanceof ApiError && err.status === 503 && err.retryAfterS !== null) {
          for (let left = Math.max(1, err.retryAfterS); left > 0 && !this.#pending; left -= 1) {
            this.showError(new ApiError(503, `${err.message}; retrying in ${left} s`));
            await sleep(1000);
          }
          this.#pending ??= task;
        } else {
          this.showError(err);
        }
      }
    }
    this.#running = false;
    this.#update();
  }

  #update() {
    const busy = this.#running || this.#pending !== null || this.#timer !== null;
    this.panel.dataset.busy = String(busy);
    this.panel.setAttribute('aria-busy', String(busy));
  }
}
