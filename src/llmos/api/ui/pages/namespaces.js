// Namespaces: the ones you may see; create one (you own it) and delete.

import { useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import { html, useWatch, age, Field, ErrorNote, Loading, useSubmit, DeleteButton } from "../lib/ui.js";

const RESERVED = new Set(["default", "llmos-public", "llmos-system"]);

export function NamespacesPage() {
  const namespaces = useWatch(path("namespaces"));
  const [form, setForm] = useState({ name: "", description: "" });
  const { busy, run, changed, fieldError, otherError } = useSubmit();
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", path("namespaces"), {
        apiVersion: "management.llmos.ai/v1",
        kind: "Namespace",
        metadata: { name: form.name },
        spec: { description: form.description },
      });
      setForm({ name: "", description: "" });
    });
  };
  return html`<section>
    <h1>Namespaces</h1>
    <${ErrorNote} error=${namespaces.error} />
    ${namespaces.loaded
      ? html`<table class="table" aria-label="Namespaces">
          <thead><tr><th>Name</th><th>Description</th><th>Status</th><th>Age</th><th></th></tr></thead>
          <tbody>${namespaces.items.map((n) => html`<tr key=${n.metadata.name} data-namespace=${n.metadata.name}>
            <td>${n.metadata.name}</td><td>${n.spec.description}</td>
            <td>${(n.status || {}).phase || ""}</td><td>${age(n.metadata.creationTimestamp)}</td>
            <td>${RESERVED.has(n.metadata.name) ? null : html`<${DeleteButton} plural="namespaces" obj=${n} what="namespace" />`}</td>
          </tr>`)}</tbody>
        </table>`
      : html`<${Loading} what="namespaces" />`}
    <form class="card" onSubmit=${submit} aria-label="Create a namespace" novalidate>
      <h2>Create a namespace</h2>
      <div class="cols">
        <${Field} label="Name" id="ns-name" error=${fieldError("metadata.name")}>
          <input id="ns-name" required value=${form.name}
            onInput=${(e) => { setForm({ ...form, name: e.target.value }); changed("metadata.name"); }} />
        <//>
        <${Field} label="Description" id="ns-description" error=${fieldError("spec.description")}>
          <input id="ns-description" value=${form.description}
            onInput=${(e) => { setForm({ ...form, description: e.target.value }); changed("spec.description"); }} />
        <//>
      </div>
      <${ErrorNote} error=${otherError()} />
      <button type="submit" disabled=${busy}>Create namespace</button>
    </form>
  </section>`;
}
