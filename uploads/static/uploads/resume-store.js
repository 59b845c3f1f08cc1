// What the page remembers about unfinished uploads, in localStorage, so choosing the same file
// after a reload, a crash or a lost connection continues where storage left off. An entry only
// says which upload to ask about; storage's own account (GET /v1/catalog/uploads/{mediaId})
// decides which parts are there.

const PREFIX = "catalog-upload:v1:";
const MAX_AGE_MS = 7 * 24 * 3600 * 1000; // the server's resume window; older entries are dead

/**
 * The key of a file's entry: who uploads (tenant, artisan), what kind of file, and the file's
 * identity as the browser reports it. A file of another size is another entry, never a resume.
 * @param {{tenant: string, artisanId: string, kind: string, file: File}} what
 * @returns {string}
 */
export function entryKey({ tenant, artisanId, kind, file }) {
  return PREFIX + [tenant, artisanId, kind, file.name, file.size, file.lastModified].join("|");
}

/**
 * @typedef {object} ResumeEntry
 * @property {string} mediaId
 * @property {string} trackingId
 * @property {string} key        the object key
 * @property {string} strategy   "single" or "multipart"
 * @property {number} size
 * @property {number} [partSize]
 * @property {number} [numParts]
 * @property {number} savedAt    ms since the epoch
 */

/**
 * The entry stored under `key`, or null (none, unreadable, or too old to resume).
 * @param {string} key
 * @returns {ResumeEntry|null}
 */
export function loadEntry(key) {
  try {
    const entry = JSON.parse(localStorage.getItem(key) || "null");
    if (!entry || typeof entry.mediaId !== "string" || Date.now() - entry.savedAt > MAX_AGE_MS) return null;
    return entry;
  } catch {
    return null; // private mode, a full or corrupt store: uploading still works, resuming does not
  }
}

/**
 * @param {string} key
 * @param {Omit<ResumeEntry, "savedAt">} entry
 */
export function saveEntry(key, entry) {
  try {
    localStorage.setItem(key, JSON.stringify({ ...entry, savedAt: Date.now() }));
  } catch {
    // Quota or private mode: the upload goes on, it just cannot be resumed after a reload.
  }
}

/** @param {string} key */
export function dropEntry(key) {
  try {
    localStorage.removeItem(key);
  } catch {
    // nothing to do
  }
}

/** Forgets entries older than the server's resume window. */
export function pruneEntries() {
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (key && key.startsWith(PREFIX) && !loadEntry(key)) localStorage.removeItem(key);
    }
  } catch {
    // nothing to do
  }
}
