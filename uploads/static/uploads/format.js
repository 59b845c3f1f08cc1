// Numbers as people read them on the page: "12.4 MB", "3.1 MB/s", "about 9 s left".

/**
 * Decimal units, as phones and operating systems show file sizes.
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${Math.round(bytes / 1e3)} kB`;
  const mb = bytes / 1e6;
  return `${mb < 100 ? String(Number(mb.toFixed(1))) : Math.round(mb)} MB`;
}

/**
 * @param {number} seconds
 * @returns {string} "9 s", "4 min", "1 h 20 min"
 */
export function formatDuration(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const hours = Math.floor(seconds / 3600);
  return `${hours} h ${Math.round((seconds - hours * 3600) / 60)} min`;
}

/**
 * One line of upload progress: "Uploading photo — 12.4 MB of 40 MB, 3.1 MB/s, about 9 s left".
 * @param {string} what      "photo", "description"
 * @param {{loaded: number, total: number, speed: number|null, eta: number|null}} progress
 * @returns {string}
 */
export function progressLine(what, { loaded, total, speed, eta }) {
  let line = `Uploading ${what} — ${formatBytes(loaded)} of ${formatBytes(total)}`;
  if (speed) line += `, ${formatBytes(speed)}/s`;
  if (eta !== null && eta !== undefined && speed) line += `, about ${formatDuration(eta)} left`;
  return line;
}
