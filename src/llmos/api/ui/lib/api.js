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

  // The message for one field ("spec.replicas"), or for anything below it.
  fieldError(field) {
    const hit = this.causes.find((c) => c.field === field || c.field.startsWith(field + "."));
    return hit ? hit.message || this.message : null;
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

export const key = (obj) => `${obj.metadata.namespace || ""}/${obj.metadata.name}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

// List a collection, then keep it current through the watch API: the list, then
// every change after its resourceVersion; a 410 (history compacted) lists again,
// a dropped connection resumes where it left off. Calls onChange(items) after
// each change and onError(error|null) as the connection fails and recovers.
export function watchList(listPath, onChange, onError = () => {}) {
  let stopped = false;
  let controller = null;
  let version = null;
  let items = new Map();
  let pending = false;

  const emit = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      if (!stopped) onChange([...items.values()]);
    });
  };

  const relist = async () => {
    const list = await api("GET", listPath, undefined, { signal: controller.signal });
    items = new Map(list.items.map((obj) => [key(obj), obj]));
    version = list.metadata.resourceVersion;
    emit();
  };

  const apply = (event) => {
    const obj = event.object;
    if (event.type === "ERROR") {
      if (obj.code === 410) version = null;
      return;
    }
    version = obj.metadata.resourceVersion;
    if (event.type === "BOOKMARK") return;
    if (event.type === "DELETED") items.delete(key(obj));
    else items.set(key(obj), obj);
    emit();
  };

  (async () => {
    let delay = 500;
    while (!stopped) {
      controller = new AbortController();
      try {
        if (version === null) await relist();
        const sep = listPath.includes("?") ? "&" : "?";
        const url = `${listPath}${sep}watch=true&allowWatchBookmarks=true&resourceVersion=${version}`;
        const response = await fetch(url, {
          headers: HEADERS,
          credentials: "same-origin",
          signal: controller.signal,
        });
        if (response.status === 410) {
          version = null;
          continue;
        }
        if (!response.ok) throw await ApiError.from(response);
        onError(null);
        delay = 500;
        for await (const line of lines(response)) {
          if (line.trim()) apply(JSON.parse(line));
        }
      } catch (error) {
        if (stopped) return;
        if (error.status === 401) unauthorized.forEach((fn) => fn());
        onError(error);
        if (error.status === 403 || error.status === 404) return;
        await sleep(delay);
        delay = Math.min(delay * 2, 10000);
      }
    }
  })();

  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
