// The upload page's DOM: four steps (photo, spoken description, language, send), each file
// uploading as soon as it is chosen, then the submission's stage, watched live. The uploads
// themselves are uploader.js's; this module only wires them to the page and to people.

import { createApi } from "./api.js";
import { formatBytes, formatDuration, progressLine } from "./format.js";
import { recordingSupported, startRecording } from "./recorder.js";
import { dropEntry, entryKey, pruneEntries } from "./resume-store.js";
import { Interrupted, Upload } from "./uploader.js";

const config = JSON.parse(document.getElementById("upload-config").textContent);
const $ = (id) => document.getElementById(id);
const ARTISAN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const FINAL_STAGES = new Set(["completed", "failed", "aborted", "expired"]);
const STAGE_ORDER = ["uploaded", "queued", "processing", "completed"];
const STAGE_WORDS = {
  initiated: "Started",
  uploading: "Receiving files",
  uploaded: "Files received",
  queued: "Waiting for processing",
  processing: "Being catalogued",
  completed: "In the catalogue",
  failed: "Processing failed",
  aborted: "Cancelled",
  expired: "Expired",
};
// Types browsers report that the portal knows under another name.
const TYPE_ALIASES = { "image/jpg": "image/jpeg", "audio/x-m4a": "audio/mp4", "audio/mp3": "audio/mpeg" };
const EXTENSION_TYPES = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", heic: "image/heic", heif: "image/heif",
  ogg: "audio/ogg", opus: "audio/opus", webm: "audio/webm", mp3: "audio/mpeg", m4a: "audio/mp4", aac: "audio/aac",
  wav: "audio/wav",
};

const session = {
  tenant: config.tenants[0],
  artisanId: config.artisanId, // fixed for an upload link; typed by staff
  trackingId: null, // the submission both files join, once the first upload exists
  initChain: Promise.resolve(),
  sending: false,
};

const api = createApi({
  base: config.apiBase,
  csrfToken: config.csrfToken,
  // Staff may operate several tenants and say which one; a link's session has exactly one.
  tenantId: () => (config.scope === "staff" ? session.tenant : null),
});

// --- messages ------------------------------------------------------------------------------
let lastAnnouncement = "";
/** Says something to screen readers (the polite live region), once. */
function announce(text) {
  if (text === lastAnnouncement) return;
  lastAnnouncement = text;
  $("announce").textContent = text;
}

function showAlert(text) {
  $("alert").textContent = text;
}

function describeError(error, what) {
  switch (error.code) {
    case "unsupported_media_type":
      return `This kind of ${what} is not accepted. Photos: JPEG, PNG, WebP or HEIC. Recordings: Ogg, Opus, WebM, MP3, M4A, AAC or WAV.`;
    case "too_large":
      return `This ${what} is too large. ${error.message}`;
    case "not_found":
    case "upload_closed":
      return `This ${what} upload is no longer open. Choose the file again to start over.`;
    case "network":
      return "No network. Check the connection, then press Try again.";
    case "url_invalid": // the local backend's refusals of a signed URL
    case "url_expired":
    case "http_403": // S3's (an XML body, no code to read)
      return `Storage refused this ${what}. Press Try again; if it keeps happening, tell the person who sent you here.`;
    default:
      return error.message || `The ${what} could not be uploaded.`;
  }
}

// --- the network banner ----------------------------------------------------------------------
const network = {
  until: 0,
  timer: 0,
  show(text) {
    $("network").textContent = text;
    $("network").hidden = false;
  },
  hide() {
    clearInterval(this.timer);
    $("network").hidden = true;
  },
  /** "No network — retrying in 8 s", counting down; announced once, not every second. */
  countdown(until) {
    this.until = Math.max(this.until, until);
    const seconds = () => Math.max(0, Math.ceil((this.until - Date.now()) / 1000));
    const render = () => this.show(`No network — retrying in ${seconds()} s`);
    render();
    announce(`No network — retrying in ${seconds()} s. The upload goes on by itself when the network is back.`);
    clearInterval(this.timer);
    this.timer = setInterval(render, 1000);
  },
};
window.addEventListener("offline", () => {
  const busy = slots.some((slot) => slot.busy);
  network.show(busy ? "No network — the upload goes on by itself when the network is back." : "No network right now.");
  announce(busy ? "No network. The upload goes on by itself when the network is back." : "No network right now.");
});
window.addEventListener("online", () => {
  network.hide();
  if (slots.some((slot) => slot.busy)) announce("Back online — continuing the upload.");
});

