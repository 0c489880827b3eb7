// Shared pieces of the dashboard: the html tag, hooks, and small components.

import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import { api, path, watchList, causeLine, request, lines } from "./api.js";

export const html = htm.bind(h);

// A live list from the watch API: { items, error, loaded }.
export function useWatch(listPath, sort = byName) {
  const [state, setState] = useState({ items: [], error: null, loaded: false });
  useEffect(() => {
    if (!listPath) return undefined;
    setState({ items: [], error: null, loaded: false });
    return watchList(
      listPath,
      (items) => setState((s) => ({ ...s, items: items.sort(sort), loaded: true })),
      (error) => setState((s) => ({ ...s, error })),
    );
  }, [listPath]);
  return state;
}

// The result of an async call, re-run when deps change: { value, error, loading, reload }.
export function useAsync(fn, deps) {
  const [state, setState] = useState({ value: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (value) => live && setState({ value, error: null, loading: false }),
      (error) => live && setState({ value: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

// A metric history (``{points, intervalSeconds}``) from `url`, polled at its own interval.
export function useHistory(url) {
  const [series, setSeries] = useState({ points: [], intervalSeconds: 10 });
  useEffect(() => {
    let timer;
    let live = true;
    const poll = async () => {
      try {
        const data = await api("GET", url);
        if (live) setSeries(data);
        timer = setTimeout(poll, Math.max(2, data.intervalSeconds || 10) * 1000);
      } catch {
        timer = setTimeout(poll, 15000);
      }
    };
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [url]);
  return series;
}

// Re-render every `ms` (for ages and relative times).
export function useTick(ms = 5000) {
  const [, setNow] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
}

export const byName = (a, b) =>
  `${a.metadata.namespace || ""}/${a.metadata.name}`.localeCompare(
    `${b.metadata.namespace || ""}/${b.metadata.name}`,
  );

export const byNewest = (a, b) => eventTime(b).localeCompare(eventTime(a));

export const eventTime = (ev) =>
  (ev.spec && (ev.spec.lastTimestamp || ev.spec.firstTimestamp)) ||
  ev.metadata.creationTimestamp ||
  "";

export function age(timestamp) {
  if (!timestamp) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

const UNITS = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

export function bytes(quantity) {
  if (quantity === undefined || quantity === null || quantity === "") return null;
  const match = /^([0-9.]+)([KMGT]i?)?$/.exec(String(quantity));
  if (!match) return null;
  return parseFloat(match[1]) * (match[2] ? UNITS[match[2]] : 1);
}

export function humanBytes(count) {
  if (count === null || count === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (count >= 1024 && i < units.length - 1) {
    count /= 1024;
    i += 1;
  }
  return `${count.toFixed(count >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function Phase({ phase }) {
  const value = phase || "Pending";
  const tone =
    { Ready: "ok", Running: "ok", Active: "ok", Bound: "ok", Healthy: "ok", Failed: "bad",
      CrashLoop: "bad", Unhealthy: "bad" }[value] ||
    (/(Unavailable|Error|BackOff)/.test(value) ? "bad" : "wait");
  return html`<span class="badge ${tone}" data-phase=${value}>${value}</span>`;
}

export function ErrorNote({ error, id }) {
  if (!error) return null;
  const text = typeof error === "string" ? error : error.message;
  return html`<p class="error" role="alert" id=${id}>${text}</p>`;
}

// A labelled control with its error under it.
export function Field({ label, id, error, hint, children }) {
  const errorId = `${id}-error`;
  return html`<div class="field ${error ? "invalid" : ""}">
    <label for=${id}>${label}</label>
    ${children}
    ${hint && !error ? html`<small class="hint">${hint}</small>` : null}
    ${error ? html`<small class="error" id=${errorId} role="alert">${error}</small>` : null}
  </div>`;
}

export function Meter({ label, used, total, format = (v) => v }) {
  const share = total ? Math.min(100, (100 * used) / total) : 0;
  return html`<div class="meter" title=${`${format(used)} of ${format(total)}`}>
    <div class="meter-label"><span>${label}</span><span>${format(used)} / ${format(total)}</span></div>
    <div class="meter-bar" role="progressbar" aria-label=${label} aria-valuenow=${Math.round(share)}
      aria-valuemin="0" aria-valuemax="100"><div style=${{ width: `${share}%` }}></div></div>
  </div>`;
}

export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard API needs a secure, focused context; fall back to a selection.
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return html`<button type="button" class="secondary small" onClick=${copy}>
    ${done ? "Copied" : label}
  </button>`;
}

export function Conditions({ conditions }) {
  if (!conditions || !conditions.length) return html`<p class="muted">No conditions yet.</p>`;
  return html`<table class="table">
    <thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Since</th></tr></thead>
    <tbody>
      ${conditions.map(
        (c) => html`<tr key=${c.type}>
          <td>${c.type}</td>
          <td><span class="badge ${c.status === "True" ? "ok" : "neutral"}">${c.status}</span></td>
          <td>${c.reason}</td>
          <td class="message">${c.message}</td>
          <td>${age(c.lastTransitionTime)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function EventList({ events, showObject = false, empty = "No events." }) {
  useTick();
  if (!events.length) return html`<p class="muted">${empty}</p>`;
  return html`<table class="table events">
    <thead><tr><th>Type</th><th>Reason</th>${showObject ? html`<th>Object</th>` : null}
      <th>Message</th><th>Count</th><th>Last seen</th></tr></thead>
    <tbody>
      ${events.map(
        (ev) => html`<tr key=${ev.metadata.uid || ev.metadata.name}>
          <td><span class="badge ${ev.spec.type === "Warning" ? "bad" : "ok"}">${ev.spec.type}</span></td>
          <td>${ev.spec.reason}</td>
          ${showObject
            ? html`<td>${ev.spec.involvedObject.kind}/${ev.metadata.namespace}/${ev.spec.involvedObject.name}</td>`
            : null}
          <td class="message">${ev.spec.message}</td>
          <td>${ev.spec.count}</td>
          <td>${age(eventTime(ev))}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

// A modal dialog (native <dialog>: focus trapping and Escape for free).
export function Modal({ title, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog && dialog.open && dialog.close();
  }, []);
  return html`<dialog ref=${ref} aria-label=${title} onClose=${onClose}>
    <header class="dialog-head"><h2>${title}</h2>
      <button type="button" class="icon" aria-label="Close" onClick=${onClose}>×</button></header>
    ${children}
  </dialog>`;
}

export function Loading({ what = "" }) {
  return html`<p class="muted loading">Loading${what ? ` ${what}` : ""}…</p>`;
}

// A number box's value for the server: a number, or the text itself when it is none (empty,
// say), for the server to refuse by name; never 0 or null in its place.
export function numberOrText(value) {
  const text = String(value ?? "").trim();
  return text === "" || Number.isNaN(Number(text)) ? text : Number(text);
}

// Open (a new tab, through the proxy) where ``why`` is null, else a disabled button whose
// title says why not: the proxy answers a workload that is not up with an error page.
export function OpenLink({ href, why, text = "Open", label = text, small = true }) {
  const size = small ? "small" : "";
  if (why)
    return html`<span class="cell-action" title=${why}>
      <button type="button" class=${size} disabled aria-label=${label} title=${why}>${text}</button></span>`;
  return html`<a class=${`button ${size}`} href=${href} target="_blank" rel="noopener" aria-label=${label}>${text}</a>`;
}

// Submit handling for forms: { busy, error, run, setError, changed, fieldError, otherError }.
// run(fn) sets busy and error around fn. fieldError(field) is the message to show under that
// field; otherError(), called after the fields, is what none of them showed, for beside the
// button. changed(field) after an input changes: that field's message, and any message not
// about a field, are out of date and go.
export function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [state, setState] = useState({ error: null, edited: [] });
  const setError = (error) => setState({ error, edited: [] });
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (err) {
      setError(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  const changed = (field = "") =>
    setState((s) => (s.error && !s.edited.includes(field) ? { ...s, edited: [...s.edited, field] } : s));
  const { error, edited } = state;
  const shown = [];
  const fieldError = (field) => {
    const message = error && error.fieldError ? error.fieldError(field) : null;
    if (message) shown.push(field);
    return message && !edited.includes(field) ? message : null;
  };
  const otherError = () => {
    if (!error || edited.length) return null;
    const causes = error.causes || [];
    const rest = causes.filter((c) => !shown.some((f) => c.field === f || c.field.startsWith(`${f}.`)));
    if (!causes.length || rest.length === causes.length) return error;
    return rest.length ? rest.map((c) => causeLine(c, error).filter(Boolean).join(": ")).join("; ") : null;
  };
  return { busy, error, setError, run, changed, fieldError, otherError };
}

// The namespaces a create form offers, and the one it starts in ("default" where it is one).
// Those the user holds a role in (not those only seen, as llmos-public), or every one where a
// global role covers them all (an administrator's); and only those ``offered(name)`` keeps.
export function useNamespaces(me, offered = () => true) {
  const { items } = useWatch(path("namespaces"));
  const seen = items.map((n) => n.metadata.name).filter(offered);
  const names = me.allNamespaces ? seen : seen.filter((n) => me.namespaces.includes(n));
  const fallback = names.includes("default")
    ? "default"
    : names[0] || (me.allNamespaces ? "" : me.namespaces[0]) || "";
  return { names, fallback };
}

// A workload's create form (Notebook, MLCluster): its fields, its namespace (the user's
// default until one is chosen), that namespace's volumes, and errors that clear as their
// field changes; choosing another namespace clears the volume.
export function useWorkloadForm(me, initial) {
  const { names, fallback } = useNamespaces(me);
  const [form, setForm] = useState({ namespace: "", volume: "", ...initial });
  const namespace = form.namespace || fallback;
  const volumes = useWatch(namespace ? path("volumes", namespace) : null);
  const submit = useSubmit();
  const set = (k, field) => (e) => {
    setForm({ ...form, [k]: e.target.value, ...(k === "namespace" ? { volume: "" } : {}) });
    submit.changed(field);
  };
  return { names, form, setForm, namespace, volumes, set, ...submit };
}

// A Delete button for one object, with a confirmation and the server's error beside it.
export function DeleteButton({ plural, obj, label = "Delete", what }) {
  const { busy, error, run } = useSubmit();
  const name = obj.metadata.name;
  const remove = () => {
    if (!confirm(`Delete ${what || plural.replace(/s$/, "")} ${name}?`)) return;
    run(() => api("DELETE", path(plural, obj.metadata.namespace, name)));
  };
  return html`<span class="cell-action">
    <button type="button" class="danger small" onClick=${remove} disabled=${busy}
      aria-label=${`${label} ${name}`}>${label}</button>
    <${ErrorNote} error=${error} />
  </span>`;
}

export const mergePatch = (plural, obj, patch) =>
  api("PATCH", path(plural, obj.metadata.namespace, obj.metadata.name), patch, {
    headers: { "Content-Type": "application/merge-patch+json" },
  });

const MAX_LOG_LINES = 2000;
// Terminal colours and cursor moves (Ray, uvicorn and others colour their lines).
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

// A workload's log, followed live from `url` (a .../logs route with follow=true), its
// last MAX_LOG_LINES lines kept, without terminal colour codes. It opens again when
// `resetKey` changes (a follow ends when the process stops). Scrolls along unless the
// reader has scrolled up.
export function LogView({ url, label, resetKey }) {
  const [text, setText] = useState([]);
  const [error, setError] = useState(null);
  const box = useRef(null);
  useEffect(() => {
    const controller = new AbortController();
    setText([]);
    setError(null);
    (async () => {
      try {
        const response = await request("GET", url, undefined, { signal: controller.signal });
        for await (const raw of lines(response)) {
          const line = raw.replace(ANSI, "");
          setText((t) => (t.length >= MAX_LOG_LINES ? [...t.slice(-MAX_LOG_LINES + 1), line] : [...t, line]));
        }
      } catch (err) {
        if (err.name !== "AbortError") setError(err);
      }
    })();
    return () => controller.abort();
  }, [url, resetKey]);
  useEffect(() => {
    const el = box.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 80) el.scrollTop = el.scrollHeight;
  }, [text]);
  if (error) return html`<p class="muted">${error.message}</p>`;
  return html`<pre class="logs" ref=${box} tabindex="0" aria-label=${label} aria-live="off">${text.join("\n")}</pre>`;
}
