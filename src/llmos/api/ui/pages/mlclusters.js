// ML Clusters (Ray): list with nodes and resources, create, scale a worker group,
// open the Ray dashboard (through the LLMOS proxy), delete.

import { useEffect, useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import {
  html, useWatch, useTick, age, Phase, Field, ErrorNote, Loading, useSubmit, DeleteButton,
  mergePatch, useWorkloadForm, numberOrText, OpenLink,
} from "../lib/ui.js";

const cores = (resources) => (resources && resources.CPU !== undefined ? resources.CPU : null);

function CreateCluster({ me }) {
  const { names, form, setForm, namespace, volumes, set, busy, run, fieldError, otherError } =
    useWorkloadForm(me, { name: "", workers: "1", idle: "" });
  const submit = (event) => {
    event.preventDefault();
    const workers = form.workers === "" ? 0 : Number(form.workers);
    run(async () => {
      await api("POST", path("mlclusters", namespace), {
        apiVersion: "ml.llmos.ai/v1",
        kind: "MLCluster",
        metadata: { name: form.name },
        spec: {
          workerGroups: [{ name: "workers", replicas: workers, minReplicas: 0 }],
          volumes: form.volume ? [{ name: form.volume }] : [],
          ...(form.idle ? { idleTimeoutSeconds: Number(form.idle) } : {}),
        },
      });
      setForm({ ...form, name: "" });
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Create a Ray cluster" novalidate>
    <h2>Create a Ray cluster</h2>
    <div class="cols">
      <${Field} label="Namespace" id="mlc-namespace" error=${fieldError("metadata.namespace")}>
        <select id="mlc-namespace" value=${namespace} onChange=${set("namespace", "metadata.namespace")}>
          ${names.map((n) => html`<option key=${n}>${n}</option>`)}
        </select>
      <//>
      <${Field} label="Name" id="mlc-name" error=${fieldError("metadata.name")}>
        <input id="mlc-name" value=${form.name} onInput=${set("name", "metadata.name")} autocomplete="off" />
      <//>
      <${Field} label="Workers" id="mlc-workers" error=${fieldError("spec.workerGroups")}>
        <input id="mlc-workers" type="number" min="0" value=${form.workers} onInput=${set("workers", "spec.workerGroups")} />
      <//>
      <${Field} label="Volume (working dir)" id="mlc-volume" error=${fieldError("spec.volumes")}>
        <select id="mlc-volume" value=${form.volume} onChange=${set("volume", "spec.volumes")}>
          <option value="">None</option>
          ${volumes.items.map((v) => html`<option key=${v.metadata.name}>${v.metadata.name}</option>`)}
        </select>
      <//>
      <${Field} label="Scale down when idle for (seconds)" id="mlc-idle" error=${fieldError("spec.idleTimeoutSeconds")}
        hint="Empty: never.">
        <input id="mlc-idle" type="number" min="1" value=${form.idle} onInput=${set("idle", "spec.idleTimeoutSeconds")} />
      <//>
    </div>
    <${ErrorNote} error=${otherError()} />
    <button type="submit" disabled=${busy}>Create cluster</button>
  </form>`;
}

function Scale({ cluster }) {
  const groups = cluster.spec.workerGroups || [];
  const stored = () => Object.fromEntries(groups.map((g) => [g.name, g.replicas]));
  const [counts, setCounts] = useState(stored);
  const { busy, run, changed, otherError } = useSubmit();
  const key = JSON.stringify(stored());
  useEffect(() => setCounts(stored()), [key]); // what is stored now, after any change
  if (!groups.length) return null;
  const apply = (event) => {
    event.preventDefault();
    run(() =>
      mergePatch("mlclusters", cluster, {
        spec: {
          workerGroups: groups.map((g) => ({ ...g, replicas: numberOrText(counts[g.name]) })),
        },
      }),
    );
  };
  return html`<form class="inline" onSubmit=${apply} aria-label=${`Scale ${cluster.metadata.name}`}>
    ${groups.map((g) => html`<label key=${g.name}>${g.name}
      <input type="number" min="0" value=${counts[g.name]} aria-label=${`${g.name} workers`}
        onInput=${(e) => { setCounts({ ...counts, [g.name]: e.target.value }); changed(); }} /></label>`)}
    <button type="submit" class="secondary small" disabled=${busy}>Scale</button>
    <${ErrorNote} error=${otherError()} />
  </form>`;
}

// Why a cluster's Ray dashboard cannot be opened now, or null when its head is up (the proxy
// answers one that is not with an error page).
export function notOpenable(cluster) {
  const st = cluster.status || {};
  const head = (st.nodes || []).find((n) => n.name === "head");
  if (/Unavailable|Failed|CrashLoop/.test(st.phase || "")) return `It cannot run: ${st.message || st.phase}`;
  if (head && head.phase === "Ready") return null;
  return `Its Ray head is not ready yet (${st.phase || "Pending"}${st.message ? `: ${st.message}` : ""}).`;
}

export function OpenRayDashboard({ cluster, text = "Open", label = text, small = true }) {
  const href = `/mlclusters/${cluster.metadata.namespace}/${cluster.metadata.name}/dashboard/`;
  return html`<${OpenLink} href=${href} why=${notOpenable(cluster)} text=${text} label=${label} small=${small} />`;
}

function Row({ cluster }) {
  const st = cluster.status || {};
  const total = cores(st.totalResources);
  const free = cores(st.availableResources);
  return html`<tr data-name=${cluster.metadata.name}>
    <td><a href=${`#/mlclusters/${cluster.metadata.namespace}/${cluster.metadata.name}`}>${cluster.metadata.name}</a></td>
    <td>${cluster.metadata.namespace}</td>
    <td>${(st.nodes || []).map((n) => html`<div key=${n.name}><small>${n.name}: ${n.rayState || n.phase}</small></div>`)}</td>
    <td>${total === null ? "–" : `${free ?? "?"} of ${total} CPUs free`}</td>
    <td><${Phase} phase=${st.phase} /><br /><small class="muted">${st.phase === "Ready" ? "" : st.message}</small></td>
    <td><${Scale} cluster=${cluster} /></td>
    <td>${age(cluster.metadata.creationTimestamp)}</td>
    <td><div class="row-actions">
      <${OpenRayDashboard} cluster=${cluster} text="Dashboard"
        label=${`Open the Ray dashboard of ${cluster.metadata.name}`} />
      <${DeleteButton} plural="mlclusters" obj=${cluster} what="cluster" />
    </div></td>
  </tr>`;
}

export function MLClustersPage({ me }) {
  useTick();
  const clusters = useWatch(path("mlclusters"));
  return html`<section>
    <h1>ML Clusters</h1>
    <p class="muted">Ray clusters: a head and worker groups on this node. Submit jobs with
      <code>llmos ray submit NAME -- python job.py</code>, or <code>ray job submit</code> against the
      dashboard address with an LLMOS token.</p>
    <${ErrorNote} error=${clusters.error} />
    ${!clusters.loaded
      ? html`<${Loading} what="clusters" />`
      : clusters.items.length
        ? html`<table class="table" aria-label="ML clusters">
            <thead><tr><th>Name</th><th>Namespace</th><th>Nodes</th><th>Resources</th><th>Status</th>
              <th>Workers</th><th>Age</th><th>Actions</th></tr></thead>
            <tbody>${clusters.items.map((c) => html`<${Row} key=${c.metadata.uid} cluster=${c} />`)}</tbody>
          </table>`
        : html`<p class="muted">No Ray clusters yet.</p>`}
    <${CreateCluster} me=${me} />
  </section>`;
}