// --- one file: photo or description ---------------------------------------------------------
class Slot {
  constructor(kind, what) {
    this.kind = kind;
    this.what = what; // how sentences name it: "photo", "description"
    this.section = $(`step-${kind}`);
    this.card = $(`${kind}-card`);
    this.progress = $(`${kind}-progress`);
    this.text = $(`${kind}-text`);
    this.file = null;
    this.recorded = false;
    this.upload = null;
    this.finished = null; // the running upload's promise: resolves with its plan
    this.milestone = 0;
    this.objectUrl = null;
    this.card.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) this[button.dataset.action]();
    });
  }

  get busy() {
    return Boolean(this.upload) && !["done", "failed", "cancelled"].includes(this.upload.state);
  }

  get done() {
    return this.upload?.state === "done";
  }

  /** Takes a newly chosen or recorded file, replacing any earlier one, and starts its upload. */
  use(file, { recorded = false } = {}) {
    const contentType = contentTypeOf(file, this.kind);
    const limit = config.maxBytes[session.tenant]?.[this.kind]; // each tenant has its own limits
    if (!contentType) return showAlert(`This file does not look like a ${this.what}. Choose another one.`);
    if (limit && file.size > limit) {
      return showAlert(`This ${this.what} is ${formatBytes(file.size)}; the limit is ${formatBytes(limit)}.`);
    }
    showAlert("");
    this.discard();
    this.file = file;
    this.recorded = recorded;
    this.contentType = contentType;
    this.section.classList.add("has-file");
    $(`${this.kind}-name`).textContent = recorded ? `Your recording, ${formatBytes(file.size)}` : `${file.name}, ${formatBytes(file.size)}`;
    this.objectUrl = URL.createObjectURL(file);
    const preview = $(this.kind === "photo" ? "photo-preview" : "audio-playback");
    preview.hidden = false;
    preview.src = this.objectUrl;
    this.card.hidden = false;
    this.start();
  }

  /** Starts (or, after a failure, continues) the upload once the artisan is known. */
  start() {
    if (!this.file) return;
    if (!session.artisanId) {
      this.render("waiting", "Waiting for the artisan ID above.");
      return;
    }
    lockWho();
    const storeKey = this.recorded
      ? null // a recording cannot be chosen again after a reload, so there is nothing to resume
      : entryKey({ tenant: session.tenant, artisanId: session.artisanId, kind: this.kind, file: this.file });
    const upload = new Upload({
      api,
      file: this.file,
      contentType: this.contentType,
      artisanId: session.artisanId,
      storeKey,
      trackingId: () => claimTrackingId(upload),
    });
    this.upload = upload;
    this.milestone = 0;
    upload.addEventListener("progress", (event) => this.onProgress(event.detail));
    upload.addEventListener("state", (event) => this.onState(event.detail));
    upload.addEventListener("retry", (event) => this.onRetry(event.detail));
    this.run();
  }

  run() {
    const upload = this.upload;
    this.finished = upload.start();
    this.finished.then(
      () => this.onDone(upload),
      (error) => this.onFailed(upload, error),
    );
  }

  pause() {
    this.upload?.pause();
  }

  resume() {
    this.upload?.resume();
  }

  retry() {
    if (this.upload?.state === "failed") this.run();
  }

  async cancel() {
    const upload = this.upload;
    if (!upload) return;
    this.file = null;
    await upload.cancel();
    this.render("cancelled", `Upload cancelled. Choose a ${this.what} again to send one.`);
    announce(`The ${this.what} upload is cancelled.`);
    this.section.classList.remove("has-file", "done");
  }

  /** Stops the current upload when another file takes its place. */
  discard() {
    if (this.upload && this.upload.state !== "done") this.upload.cancel();
    this.upload = null;
    this.finished = null;
    this.section.classList.remove("done");
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }

  onProgress(progress) {
    if (this.upload.state !== "uploading") return;
    this.progress.value = progress.total ? progress.loaded / progress.total : 0;
    this.text.textContent = progressLine(this.what, progress);
    const quarter = Math.floor((4 * progress.loaded) / progress.total);
    if (quarter > this.milestone && quarter < 4) {
      this.milestone = quarter;
      announce(`${capitalise(this.what)} ${quarter * 25}% uploaded.`);
    }
  }

  onState({ state, message }) {
    const upload = this.upload;
    const sent = `${formatBytes(upload.loaded)} of ${formatBytes(upload.total)}`;
    switch (state) {
      case "preparing":
        return this.render(state, `Getting the ${this.what} upload ready…`);
      case "uploading":
        if (upload.resumedFromBytes && !this.resumeNoted) {
          this.resumeNoted = true;
          announce(`Continuing the ${this.what} upload: ${formatBytes(upload.resumedFromBytes)} were already uploaded.`);
        }
        return this.render(state, progressLine(this.what, { loaded: upload.loaded, total: upload.total, speed: null, eta: null }));
      case "paused":
        announce(`The ${this.what} upload is paused.`);
        return this.render(state, `Paused — ${sent} uploaded.`);
      case "completing":
        return this.render(state, `Checking the ${this.what} at storage…`);
      case "retrying":
        return this.render(state, message ? `Trying again — ${message}` : "Trying again…");
      default:
        return undefined; // done, failed and cancelled are rendered when start() settles
    }
  }

  onRetry({ until, offline }) {
    if (offline) {
      network.countdown(until);
      this.render("retrying", `No network — ${formatBytes(this.upload.loaded)} of ${formatBytes(this.upload.total)} uploaded so far.`);
    } else {
      const seconds = formatDuration(Math.max(1, (until - Date.now()) / 1000));
      this.render("retrying", `Connection problem — trying again in ${seconds}.`);
    }
  }

  onDone(upload) {
    if (upload !== this.upload) return;
    this.progress.value = 1;
    this.section.classList.add("done");
    this.render("done", `${capitalise(this.what)} uploaded — ${formatBytes(upload.total)}.`);
    announce(`${capitalise(this.what)} uploaded.`);
  }

  onFailed(upload, error) {
    if (upload !== this.upload || error instanceof Interrupted) return;
    const text = describeError(error, this.what);
    this.render("failed", text);
    showAlert(text);
  }

  /** Shows a state on the card: the line of text, and the buttons that make sense in it. */
  render(state, text) {
    this.card.dataset.state = state;
    this.text.textContent = text;
    const show = {
      pause: ["preparing", "uploading", "retrying"].includes(state),
      resume: state === "paused",
      retry: state === "failed",
      cancel: !["done", "cancelled", "waiting"].includes(state),
    };
    for (const [action, visible] of Object.entries(show)) {
      this.card.querySelector(`[data-action="${action}"]`).hidden = !visible;
    }
    if (state === "cancelled") this.progress.value = 0;
  }
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function contentTypeOf(file, kind) {
  let type = (file.type || "").split(";")[0].toLowerCase();
  type = TYPE_ALIASES[type] || type;
  if (!type) type = EXTENSION_TYPES[(file.name || "").split(".").pop().toLowerCase()] || "";
  return type.startsWith(kind === "photo" ? "image/" : "audio/") ? type : null;
}

