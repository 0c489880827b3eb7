// Notebooks: list, create, stop/start, open (through the LLMOS proxy) and delete.

import { useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import {
  html, useWatch, useTick, age, Phase, Field, ErrorNote, Loading, useSubmit, DeleteButton,
  mergePatch,
} from "../lib/ui.js";

const TYPES = { jupyter: "JupyterLab", vscode: "VS Code", rstudio: "RStudio" };

function CreateNotebook({ namespaces }) {
  const [form, setForm] = useState({ namespace: "default", name: "", type: "jupyter", volume: "", idle: "" });
  const volumes = useWatch(form.namespace ? path("volumes", form.namespace) : null);
  const { busy, error, run } = useSubmit();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", path("notebooks", form.namespace), {
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
  const err = (f) => error && error.fieldError && error.fieldError(f);
  return html`<form class="card" onSubmit=${submit} aria-label="Create a notebook" novalidate>
    <h2>Create a notebook</h2>
    <div class="cols">
      <${Field} label="Namespace" id="nb-namespace">
        <select id="nb-namespace" value=${form.namespace} onChange=${set("namespace")}>
          ${namespaces.map((n) => html`<option key=${n.metadata.name}>${n.metadata.name}</option>`)}
        </select>
      <//>
      <${Field} label="Name" id="nb-name" error=${err("metadata.name")}>
        <input id="nb-name" value=${form.name} onInput=${set("name")} autocomplete="off" />
      <//>
      <${Field} label="Type" id="nb-type" error=${err("spec.type")}>
        <select id="nb-type" value=${form.type} onChange=${set("type")}>
          ${Object.entries(TYPES).map(([v, l]) => html`<option key=${v} value=${v}>${l}</option>`)}
        </select>
      <//>
      <${Field} label="Volume (working dir)" id="nb-volume" error=${err("spec.volumes")}>
        <select id="nb-volume" value=${form.volume} onChange=${set("volume")}>
          <option value="">None (a folder of its own)</option>
          ${volumes.items.map((v) => html`<option key=${v.metadata.name}>${v.metadata.name}</option>`)}
        </select>
      <//>
      <${Field} label="Stop when idle for (minutes)" id="nb-idle" error=${err("spec.idleTimeoutMinutes")} hint="Empty: never.">
        <input id="nb-idle" type="number" min="1" value=${form.idle} onInput=${set("idle")} />
      <//>
    </div>
    <${ErrorNote} error=${error && !err("metadata.name") ? error : null} />
    <button type="submit" disabled=${busy}>Create notebook</button>
  </form>`;
}

function Row({ nb }) {
  const st = nb.status || {};
  const [error, setError] = useState(null);
  const toggle = () =>
    mergePatch("notebooks", nb, { spec: { stopped: !nb.spec.stopped } }).then(() => setError(null), setError);
  const url = `/notebooks/${nb.metadata.namespace}/${nb.metadata.name}/`;
  return html`<tr data-name=${nb.metadata.name}>
    <td><a href=${`#/notebooks/${nb.metadata.namespace}/${nb.metadata.name}`}>${nb.metadata.name}</a></td>
    <td>${nb.metadata.namespace}</td>
    <td>${TYPES[nb.spec.type] || nb.spec.type}</td>
    <td>${(nb.spec.volumes || []).map((v) => v.name).join(", ") || "–"}</td>
    <td><${Phase} phase=${st.phase} /><br /><small class="muted">${st.phase === "Ready" ? "" : st.message}</small></td>
    <td>${age(nb.metadata.creationTimestamp)}</td>
    <td class="row-actions">
      <a class="button small" href=${url} target="_blank" rel="noopener" aria-label=${`Open ${nb.metadata.name}`}>Open</a>
      <button type="button" class="secondary small" onClick=${toggle}>${nb.spec.stopped ? "Start" : "Stop"}</button>
      <${DeleteButton} plural="notebooks" obj=${nb} what="notebook" />
      <${ErrorNote} error=${error} />
    </td>
  </tr>`;
}

export function NotebooksPage() {
  useTick();
  const notebooks = useWatch(path("notebooks"));
  const namespaces = useWatch(path("namespaces"));
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
    <${CreateNotebook} namespaces=${namespaces.items} />
  </section>`;
}
