// One file's upload engine (no DOM): follows the server's plan (one PUT, or multipart with the
// server's part size), keeps a few parts in flight, retries each part with exponential backoff
// and full jitter, re-signs expired part URLs, waits out lost networks, pauses, resumes from
// storage's own account after a reload, and cancels at the server.
//
// Memory stays bounded whatever the file size: each PUT sends `file.slice(...)`, which the
// browser streams from disk; the file is never read into memory.

import { ApiError } from "./api.js";
import { dropEntry, loadEntry, saveEntry } from "./resume-store.js";

const DEFAULTS = {
  concurrency: 4,
  signBatch: 20, // part URLs signed per request, on demand (the API allows up to 100)
  maxAttempts: 8, // per part, for answers that may change (5xx, 429); a lost network never counts
  backoffBaseMs: 500,
  backoffCapMs: 20_000,
  offlineRetryMs: 8_000, // "No network — retrying in 8 s"; the `online` event cuts it short
  stallMs: 45_000, // a PUT with no progress this long is a dead connection: abort and retry
  urlMarginMs: 30_000, // a URL this close to its expiry is re-signed before use
};

/** Fails the current step because the user paused (parts go on later) or cancelled. */
class Interrupted extends Error {}

/** A storage PUT that failed; `status` 0 is a network failure. */
class PutError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The server's plan for a file, from its create or progress answer: a single PUT is one part. */
function planOf(answer, fileSize) {
  const single = answer.strategy === "single";
  return {
    trackingId: answer.trackingId,
    mediaId: answer.mediaId,
    key: answer.key,
    strategy: answer.strategy,
    partSize: single ? fileSize : answer.partSize,
    numParts: single ? 1 : answer.numParts,
  };
}