/**
 * The submission an upload joins. Uploads ask one after another, each once the one before it
 * exists at the server, so the photo and the description share one trackingId.
 */
function claimTrackingId(upload) {
  const before = session.initChain;
  session.initChain = upload.ready
    .then((plan) => {
      session.trackingId ??= plan.trackingId;
    })
    .catch(() => {});
  return before.then(() => session.trackingId);
}

const slots = [new Slot("photo", "photo"), new Slot("audio", "description")];
const [photo, audio] = slots;

// --- who the upload is for (staff only) -----------------------------------------------------
function setUpWho() {
  if (config.scope !== "staff") return;
  $("who").hidden = false;
  if (config.tenants.length > 1) {
    $("tenant-field").hidden = false;
    for (const id of config.tenants) $("tenant").add(new Option(config.tenantNames?.[id] || id, id));
    $("tenant").addEventListener("change", () => (session.tenant = $("tenant").value));
  }
  const input = $("artisan");
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  input.addEventListener("change", () => {
    const value = input.value.trim();
    if (!ARTISAN_ID.test(value)) {
      input.setAttribute("aria-invalid", "true");
      showAlert("The artisan ID can have letters, digits, _ and - only (at most 64).");
      return;
    }
    showAlert("");
    session.artisanId = value;
    slots.forEach((slot) => slot.card.dataset.state === "waiting" && slot.start());
  });
}

