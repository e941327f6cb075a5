// The one place the UI talks to the server (docs/web-ui.md, "API used by the UI").
//
// The session lives in an HttpOnly cookie the page cannot read. The CSRF token that must
// accompany every state-changing request is kept here, in memory only: never in
// localStorage, sessionStorage or a readable cookie.

let csrfToken = null;
let unauthenticatedHandler = () => {};

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || null;
}

// Called with the error when any request answers 401 (the session is over).
export function onUnauthenticated(handler) {
  unauthenticatedHandler = handler;
}

// JSON.parse that keeps numbers the way the server wrote them when a double would change
// them (an int beyond 2^53, a json value's 1e400): such numbers become JSON.rawJSON values,
// which JSON.stringify writes back verbatim.
export function parseJson(text) {
  if (typeof JSON.rawJSON !== 'function') return JSON.parse(text);
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === 'number' && context && typeof context.source === 'string' &&
        String(value) !== context.source) {
      return JSON.rawJSON(context.source);
    }
    return value;
  });
}

function buildUrl(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

// api('GET', '/api/v1/orgs') → the parsed JSON answer, or throws ApiError.
// options: body (serialized with JSON.stringify), rawBody (JSON text sent as is), query,
// quiet401 (a 401 is only thrown, not treated as the end of the session).
export async function api(method, path, options = {}) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let body;
  if (options.rawBody !== undefined) {
    body = options.rawBody;
    headers['Content-Type'] = 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(buildUrl(path, options.query), {
      method,
      headers,
      body,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'network',
      'Cannot reach the Bifrost server. Check your connection and try again.');
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = parseJson(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    let message = error.message || `The server answered ${response.status} ${response.statusText}`.trim();
    if (response.status === 429) {
      const retry = response.headers.get('Retry-After');
      if (retry && !/\d+\s*s/.test(message)) message += ` (try again in ${retry} s)`;
    }
    const failure = new ApiError(response.status, error.code || `http_${response.status}`, message,
      error.field);
    if (response.status === 401 && !options.quiet401) unauthenticatedHandler(failure);
    throw failure;
  }
  return data;
}

// Paths of a scope's config: an organization's, or the global scope's.
export function configsPath(scope, key) {
  const base = scope === 'global' ? '/api/v1/global/configs'
    : `/api/v1/orgs/${encodeURIComponent(scope)}/configs`;
  return key === undefined ? base : `${base}/${encodeURIComponent(key)}`;
}