/** Full jitter: a random wait between 0 and the exponential ceiling (AWS's advice). */
function backoffDelay(attempt, baseMs, capMs) {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

function isOffline(error) {
  return error.status === 0 && navigator.onLine === false;
}

/**
 * Uploads one file through the v1 API. Emits, as CustomEvents:
 * `progress` {loaded, total, speed (bytes/s or null), eta (s or null)},
 * `state` {state, message?} with state in preparing, uploading, paused, retrying, completing,
 * done, failed, cancelled, and `retry` {delayMs, until, offline, reason}.
 */
export class Upload extends EventTarget {
  /**
   * @param {object} options
   * @param {ReturnType<import("./api.js").createApi>} options.api
   * @param {Blob} options.file           a File (resumable) or a recording
   * @param {string} options.contentType
   * @param {string} options.artisanId
   * @param {() => Promise<string|null>} options.trackingId  the submission to add this file to,
   *   null to start one; asked once, right before the upload is created or resumed
   * @param {string|null} [options.storeKey]  where to remember the upload for a resume; null: nowhere
   * @param {Partial<typeof DEFAULTS>} [options.tuning]
   */
  constructor({ api, file, contentType, artisanId, trackingId, storeKey = null, tuning = {} }) {
    super();
    this.api = api;
    this.file = file;
    this.contentType = contentType;
    this.artisanId = artisanId;
    this.storeKey = storeKey;
    this.options = { ...DEFAULTS, ...tuning };
    this.state = "idle";
    /** @type {{trackingId: string, mediaId: string, key: string, strategy: string, partSize: number, numParts: number}|null} */
    this.plan = null;
    this.resumedFromBytes = 0;
    this._askTrackingId = trackingId;
    this._queue = []; // part numbers still to send, lowest first
    this._urls = new Map(); // part number -> {url, headers, expiresAt (ms)}
    this._inflight = new Map(); // part number -> {xhr, loaded}
    this._taken = new Set(); // parts workers hold (off the queue, not yet stored)
    this._doneBytes = 0;
    this._signing = null; // {numbers: Set, promise}: the sign request in flight
    this._offlineWait = null;
    this._paused = null; // {promise, resolve} while paused
    this._cancelled = false;
    this._samples = [];
    this._lastEmit = 0;
    this._ready = null;
    /** Resolves with the plan once the upload exists at the server (created or resumed). */
    this.ready = new Promise((resolve, reject) => (this._ready = { resolve, reject }));
    this.ready.catch(() => {}); // a failed start is reported by start(); nobody must await this
  }

  get total() {
    return this.file.size;
  }

  get loaded() {
    let inflight = 0;
    for (const part of this._inflight.values()) inflight += part.loaded;
    return this._doneBytes + inflight;
  }

  /**
   * Creates or resumes the upload and sends every missing byte; resolves with the plan once
   * storage holds the whole file (checked by the server). Rejects with the error that stopped
   * it; calling start() again after a failure resumes from storage's account.
   * @returns {Promise<{trackingId: string, mediaId: string, key: string}>}
   */
  async start() {
    this._cancelled = false;
    try {
      this._setState("preparing");
      // Once more after a failure: storage's account says what is left (a recording has no
      // stored entry, so its plan is asked about directly).
      const again = this.plan !== null && (await this._resume({ ...this.plan, size: this.file.size }));
      if (!again) await this._prepare();
      this._ready.resolve(this.plan);
      if (this._queue.length) {
        this._setState("uploading");
        await this._sendAll();
      }
      this._setState("completing");
      await this._complete();
      this._doneBytes = this.total;
      this._emitProgress(true);
      this._setState("done");
      return this.plan;
    } catch (error) {
      this._ready.reject(error); // no-op once it resolved; else frees whoever waits for the plan
      if (this._cancelled) {
        this._setState("cancelled");
        throw new Interrupted("cancelled");
      }
      this._setState("failed", error.message);
      throw error;
    }
  }

  /** Stops sending; parts in flight are dropped and sent again on resume(). */
  pause() {
    if (this._paused || !["uploading", "retrying", "preparing"].includes(this.state)) return;
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    this._paused = { promise, resolve };
    for (const part of this._inflight.values()) part.xhr.abort();
    this._setState("paused");
  }

  /** Goes on after pause(). */
  resume() {
    if (!this._paused) return;
    const { resolve } = this._paused;
    this._paused = null;
    this._setState("uploading");
    resolve();
  }

  /** Stops for good and aborts the upload at the server (storage frees its parts). */
  async cancel() {
    this._cancelled = true;
    for (const part of this._inflight.values()) part.xhr.abort();
    if (this._paused) this._paused.resolve();
    if (this.storeKey) dropEntry(this.storeKey);
    if (this.state === "done" || !this.plan) {
      this._setState("cancelled");
      return;
    }
    this._setState("cancelled");
    try {
      await this.api.del(`/catalog/uploads/${this.plan.mediaId}`);
    } catch {
      // Storage's own expiry sweep frees what an unreachable server could not abort now.
    }
  }

  // --- creating or resuming ------------------------------------------------------------------
  async _prepare() {
    const trackingId = await this._askTrackingId();
    const entry = this.storeKey ? loadEntry(this.storeKey) : null;
    if (entry && (trackingId === null || entry.trackingId === trackingId) && (await this._resume(entry))) return;
    await this._create(trackingId);
  }

  async _create(trackingId) {
    const body = { artisanId: this.artisanId, contentType: this.contentType, fileSize: this.file.size };
    if (trackingId) body.trackingId = trackingId;
    const created = await this._withRetry(() => this.api.post("/catalog/uploads", body));
    if (this._cancelled) this.api.del(`/catalog/uploads/${created.mediaId}`).catch(() => {});
    this._check();
    this.plan = planOf(created, this.file.size);
    if (created.strategy === "single") {
      this._urls.set(1, { url: created.uploadUrl, headers: created.headers, expiresAt: Date.parse(created.expiresAt) });
    }
    this._queue = Array.from({ length: this.plan.numParts }, (_, i) => i + 1);
    this._doneBytes = 0;
    if (this.storeKey) saveEntry(this.storeKey, { ...this.plan, size: this.file.size });
  }

  /**
   * Continues an upload remembered for this file, from storage's own account of its parts.
   * Returns false (and forgets the entry) when it cannot be continued: gone, closed, or a plan
   * that does not fit this file; the caller then starts over.
   */
  async _resume(entry) {
    let progress;
    try {
      progress = await this._withRetry(() =>
        this.api.get(`/catalog/uploads/${entry.mediaId}?urls=${this.options.signBatch}`),
      );
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 409)) {
        if (this.storeKey) dropEntry(this.storeKey);
        return false;
      }
      throw error;
    }
    this._check();
    const plan = planOf(progress, this.file.size);
    const single = plan.strategy === "single";
    const fits =
      progress.fileSize === this.file.size &&
      plan.strategy === entry.strategy &&
      (single || (plan.partSize === entry.partSize && plan.numParts === Math.ceil(this.file.size / plan.partSize)));
    if (progress.status === "uploaded" && fits) {
      this.plan = plan;
      this._queue = [];
      this._doneBytes = this.total;
      this.resumedFromBytes = this.total;
      return true;
    }
    if (progress.status !== "pending" || !fits) {
      if (this.storeKey) dropEntry(this.storeKey);
      if (progress.status === "pending") this.api.del(`/catalog/uploads/${entry.mediaId}`).catch(() => {});
      return false;
    }
    this.plan = plan;
    // Storage's account, each part checked against this file's plan: a part of the wrong size
    // is sent again, never trusted.
    const good = new Set();
    let bytes = 0;
    for (const part of progress.completedParts) {
      if (part.partNumber >= 1 && part.partNumber <= plan.numParts && part.size === this._partSize(part.partNumber)) {
        good.add(part.partNumber);
        bytes += part.size;
      }
    }
    this._queue = [];
    for (let n = 1; n <= plan.numParts; n++) if (!good.has(n)) this._queue.push(n);
    this._doneBytes = bytes;
    this.resumedFromBytes = bytes;
    this._urls.clear();
    for (const signed of progress.pendingPartUrls) this._remember(signed);
    return true;
  }

  // --- sending parts --------------------------------------------------------------------------
  async _sendAll() {
    this._samples = [];
    const workers = Math.min(this.options.concurrency, this._queue.length);
    await Promise.all(Array.from({ length: workers }, () => this._worker()));
    this._check();
  }

  async _worker() {
    while (this._queue.length) {
      await this._gate();
      const n = this._queue.shift();
      if (n === undefined) return;
      this._taken.add(n);
      try {
        await this._sendPart(n);
      } finally {
        this._taken.delete(n);
      }
    }
  }

  async _sendPart(n) {
    let attempt = 0; // answers that may change (5xx, 429)
    let glitches = 0; // network failures while the browser thinks it is online
    let refusals = 0; // 403s in a row
    for (;;) {
      await this._gate();
      const signed = await this._urlFor(n);
      if (signed === null) return this._partDone(n, null); // a single PUT storage already holds
      try {
        const etag = await this._put(n, signed);
        return this._partDone(n, etag);
      } catch (error) {
        this._check();
        if (error instanceof Interrupted) continue; // paused: wait at the gate, then send again
        if (error.status === 412 && this.plan.strategy === "single") return this._partDone(n, null);
        if (error.status === 403 && ++refusals <= 2) {
          // An expired URL (a long pause, a skewed clock): sign it again. A fresh URL refused
          // again means storage will not take this part: that is for the user to see.
          this._urls.delete(n);
          continue;
        }
        refusals = 0;
        if (!error.retryable) throw error;
        if (error.status !== 0 && ++attempt >= this.options.maxAttempts) throw error;
        await this._backoff(error.status === 0 ? ++glitches : attempt, error);
      }
    }
  }

  _partDone(n, etag) {
    const size = this._partSize(n);
    this._doneBytes += size;
    this._emitProgress(true);
    if (etag && this.plan.strategy === "multipart") {
      // The progress note is bookkeeping for status displays; storage decides completion.
      this.api.put(`/catalog/uploads/${this.plan.mediaId}/parts/${n}`, { etag, size }).catch(() => {});
    }
  }

  _partSize(n) {
    const { partSize, numParts } = this.plan;
    return n < numParts ? partSize : this.file.size - partSize * (numParts - 1);
  }

  /** A fresh URL for part n, signing it (with the next parts in the queue) when needed. */
  async _urlFor(n) {
    for (;;) {
      const cached = this._urls.get(n);
      if (cached && cached.expiresAt - Date.now() > this.options.urlMarginMs) return cached;
      if (this._signing && this._signing.numbers.has(n)) {
        await this._signing.promise;
        continue;
      }
      if (this._signing) await this._signing.promise.catch(() => {});
      if (this._urls.has(n) && this._urls.get(n).expiresAt - Date.now() > this.options.urlMarginMs) continue;
      const stale = (m) => !this._urls.has(m) || this._urls.get(m).expiresAt - Date.now() <= this.options.urlMarginMs;
      // This part, the parts other workers are about to send, then the queue in order: one
      // request signs what the next few seconds need.
      const wanted = new Set([n, ...[...this._taken].sort((a, b) => a - b), ...this._queue]);
      const numbers = [...wanted].filter((m) => m === n || stale(m)).slice(0, this.options.signBatch);
      const promise = this._sign(numbers);
      this._signing = { numbers: new Set(numbers), promise };
      try {
        const stored = await promise;
        if (stored) return null;
      } finally {
        if (this._signing && this._signing.promise === promise) this._signing = null;
      }
    }
  }

  /** Signs URLs for these parts; true when a single PUT's object turned out to be stored already. */
  async _sign(numbers) {
    const mediaId = this.plan.mediaId;
    if (this.plan.strategy === "single") {
      // A single PUT has no parts endpoint: its resume view signs the one URL again.
      const progress = await this._withRetry(() => this.api.get(`/catalog/uploads/${mediaId}?urls=1`));
      if (!progress.pendingParts.length) return true;
      progress.pendingPartUrls.forEach((signed) => this._remember(signed));
      return false;
    }
    const body = { partNumbers: numbers };
    const signed = await this._withRetry(() => this.api.post(`/catalog/uploads/${mediaId}/parts`, body));
    signed.parts.forEach((part) => this._remember(part));
    return false;
  }

  _remember(signed) {
    this._urls.set(signed.partNumber, {
      url: signed.url,
      headers: signed.headers || {},
      expiresAt: Date.parse(signed.expiresAt),
    });
  }

  /** PUTs part n with XMLHttpRequest (fetch reports no upload progress); resolves with its ETag. */
  _put(n, signed) {
    const start = (n - 1) * this.plan.partSize;
    const blob = this.file.slice(start, start + this._partSize(n));
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const part = { xhr, loaded: 0 };
      let stall;
      const watch = () => {
        clearTimeout(stall);
        stall = setTimeout(() => {
          part.stalled = true;
          xhr.abort();
        }, this.options.stallMs);
      };
      const finish = () => {
        clearTimeout(stall);
        this._inflight.delete(n);
        this._emitProgress(false);
      };
      xhr.open("PUT", signed.url);
      for (const [name, value] of Object.entries(signed.headers)) {
        if (!/^(content-length|host)$/i.test(name)) xhr.setRequestHeader(name, value);
      }
      xhr.upload.onprogress = (event) => {
        part.loaded = event.loaded;
        watch();
        this._emitProgress(false);
      };
      xhr.onload = () => {
        finish();
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.getResponseHeader("ETag"));
        let code = "http_" + xhr.status;
        try {
          code = JSON.parse(xhr.responseText).error.code;
        } catch {
          // S3 answers XML; the status says enough
        }
        reject(new PutError(xhr.status, code, `Storage answered ${xhr.status} (${code}) for part ${n}.`));
      };
      xhr.onerror = () => {
        finish();
        reject(new PutError(0, "network", "The connection to storage failed."));
      };
      xhr.onabort = () => {
        finish();
        if (part.stalled) reject(new PutError(0, "stalled", "The connection to storage stalled."));
        else reject(new Interrupted("paused"));
      };
      this._inflight.set(n, part);
      watch();
      xhr.send(blob);
    });
  }

  // --- finishing ---------------------------------------------------------------------------------
  async _complete() {
    for (let round = 0; ; round++) {
      try {
        await this._withRetry(() => this.api.post(`/catalog/uploads/${this.plan.mediaId}/complete`));
        return;
      } catch (error) {
        // Storage lacks a part we counted as sent (lost after its 200): ask storage which, send
        // those again, once; anything else is for the user to see.
        if (!(error instanceof ApiError) || error.code !== "parts_mismatch" || round > 0) throw error;
        const entry = { ...this.plan, size: this.file.size };
        if (!(await this._resume(entry))) throw error;
        this._setState("uploading");
        await this._sendAll();
        this._setState("completing");
      }
    }
  }

  // --- waiting -------------------------------------------------------------------------------
  /** Runs an API call, waiting out lost networks and retrying answers that may change. */
  async _withRetry(call) {
    let attempt = 0; // answers that may change (5xx, 429)
    let glitches = 0; // network failures: never fatal, waited out with growing pauses
    for (;;) {
      await this._gate();
      try {
        return await call();
      } catch (error) {
        this._check();
        if (!(error instanceof ApiError) || !error.retryable) throw error;
        if (error.status !== 0 && ++attempt >= this.options.maxAttempts) throw error;
        await this._backoff(error.status === 0 ? ++glitches : attempt, error);
      }
    }
  }

  /**
   * Waits before a retry. Without a network every worker shares one countdown, which the
   * browser's `online` event cuts short; otherwise each waits its own jittered time.
   */
  async _backoff(attempt, error) {
    const offline = isOffline(error);
    if (offline) {
      this._offlineWait ??= this._countdown(this.options.offlineRetryMs, true, error).finally(() => {
        this._offlineWait = null;
      });
      return this._offlineWait;
    }
    // A flaky network (online, yet a request failed) is retried sooner and never gives up.
    const delay =
      error.status === 0
        ? backoffDelay(Math.min(attempt, 4), 1000, this.options.offlineRetryMs)
        : backoffDelay(attempt, this.options.backoffBaseMs, this.options.backoffCapMs);
    return this._countdown(delay, false, error);
  }

  _countdown(delayMs, offline, error) {
    const until = Date.now() + delayMs;
    const before = this.state === "retrying" ? "uploading" : this.state;
    this._setState("retrying", error.message);
    this.dispatchEvent(new CustomEvent("retry", { detail: { delayMs, until, offline, reason: error.message } }));
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        if (this.state === "retrying") this._setState(before);
        resolve();
      };
      const timer = setTimeout(done, delayMs);
      window.addEventListener("online", done);
    });
  }

  /** Passes unless paused (then waits for resume) or cancelled (then throws). */
  async _gate() {
    this._check();
    while (this._paused) {
      await this._paused.promise;
      this._check();
    }
  }

  _check() {
    if (this._cancelled) throw new Interrupted("cancelled");
  }

  // --- reporting -----------------------------------------------------------------------------
  _setState(state, message) {
    if (this.state === state) return;
    if (this._paused && state !== "paused" && state !== "cancelled" && state !== "failed") return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, message } }));
  }

  _emitProgress(force) {
    const now = performance.now();
    if (!force && now - this._lastEmit < 200) return;
    this._lastEmit = now;
    const loaded = this.loaded;
    // Speed over the last few seconds, so a pause or a stall shows at once.
    this._samples.push([now, loaded]);
    while (this._samples.length > 2 && now - this._samples[0][0] > 5000) this._samples.shift();
    const [t0, b0] = this._samples[0];
    const speed = now - t0 >= 1000 ? ((loaded - b0) * 1000) / (now - t0) : null;
    const eta = speed && speed > 0 ? (this.total - loaded) / speed : null;
    this.dispatchEvent(new CustomEvent("progress", { detail: { loaded, total: this.total, speed, eta } }));
  }
}

export { Interrupted };
