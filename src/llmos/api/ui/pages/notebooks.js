// Notebooks: list, create, stop/start, open (through the LLMOS proxy) and delete.

import { useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import {
  html, useWatch, useTick, age, Phase, Field, ErrorNote, Loading, useSubmit, DeleteButton,
  mergePatch, useWorkloadForm, OpenLink,
} from "../lib/ui.js";

const TYPES = { jupyter: "JupyterLab", vscode: "VS Code", rstudio: "RStudio" };

function CreateNotebook({ me }) {
  const { names, form, setForm, namespace, volumes, set, busy, run, fieldError, otherError } =
    useWorkloadForm(me, { name: "", type: "jupyter", idle: "" });
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", path("notebooks", namespace), {
        apiVersion: "ml.llmos.ai/v1",
        kind: "Notebook",
        metadata: { name: form.name },
        spec: {
          type: form.type,
          volumes: form.volume ? [{ name: form.volume }] : [],
          ...(form.idle ? { idleTimeoutMinutes: Number(form.idle) } : {}),
        },
      });
      setForm({ ...form, name: "" });
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Create a notebook" novalidate>
    <h2>Create a notebook</h2>
    <div class="cols">
      <${Field} label="Namespace" id="nb-namespace" error=${fieldError("metadata.namespace")}>
        <select id="nb-namespace" value=${namespace} onChange=${set("namespace", "metadata.namespace")}>
          ${names.map((n) => html`<option key=${n}>${n}</option>`)}
        </select>
      <//>
      <${Field} label="Name" id="nb-name" error=${fieldError("metadata.name")}>
        <input id="nb-name" value=${form.name} onInput=${set("name", "metadata.name")} autocomplete="off" />
      <//>
      <${Field} label="Type" id="nb-type" error=${fieldError("spec.type")}>
        <select id="nb-type" value=${form.type} onChange=${set("type", "spec.type")}>
          ${Object.entries(TYPES).map(([v, l]) => html`<option key=${v} value=${v}>${l}</option>`)}
        </select>
      <//>
      <${Field} label="Volume (working dir)" id="nb-volume" error=${fieldError("spec.volumes")}>
        <select id="nb-volume" value=${form.volume} onChange=${set("volume", "spec.volumes")}>
          <option value="">None (a folder of its own)</option>
          ${volumes.items.map((v) => html`<option key=${v.metadata.name}>${v.metadata.name}</option>`)}
        </select>
      <//>
      <${Field} label="Stop when idle for (minutes)" id="nb-idle" error=${fieldError("spec.idleTimeoutMinutes")}
        hint="Empty: never.">
        <input id="nb-idle" type="number" min="1" value=${form.idle} onInput=${set("idle", "spec.idleTimeoutMinutes")} />
      <//>
    </div>
    <${ErrorNote} error=${otherError()} />
    <button type="submit" disabled=${busy}>Create notebook</button>
  </form>`;
}

// Why a notebook cannot be opened now, or null when it can: the proxy answers a notebook that
// is not up with an error page. An idle one (stopped for idleness) starts again when opened.
export function notOpenable(nb) {
  const st = nb.status || {};
  if (nb.spec.stopped || st.phase === "Stopped") return "It is stopped: Start it to open it.";
  if (st.phase === "Ready" || st.phase === "Idle") return null;
  if (/Unavailable|Failed|CrashLoop/.test(st.phase || "")) return `It cannot run: ${st.message || st.phase}`;
  return `It is not ready yet (${st.phase || "Pending"}).`;
}

export function OpenNotebook({ nb, label = `Open ${nb.metadata.name}`, small = true }) {
  const href = nb.status?.url || `/notebooks/${nb.metadata.namespace}/${nb.metadata.name}/`;
  return html`<${OpenLink} href=${href} why=${notOpenable(nb)} label=${label} small=${small} />`;
}

function Row({ nb }) {
  const st = nb.status || {};
  const [error, setError] = useState(null);
  const toggle = () =>
    mergePatch("notebooks", nb, { spec: { stopped: !nb.spec.stopped } }).then(() => setError(null), setError);
  return html`<tr data-name=${nb.metadata.name}>
    <td><a href=${`#/notebooks/${nb.metadata.namespace}/${nb.metadata.name}`}>${nb.metadata.name}</a></td>
    <td>${nb.metadata.namespace}</td>
    <td>${TYPES[nb.spec.type] || nb.spec.type}</td>
    <td>${(nb.spec.volumes || []).map((v) => v.name).join(", ") || "–"}</td>
    <td><${Phase} phase=${st.phase} /><br /><small class="muted">${st.phase === "Ready" ? "" : st.message}</small></td>
    <td>${age(nb.metadata.creationTimestamp)}</td>
    <td><div class="row-actions">
      <${OpenNotebook} nb=${nb} />
      <button type="button" class="secondary small" onClick=${toggle}>${nb.spec.stopped ? "Start" : "Stop"}</button>
      <${DeleteButton} plural="notebooks" obj=${nb} what="notebook" />
      <${ErrorNote} error=${error} />
    </div></td>
  </tr>`;
}

export function NotebooksPage({ me }) {
  useTick();
  const notebooks = useWatch(path("notebooks"));
  return html`<section>
    <h1>Notebooks</h1>
    <p class="muted">JupyterLab or VS Code, one process each, opened through this server: only
      users who may run code in the namespace get in.</p>
    <${ErrorNote} error=${notebooks.error} />
    ${!notebooks.loaded
      ? html`<${Loading} what="notebooks" />`
      : notebooks.items.length
        ? html`<table class="table" aria-label="Notebooks">
            <thead><tr><th>Name</th><th>Namespace</th><th>Type</th><th>Volumes</th><th>Status</th>
              <th>Age</th><th>Actions</th></tr></thead>
            <tbody>${notebooks.items.map((nb) => html`<${Row} key=${nb.metadata.uid} nb=${nb} />`)}</tbody>
          </table>`
        : html`<p class="muted">No notebooks yet.</p>`}
    <${CreateNotebook} me=${me} />
  </section>`;
}
