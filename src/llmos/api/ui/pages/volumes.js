// Volumes: capacity and usage, who mounts them, snapshots and restores.

import { useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import {
  html, useWatch, useTick, age, Phase, Field, ErrorNote, Loading, useSubmit, DeleteButton, Meter,
  bytes, humanBytes, useNamespaces,
} from "../lib/ui.js";

function CreateVolume({ me, snapshots }) {
  const { names, fallback } = useNamespaces(me);
  const [form, setForm] = useState({ namespace: "", name: "", capacity: "10Gi", from: "" });
  const namespace = form.namespace || fallback;
  const { busy, run, changed, fieldError, otherError } = useSubmit();
  const set = (k, field) => (e) => {
    setForm({ ...form, [k]: e.target.value, ...(k === "namespace" ? { from: "" } : {}) });
    changed(field);
  };
  const ready = snapshots.filter(
    (s) => s.metadata.namespace === namespace && (s.status || {}).readyToUse,
  );
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", path("volumes", namespace), {
        apiVersion: "ml.llmos.ai/v1",
        kind: "Volume",
        metadata: { name: form.name },
        spec: { capacity: form.capacity, ...(form.from ? { fromSnapshot: form.from } : {}) },
      });
      setForm({ ...form, name: "", from: "" });
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Create a volume" novalidate>
    <h2>Create a volume</h2>
    <div class="cols">
      <${Field} label="Namespace" id="vol-namespace" error=${fieldError("metadata.namespace")}>
        <select id="vol-namespace" value=${namespace} onChange=${set("namespace", "metadata.namespace")}>
          ${names.map((n) => html`<option key=${n}>${n}</option>`)}
        </select>
      <//>
      <${Field} label="Name" id="vol-name" error=${fieldError("metadata.name")}>
        <input id="vol-name" value=${form.name} onInput=${set("name", "metadata.name")} autocomplete="off" />
      <//>
      <${Field} label="Capacity" id="vol-capacity" error=${fieldError("spec.capacity")} hint="e.g. 10Gi">
        <input id="vol-capacity" value=${form.capacity} onInput=${set("capacity", "spec.capacity")} />
      <//>
      <${Field} label="Restore from snapshot" id="vol-from" error=${fieldError("spec.fromSnapshot")}>
        <select id="vol-from" value=${form.from} onChange=${set("from", "spec.fromSnapshot")}>
          <option value="">Empty volume</option>
          ${ready.map((s) => html`<option key=${s.metadata.name}>${s.metadata.name}</option>`)}
        </select>
      <//>
    </div>
    <${ErrorNote} error=${otherError()} />
    <button type="submit" disabled=${busy}>Create volume</button>
  </form>`;
}

// What a volume's phase alone does not say: why its deletion waits, or that it is full.
export function volumeNote(vol) {
  const conditions = (vol.status || {}).conditions || [];
  const holding = (type) => conditions.find((c) => c.type === type && c.status === "True");
  const inUse = holding("InUse");
  if (vol.metadata.deletionTimestamp && inUse) return { tone: "wait", text: `Deletion waits: ${inUse.message}` };
  const full = holding("OverCapacity");
  if (full) return { tone: "bad", text: full.message };
  const beyondDisk = conditions.find((c) => c.type === "DiskSpace" && c.status === "False");
  if (beyondDisk) return { tone: "bad", text: beyondDisk.message };
  return null;
}

function Snapshot({ vol }) {
  const { busy, error, run } = useSubmit();
  const take = () =>
    run(() =>
      api("POST", path("volumesnapshots", vol.metadata.namespace), {
        apiVersion: "ml.llmos.ai/v1",
        kind: "VolumeSnapshot",
        metadata: { generateName: `${vol.metadata.name}-` },
        spec: { volumeName: vol.metadata.name },
      }),
    );
  return html`<span class="cell-action"><button type="button" class="secondary small" onClick=${take}
    disabled=${busy} aria-label=${`Snapshot ${vol.metadata.name}`}>Snapshot</button><${ErrorNote} error=${error} /></span>`;
}

export function VolumesPage({ me }) {
  useTick();
  const volumes = useWatch(path("volumes"));
  const snapshots = useWatch(path("volumesnapshots"));
  return html`<section>
    <h1>Volumes</h1>
    <${ErrorNote} error=${volumes.error} />
    ${!volumes.loaded
      ? html`<${Loading} what="volumes" />`
      : volumes.items.length
        ? html`<table class="table" aria-label="Volumes">
            <thead><tr><th>Name</th><th>Namespace</th><th>Usage</th><th>Used by</th><th>Status</th>
              <th>Age</th><th>Actions</th></tr></thead>
            <tbody>${volumes.items.map((v) => {
              const st = v.status || {};
              const note = volumeNote(v);
              return html`<tr key=${v.metadata.uid} data-name=${v.metadata.name}>
                <td><a href=${`#/volumes/${v.metadata.namespace}/${v.metadata.name}`}>${v.metadata.name}</a></td><td>${v.metadata.namespace}</td>
                <td><${Meter} label="Usage" used=${bytes(st.usage) || 0} total=${bytes(v.spec.capacity)} format=${humanBytes} /></td>
                <td>${(st.usedBy || []).join(", ") || "–"}</td>
                <td class="message"><${Phase} phase=${st.phase} />
                  ${note ? html`<br /><small class=${note.tone === "bad" ? "error" : "muted"} data-testid="volume-note">${note.text}</small>` : null}</td>
                <td>${age(v.metadata.creationTimestamp)}</td>
                <td><div class="row-actions"><${Snapshot} vol=${v} /><${DeleteButton} plural="volumes" obj=${v} what="volume" /></div></td>
              </tr>`;
            })}</tbody>
          </table>`
        : html`<p class="muted">No volumes yet.</p>`}
    <h2>Snapshots</h2>
    ${snapshots.items.length
      ? html`<table class="table" aria-label="Snapshots">
          <thead><tr><th>Name</th><th>Namespace</th><th>Of volume</th><th>Size</th><th>Ready</th><th>Taken</th><th></th></tr></thead>
          <tbody>${snapshots.items.map((s) => html`<tr key=${s.metadata.uid}>
            <td>${s.metadata.name}</td><td>${s.metadata.namespace}</td><td>${s.spec.volumeName}</td>
            <td>${humanBytes(bytes((s.status || {}).size))}</td><td>${(s.status || {}).readyToUse ? "yes" : "no"}</td>
            <td>${age((s.status || {}).takenAt)}</td>
            <td><${DeleteButton} plural="volumesnapshots" obj=${s} what="snapshot" /></td>
          </tr>`)}</tbody>
        </table>`
      : html`<p class="muted">No snapshots yet.</p>`}
    <${CreateVolume} me=${me} snapshots=${snapshots.items} />
  </section>`;
}
