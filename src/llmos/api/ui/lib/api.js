// Talking to the LLMOS API from the browser: JSON calls, errors, and live lists.
//
// The session token lives in an HttpOnly cookie that this code never sees.
// Every call sends X-LLMOS-CSRF, which the server requires on cookie-authenticated
// writes (another site's page cannot add that header).

const HEADERS = { "X-LLMOS-CSRF": "1", Accept: "application/json" };

export class ApiError extends Error {
  constructor(status, body) {
    const message =
      (body && (body.message || (body.error && body.error.message))) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.reason = body && body.reason;
    this.causes = (body && body.details && body.details.causes) || [];
  }

  // The message for one field ("spec.replicas"), or for anything below it, for under that
  // field: without the "spec.replicas: " the server puts in front.
  fieldError(field) {
    const hit = this.causes.find((c) => c.field === field || c.field.startsWith(field + "."));
    if (!hit) return null;
    const text = hit.message || this.message;
    return text.startsWith(`${hit.field}: `) ? text.slice(hit.field.length + 2) : text;
  }

  // An error the page itself finds (two passwords that differ), shown like the server's.
  static local(message, field) {
    return new ApiError(0, { message, details: { causes: field ? [{ field, message }] : [] } });
  }

  static async from(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = { message: `${response.status} ${response.statusText}` };
    }
    return new ApiError(response.status, body);
  }
}

// Listeners for "the session ended" (a 401 anywhere): the app shows the login page.
const unauthorized = new Set();
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

export async function request(method, path, body, { signal, headers = {} } = {}) {
  const init = { method, headers: { ...HEADERS, ...headers }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = headers["Content-Type"] || "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !path.startsWith("/v1-public/")) {
    unauthorized.forEach((fn) => fn());
  }
  if (!response.ok) throw await ApiError.from(response);
  return response;
}

export async function api(method, path, body, options) {
  const response = await request(method, path, body, options);
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// Paths of the resource API.
export const GROUPS = {
  modelservices: "ml.llmos.ai",
  notebooks: "ml.llmos.ai",
  mlclusters: "ml.llmos.ai",
  volumes: "ml.llmos.ai",
  volumesnapshots: "ml.llmos.ai",
  nodes: "node.llmos.ai",
  gpudevices: "node.llmos.ai",
  events: "node.llmos.ai",
  users: "management.llmos.ai",
  namespaces: "management.llmos.ai",
  globalroles: "management.llmos.ai",
  roletemplates: "management.llmos.ai",
  roletemplatebindings: "management.llmos.ai",
  settings: "management.llmos.ai",
  tokens: "management.llmos.ai",
};

export function path(plural, namespace, name) {
  let p = `/apis/${GROUPS[plural]}/v1`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  return p;
}

// One cause of an error as a line that names its field once: [field or null, text].
export function causeLine(cause, error) {
  const text = cause.message || error.message;
  if (!cause.field) return [null, text];
  if (text.startsWith(`${cause.field}: `)) return [cause.field, text.slice(cause.field.length + 2)];
  return text.includes(cause.field) ? [null, text] : [cause.field, text];
}

export const key = (obj) => `${obj.metadata.namespace || ""}/${obj.metadata.name}`;

// Lines of a streamed response body, as they arrive.
export async function* lines(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
    }
  }
  if (buffer) yield buffer;
}

// Live lists: each collection is listed, then every change after its
// resourceVersion arrives through ONE multiplexed watch stream per page
// (GET /v1-auth/watch?path=..&rv=..): browsers keep only six connections per
// host across all tabs, so one stream per list would starve everything else.
// A dropped stream resumes where it left off; a 410 lists that path again, as does a
// version the server has not reached (its data was reset while the page stayed open).

const subscriptions = new Set();
let stream = null; // { controller, subs } of the open multiplexed watch
let restartTimer = null;
let backoff = 500;

function emit(sub) {
  if (sub.pending) return;
  sub.pending = true;
  queueMicrotask(() => {
    sub.pending = false;
    if (subscriptions.has(sub)) sub.onChange([...sub.items.values()]);
  });
}

async function relist(sub) {
  const list = await api("GET", sub.path);
  sub.items = new Map(list.items.map((obj) => [key(obj), obj]));
  sub.version = list.metadata.resourceVersion;
  emit(sub);
}

function apply(sub, event) {
  const obj = event.object;
  if (event.type === "ERROR") {
    sub.onError(new ApiError(obj.code || 500, obj));
    const stale = (obj.details?.causes || []).some((c) => c.reason === "ResourceVersionTooLarge");
    if (obj.code === 410 || stale) {
      sub.version = null;
      scheduleRestart(0);
    } else {
      sub.failed = true; // 403/404: not retried until the page asks again
    }
    return;
  }
  sub.version = obj.metadata.resourceVersion;
  if (event.type === "DELETED") sub.items.delete(key(obj));
  else sub.items.set(key(obj), obj);
  emit(sub);
}

function scheduleRestart(delay = 30) {
  clearTimeout(restartTimer);
  restartTimer = setTimeout(restart, delay);
}

async function restart() {
  if (stream) stream.controller.abort();
  stream = null;
  const subs = [...subscriptions].filter((s) => !s.failed);
  if (!subs.length) return;
  const controller = new AbortController();
  const mine = { controller, subs };
  stream = mine;
  try {
    for (const sub of subs) {
      if (sub.version === null) await relist(sub);
    }
    if (stream !== mine) return;
    const query = subs
      .map((s) => `path=${encodeURIComponent(s.path)}&rv=${encodeURIComponent(s.version)}`)
      .join("&");
    const response = await fetch(`/v1-auth/watch?${query}`, {
      headers: HEADERS,
      credentials: "same-origin",
      signal: controller.signal,
    });
    if (!response.ok) throw await ApiError.from(response);
    subs.forEach((s) => s.onError(null));
    backoff = 500;
    for await (const text of lines(response)) {
      if (!text.trim()) continue;
      const event = JSON.parse(text);
      const sub = subs[event.stream];
      if (sub && subscriptions.has(sub)) apply(sub, event);
    }
    if (stream === mine) scheduleRestart(backoff); // the server ended it: resume
  } catch (error) {
    if (controller.signal.aborted || stream !== mine) return;
    if (error.status === 401) unauthorized.forEach((fn) => fn());
    subs.forEach((s) => s.onError(error));
    scheduleRestart(backoff);
    backoff = Math.min(backoff * 2, 10000);
  }
}

// Keep listPath's items current: onChange(items) after each change, onError(error|null)
// as the stream fails and recovers. Returns the function that stops it.
export function watchList(listPath, onChange, onError = () => {}) {
  const sub = { path: listPath, onChange, onError, items: new Map(), version: null, pending: false, failed: false };
  subscriptions.add(sub);
  relist(sub).then(
    () => scheduleRestart(),
    (error) => {
      onError(error);
      if (error.status !== 403 && error.status !== 404) scheduleRestart(backoff);
      else sub.failed = true;
    },
  );
  return () => {
    subscriptions.delete(sub);
    scheduleRestart();
  };
}
