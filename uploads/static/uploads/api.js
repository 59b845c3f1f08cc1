// The v1 API as the page calls it: JSON in and out, the session's CSRF token on unsafe
// requests, the tenant header for staff of several tenants, and every failure turned into one
// ApiError (a lost network included), so callers branch on `code` and `status`, not on shapes.

/** An API call that failed: `status` 0 means the request never got an answer (network). */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{status: number, code: string, details?: object}} info
   */
  constructor(message, { status, code, details = {} }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** True when trying again later may succeed: no network, a timeout, a busy or failing server. */
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Makes a client for the v1 API.
 * @param {{base: string, csrfToken: string, tenantId?: () => (string|null)}} options
 *   `tenantId` is asked on every call, so a staff member may switch tenants on the page.
 * @returns {{get: Function, post: Function, put: Function, del: Function}}
 */
export function createApi({ base, csrfToken, tenantId = () => null }) {
  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (UNSAFE.has(method)) headers["X-CSRFToken"] = csrfToken;
    const tenant = tenantId();
    if (tenant) headers["X-Tenant-Id"] = tenant;
    let response;
    try {
      response = await fetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError("No network connection.", { status: 0, code: "network", details: { cause: String(error) } });
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error;
      throw new ApiError(error?.message || `The server answered ${response.status}.`, {
        status: response.status,
        code: error?.code || "http_" + response.status,
        details: error?.details || {},
      });
    }
    return data;
  }

  return {
    get: (path) => call("GET", path),
    post: (path, body = {}) => call("POST", path, body),
    put: (path, body = {}) => call("PUT", path, body),
    del: (path) => call("DELETE", path),
  };
}