/** Once a file is uploading for an artisan, the artisan (and tenant) stay put. */
function lockWho() {
  if (config.scope !== "staff" || $("artisan").readOnly) return;
  $("artisan").readOnly = true;
  $("tenant").disabled = true;
  $("artisan-hint").textContent = "Fixed for this product once a file is uploading. Reload the page to start over.";
}

// --- choosing files -------------------------------------------------------------------------
function setUpInputs() {
  // A photo the browser cannot show (HEIC on most desktops) still uploads; only the preview goes.
  $("photo-preview").addEventListener("error", () => ($("photo-preview").hidden = true));
  const wire = (inputId, slot) =>
    $(inputId).addEventListener("change", (event) => {
      const file = event.target.files[0];
      event.target.value = ""; // choosing the same file again (to resume) fires change again
      if (file) slot.use(file);
    });
  wire("photo-camera", photo);
  wire("photo-file", photo);
  wire("audio-file", audio);
  for (const { code, name } of config.languages) $("language").add(new Option(name, code));
  $("language").addEventListener("change", () => $("language").removeAttribute("aria-invalid"));
}

// --- recording ------------------------------------------------------------------------------
function setUpRecorder() {
  const button = $("record");
  if (!recordingSupported()) {
    button.hidden = true;
    $("audio-hint").textContent += " Recording is not possible in this browser: choose a recording you made.";
    return;
  }
  let recording = null;
  let clock = 0;
  button.addEventListener("click", async () => {
    if (recording) {
      clearInterval(clock);
      const current = recording;
      recording = null;
      const blob = await current.stop();
      $("recording").hidden = true;
      button.textContent = "Record again";
      announce("Recording stopped. Listen to it below; it is uploading.");
      const extension = blob.type.split("/")[1] || "webm";
      audio.use(new File([blob], `recording.${extension}`, { type: blob.type }), { recorded: true });
      return;
    }
    try {
      recording = await startRecording({ onLevel: (level) => ($("level").style.width = `${Math.round(level * 100)}%`) });
    } catch (error) {
      showAlert(`The microphone could not be used (${error.message}). You can choose a recording instead.`);
      return;
    }
    showAlert("");
    button.textContent = "Stop recording";
    $("recording").hidden = false;
    announce("Recording. Press Stop recording when you are done.");
    clock = setInterval(() => {
      const seconds = Math.floor((Date.now() - recording.startedAt) / 1000);
      $("rec-time").textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    }, 250);
  });
}

