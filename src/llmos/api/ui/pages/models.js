// Model Services: the list, with status and the name to call each one by.

import { path } from "../lib/api.js";
import { html, useWatch, useTick, age, Phase, ErrorNote, Loading } from "../lib/ui.js";

export const servedName = (ms) => `${ms.metadata.namespace}/${ms.spec.servedModelName || ms.metadata.name}`;

export function progressText(status) {
  const p = status && status.downloadProgress;
  return p ? `downloading ${p.percent}%` : "";
}

export function ModelListPage() {
  useTick();
  const { items, error, loaded } = useWatch(path("modelservices"));
  return html`<section>
    <header class="row">
      <h1>Model Services</h1>
      <a class="button" href="#/models/new">Deploy a model</a>
    </header>
    <${ErrorNote} error=${error} />
    ${!loaded
      ? html`<${Loading} what="model services" />`
      : items.length === 0
        ? html`<div class="card empty"><p>No model services yet.</p>
            <p><a class="button" href="#/models/new">Deploy the bundled SmolLM2 demo model</a></p></div>`
        : html`<table class="table" aria-label="Model services">
            <thead><tr><th>Name</th><th>Namespace</th><th>Model</th><th>Engine</th>
              <th>Replicas</th><th>Status</th><th>Model name in the API</th><th>Age</th></tr></thead>
            <tbody>
              ${items.map((ms) => {
                const st = ms.status || {};
                return html`<tr key=${ms.metadata.uid} data-name=${ms.metadata.name}>
                  <td><a href=${`#/models/${ms.metadata.namespace}/${ms.metadata.name}`}>${ms.metadata.name}</a></td>
                  <td>${ms.metadata.namespace}</td>
                  <td class="mono">${ms.spec.model}</td>
                  <td>${st.engine || ms.spec.engine}</td>
                  <td>${st.readyReplicas || 0}/${ms.spec.replicas}</td>
                  <td><${Phase} phase=${st.phase} /> <small class="muted">${progressText(st)}</small></td>
                  <td class="mono">${servedName(ms)}</td>
                  <td>${age(ms.metadata.creationTimestamp)}</td>
                </tr>`;
              })}
            </tbody>
          </table>`}
  </section>`;
}
