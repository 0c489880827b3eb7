// One Notebook, ML Cluster or Volume: status, conditions, Events, live logs (a notebook's,
// a Ray node's) and the object as YAML.

import YAML from "yaml";
import { useState } from "preact/hooks";
import { path } from "../lib/api.js";
import {
  html, useWatch, useTick, age, Phase, Conditions, EventList, ErrorNote, Loading, byNewest,
  DeleteButton, LogView,
} from "../lib/ui.js";
import { OpenNotebook } from "./notebooks.js";
import { OpenRayDashboard } from "./mlclusters.js";
import { volumeNote } from "./volumes.js";

const KINDS = {
  notebooks: {
    kind: "Notebook",
    title: "Notebooks",
    open: (obj) => html`<${OpenNotebook} nb=${obj} label="Open" small=${false} />`,
  },
  mlclusters: {
    kind: "MLCluster",
    title: "ML Clusters",
    open: (obj) => html`<${OpenRayDashboard} cluster=${obj} small=${false} />`,
  },
  volumes: { kind: "Volume", title: "Volumes", open: null },
};

const UP = ["Ready", "Running", "Bound", "Idle"];

// The status message: a plain line (its URL a link) while all is well, a banner otherwise.
function StatusMessage({ plural, obj }) {
  const st = obj.status || {};
  const note = plural === "volumes" ? volumeNote(obj) : null;
  if (note)
    return html`<p class=${`status-message ${note.tone}`} data-testid="status-message">${note.text}</p>`;
  if (!st.message) return null;
  if (UP.includes(st.phase)) {
    const at = st.url ? st.message.indexOf(st.url) : -1;
    const link = html`<a href=${st.url} target="_blank" rel="noopener">${st.url}</a>`;
    const text = at < 0
      ? st.message
      : html`${st.message.slice(0, at)}${link}${st.message.slice(at + (st.url || "").length)}`;
    return html`<p class="status-line" data-testid="status-message">${text}</p>`;
  }
  const bad = /Fail|Crash|Unavail|Error/.test(st.phase || "");
  return html`<p class=${`status-message ${bad ? "bad" : ""}`} data-testid="status-message">${st.message}</p>`;
}

// The live log of a notebook, or of one Ray node of a cluster (the head unless another
// is picked).
function WorkloadLogs({ plural, obj }) {
  const [node, setNode] = useState("head");
  const { namespace, name } = obj.metadata;
  const st = obj.status || {};
  const base = `${path(plural, namespace, name)}/logs?follow=true&tailLines=200`;
  if (plural === "notebooks")
    return html`<${LogView} url=${base} label="Notebook logs" resetKey=${st.phase} />`;
  const nodes = (st.nodes || []).map((n) => n.name);
  const shown = nodes.includes(node) || !nodes.length ? node : "head";
  return html`<label class="inline">Ray node <select value=${shown} aria-label="Ray node"
      onChange=${(e) => setNode(e.target.value)}>
      ${(nodes.length ? nodes : ["head"]).map((n) => html`<option value=${n}>${n}</option>`)}
    </select></label>
    <${LogView} url=${`${base}&node=${encodeURIComponent(shown)}`} label="Ray node logs"
      resetKey=${`${st.phase}/${(st.nodes || []).find((n) => n.name === shown)?.ip || ""}`} />`;
}

export function DetailPage({ params: [plural, namespace, name] }) {
  useTick();
  const about = KINDS[plural];
  const all = useWatch(about ? path(plural, namespace) : null);
  const events = useWatch(about ? path("events", namespace) : null, byNewest);
  if (!about) return html`<${ErrorNote} error=${`No page for ${plural}.`} />`;
  if (!all.loaded) return html`<${Loading} what=${name} />`;
  const obj = all.items.find((o) => o.metadata.name === name);
  if (!obj)
    return html`<section><h1>${name}</h1>
      <${ErrorNote} error=${all.error || `There is no ${about.kind} ${name} in ${namespace} (or it was deleted).`} />
      <p><a href=${`#/${plural}`}>All ${about.title}</a></p></section>`;
  const st = obj.status || {};
  const mine = events.items.filter(
    (e) => e.spec.involvedObject.kind === about.kind && e.spec.involvedObject.name === name,
  );
  return html`<section>
    <header class="row">
      <div><p class="crumbs"><a href=${`#/${plural}`}>${about.title}</a> / ${namespace}</p>
        <h1>${name} <${Phase} phase=${st.phase} /></h1></div>
      <div class="actions">
        ${about.open ? about.open(obj) : null}
        <${DeleteButton} plural=${plural} obj=${obj} what=${about.kind} />
      </div>
    </header>
    <${StatusMessage} plural=${plural} obj=${obj} />
    <p class="muted">Created ${age(obj.metadata.creationTimestamp)} ago
      ${(obj.metadata.annotations || {})["llmos.ai/creator"] ? ` by ${obj.metadata.annotations["llmos.ai/creator"]}` : ""}.</p>
    <h2>Conditions</h2>
    <${Conditions} conditions=${st.conditions} />
    <h2>Events</h2>
    <${EventList} events=${mine.slice(0, 20)} />
    ${plural === "volumes" ? null : html`<h2>Logs</h2><${WorkloadLogs} plural=${plural} obj=${obj} />`}
    <h2>Object</h2>
    <pre class="code" aria-label="The object as YAML">${YAML.stringify(obj)}</pre>
  </section>`;
}