// --- sending and watching -------------------------------------------------------------------
async function send(event) {
  event.preventDefault();
  if (session.sending) return;
  const missing = [];
  if (config.scope === "staff" && !session.artisanId) missing.push(["the artisan ID", $("artisan")]);
  if (!photo.file) missing.push(["a photo", $("photo-camera")]);
  if (!audio.file) missing.push(["a spoken description", $("record").hidden ? $("audio-file") : $("record")]);
  if (!$("language").value) {
    missing.push(["the language", $("language")]);
    $("language").setAttribute("aria-invalid", "true");
  }
  if (missing.length) {
    showAlert(`Before sending, add ${missing.map(([what]) => what).join(", ")}.`);
    missing[0][1].focus();
    return;
  }
  showAlert("");
  session.sending = true;
  const button = $("send");
  button.disabled = true;
  try {
    if (!photo.done || !audio.done) {
      button.textContent = "Sending when the uploads finish…";
      announce("Sending as soon as both files are uploaded.");
    }
    const [photoPlan, audioPlan] = await Promise.all([photo.finished, audio.finished]);
    button.textContent = "Sending…";
    const body = {
      trackingId: photoPlan.trackingId,
      photoKey: photoPlan.key,
      audioKey: audioPlan.key,
      language: $("language").value,
    };
    await withRetry(() => api.post("/catalog/upload/complete", body));
    slots.forEach((slot) => slot.upload.storeKey && dropEntry(slot.upload.storeKey));
    showResult(body.trackingId);
  } catch (error) {
    if (!(error instanceof Interrupted)) showAlert(`Not sent: ${describeError(error, "file")}`);
    button.textContent = "Send";
    button.disabled = false;
    session.sending = false;
  }
}

/** Retries a call while the network is away or the server is busy; other errors are final. */
async function withRetry(call) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!error.retryable || attempt >= 8) throw error;
      const delay = Math.random() * Math.min(15_000, 1000 * 2 ** attempt);
      if (error.status === 0 && !navigator.onLine) network.countdown(Date.now() + delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function showResult(trackingId) {
  $("upload-form").hidden = true;
  $("intro").hidden = true;
  const language = $("language").selectedOptions[0].textContent;
  $("summary").textContent =
    `Photo (${formatBytes(photo.file.size)}) and spoken description (${formatBytes(audio.file.size)}) in ${language}.`;
  $("tracking-id").textContent = trackingId;
  const result = $("result");
  result.hidden = false;
  renderStage({ stage: "uploaded", message: "Your files are received." });
  result.focus();
  announce(`Sent. Tracking number ${trackingId}.`);
  watchStatus(trackingId);
}

/** Polls the status endpoint, quickly while the stage moves and then backing off, until a final stage. */
async function watchStatus(trackingId) {
  const path = config.statusUrlTemplate.replace("{trackingId}", encodeURIComponent(trackingId));
  const relative = path.startsWith(config.apiBase) ? path.slice(config.apiBase.length) : path;
  let delay = 1000;
  let stage = null;
  for (;;) {
    try {
      const status = await api.get(relative);
      if (status.stage !== stage) {
        stage = status.stage;
        delay = 1000;
        renderStage(status);
      }
      if (FINAL_STAGES.has(status.stage)) return;
    } catch (error) {
      if (!error.retryable) {
        showAlert(`The stage cannot be shown: ${error.message}`);
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(30_000, delay * 1.5);
  }
}

function renderStage({ stage, message }) {
  const result = $("result");
  result.dataset.stage = stage;
  const words = STAGE_WORDS[stage] || stage;
  $("stage").textContent = words;
  // The server's message, unless it only repeats the stage's name.
  const extra = message && message.replace(/\.$/, "").toLowerCase() !== words.toLowerCase() ? message : "";
  $("stage-message").textContent = extra ? ` — ${extra}` : "";
  const reached = STAGE_ORDER.indexOf(stage);
  for (const item of $("stages").children) {
    const index = STAGE_ORDER.indexOf(item.dataset.stage);
    item.classList.toggle("reached", reached >= 0 && index <= reached);
    item.classList.toggle("current", index === reached);
  }
  announce(`Stage: ${words}.${extra ? " " + extra : ""}`);
  if (stage === "failed") showAlert(`Processing failed: ${message}`);
}

// --- start ----------------------------------------------------------------------------------
pruneEntries();
setUpWho();
setUpInputs();
setUpRecorder();
$("upload-form").addEventListener("submit", send);
$("again").addEventListener("click", () => location.reload());
document.documentElement.dataset.uploadReady = "";
