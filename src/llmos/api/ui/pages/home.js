// Home: this cluster's nodes, GPUs, workloads and what happened lately.

import { path } from "../lib/api.js";
import {
  html, useWatch, bytes, humanBytes, Meter, Phase, EventList, byNewest, ErrorNote, Loading,
  useHistory,
} from "../lib/ui.js";
import { Chart } from "../lib/chart.js";

const WORKLOADS = [
  ["modelservices", "Model Services", "#/models"],
  ["notebooks", "Notebooks", "#/notebooks"],
  ["mlclusters", "ML Clusters", "#/mlclusters"],
  ["volumes", "Volumes", "#/volumes"],
];

// "1500m" -> 1.5, "2" -> 2: a CPU quantity as cores.
function cores(quantity) {
  const text = String(quantity || "0");
  return text.endsWith("m") ? parseFloat(text) / 1000 : parseFloat(text);
}

// What the node's workloads reserve of its CPUs and memory (status.allocated).
function reserved(node) {
  const { cpu, memory } = node.status.allocated || {};
  const parts = [];
  if (cores(cpu) > 0) parts.push(`${cores(cpu)} CPU`);
  if (bytes(memory) > 0) parts.push(humanBytes(bytes(memory)));
  return parts.length ? `Reserved by workloads: ${parts.join(", ")}` : "Nothing reserved by workloads";
}

function NodeCard({ node }) {
  const cap = node.status.capacity || {};
  const use = node.status.usage || {};
  const gpus = Number(cap["nvidia.com/gpu"] || 0);
  const info = node.status.nodeInfo || {};
  return html`<article class="card node" data-node=${node.metadata.name}>
    <header class="row"><h3>${node.metadata.name}</h3><${Phase} phase=${node.status.phase} /></header>
    <p class="muted">${info.os} ${info.arch} · ${info.mode} mode · LLMOS ${info.llmosVersion}</p>
    <${Meter} label="CPU (cores)" used=${Number(use.cpu || 0)} total=${Number(cap.cpu || 0)}
      format=${(v) => Number(v).toFixed(1)} />
    <${Meter} label="Memory" used=${bytes(use.memory)} total=${bytes(cap.memory)} format=${humanBytes} />
    <${Meter} label="Disk (data dir)" used=${bytes(use["ephemeral-storage"])}
      total=${bytes(cap["ephemeral-storage"])} format=${humanBytes} />
    <p class="muted reserved">${reserved(node)}</p>
    <p class="gpus">${gpus ? `${gpus} NVIDIA GPU${gpus > 1 ? "s" : ""}` : "No GPU: a CPU-only node"}</p>
  </article>`;
}

function GpuCard({ gpu }) {
  const st = gpu.status || {};
  const usage = st.usage || {};
  const { points } = useHistory(`${path("gpudevices", null, gpu.metadata.name)}/metrics`);
  const held = st.allocations || [];
  return html`<article class="card gpu" data-gpu=${gpu.metadata.name}>
    <header class="row"><h3>GPU ${st.index} · ${st.product}</h3>
      <${Phase} phase=${st.health || "Unknown"} /></header>
    <p class="muted">compute ${st.computeCapability} · driver ${st.driverVersion} · ${usage.temperatureCelsius ?? "–"} °C · ${usage.powerWatts ?? "–"} W</p>
    <${Meter} label="Utilization (%)" used=${usage.utilizationPercent || 0} total=${100} />
    <${Meter} label="Memory" used=${usage.memoryUsedBytes || 0} total=${st.memoryTotalBytes} format=${humanBytes} />
    <p class="muted">${held.length
      ? `Held by ${held.map((a) => `${a.kind} ${a.namespace}/${a.name}${a.whole ? "" : ` (${humanBytes(a.memoryBytes)})`}`).join(", ")}`
      : "Free"}</p>
    <${Chart} title="Utilization" unit="%" field="utilizationPercent" points=${points} color="#8854d0" />
  </article>`;
}

function Gpus() {
  const gpus = useWatch(path("gpudevices"), (a, b) => (a.status.index || 0) - (b.status.index || 0));
  if (!gpus.loaded) return html`<${Loading} what="GPUs" />`;
  if (!gpus.items.length) return html`<p class="muted">No GPUs on any node: CPU only.</p>`;
  return html`<div class="grid">${gpus.items.map((g) => html`<${GpuCard} key=${g.metadata.name} gpu=${g} />`)}</div>`;
}

// The phases that count as ready on the home page (a Volume in use is Bound).
const UP = ["Ready", "Running", "Bound"];

function WorkloadCount({ plural, label, href }) {
  const { items, loaded } = useWatch(path(plural));
  const ready = items.filter((o) => UP.includes((o.status || {}).phase)).length;
  const body = html`<span class="count">${loaded ? items.length : "…"}</span>
    <span>${label}</span><small class="muted">${loaded ? `${ready} ready` : ""}</small>`;
  return html`<li class="card stat" data-kind=${plural}>
    ${href ? html`<a href=${href}>${body}</a>` : body}
  </li>`;
}

export function HomePage({ me }) {
  const admin = me && me.globalRoles.includes("admin");
  const nodes = useWatch(path("nodes"));
  const events = useWatch(path("events"), byNewest);
  return html`<section>
    <h1>Home</h1>
    <h2>Nodes</h2>
    <${ErrorNote} error=${nodes.error} />
    ${nodes.loaded
      ? html`<div class="grid">${nodes.items.map((n) => html`<${NodeCard} key=${n.metadata.name} node=${n} />`)}</div>`
      : html`<${Loading} what="nodes" />`}
    ${admin ? html`<h2>GPUs</h2><${Gpus} />` : null}
    <h2>Workloads</h2>
    <ul class="stats">
      ${WORKLOADS.map(([plural, label, href]) => html`<${WorkloadCount} key=${plural}
        plural=${plural} label=${label} href=${href} />`)}
    </ul>
    <h2>Recent events</h2>
    <${ErrorNote} error=${events.error} />
    <${EventList} events=${events.items.slice(0, 15)} showObject=${true} empty="Nothing has happened yet." />
  </section>`;
}
