// One Model Service: status, conditions, events, live logs, metrics, scale and delete.

import { useEffect, useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import {
  html, useWatch, useTick, age, Phase, Conditions, EventList, ErrorNote, Loading, byNewest,
  useSubmit, CopyButton, useHistory, LogView, numberOrText,
} from "../lib/ui.js";
import { Chart } from "../lib/chart.js";
import { servedName } from "./models.js";

function Metrics({ namespace, name }) {
  const series = useHistory(`${path("modelservices", namespace, name)}/metrics`);
  return html`<div class="charts">
    <${Chart} title="Requests" unit="req/s" field="requestsPerSecond" points=${series.points} />
    <${Chart} title="Tokens generated" unit="tok/s" field="tokensPerSecond" points=${series.points} color="#20bf6b" />
    <${Chart} title="Latency (mean)" unit="ms" field="latencyMs" points=${series.points} color="#fa8231" />
  </div>
  <p class="muted">The last hour, sampled every ${series.intervalSeconds}s from the gateway.</p>`;
}

function Scale({ ms }) {
  const [replicas, setReplicas] = useState(ms.spec.replicas);
  const { busy, run, changed, otherError } = useSubmit();
  useEffect(() => setReplicas(ms.spec.replicas), [ms.spec.replicas]);
  const apply = (event) => {
    event.preventDefault();
    run(() =>
      api("PATCH", path("modelservices", ms.metadata.namespace, ms.metadata.name),
        { spec: { replicas: numberOrText(replicas) } },
        { headers: { "Content-Type": "application/merge-patch+json" } }),
    );
  };
  return html`<form class="inline" onSubmit=${apply} aria-label="Scale">
    <label for="scale-replicas">Replicas</label>
    <input id="scale-replicas" type="number" min="0" value=${replicas}
      onInput=${(e) => { setReplicas(e.target.value); changed(); }} />
    <button type="submit" class="secondary" disabled=${busy}>Scale</button>
    <${ErrorNote} error=${otherError()} />
  </form>`;
}

function Delete({ ms }) {
  const { busy, error, run } = useSubmit();
  const remove = () => {
    if (!confirm(`Delete model service ${ms.metadata.name}? Its replicas stop.`)) return;
    run(async () => {
      await api("DELETE", path("modelservices", ms.metadata.namespace, ms.metadata.name));
      location.hash = "#/models";
    });
  };
  return html`<span><button type="button" class="danger" onClick=${remove} disabled=${busy}>Delete</button>
    <${ErrorNote} error=${error} /></span>`;
}

export function ModelDetailPage({ params: [namespace, name] }) {
  useTick();
  const all = useWatch(path("modelservices", namespace));
  const events = useWatch(path("events", namespace), byNewest);
  const ms = all.items.find((o) => o.metadata.name === name);
  if (!all.loaded) return html`<${Loading} what=${name} />`;
  if (!ms)
    return html`<section><h1>${name}</h1><${ErrorNote} error=${all.error ||
      `There is no model service ${name} in ${namespace} (or it was deleted).`} />
      <p><a href="#/models">All model services</a></p></section>`;
  const st = ms.status || {};
  const mine = events.items.filter(
    (e) => e.spec.involvedObject.kind === "ModelService" && e.spec.involvedObject.name === name,
  );
  const progress = st.downloadProgress;
  const model = servedName(ms);
  const curl = `curl ${location.origin}/v1/chat/completions \\
  -H "Authorization: Bearer $LLMOS_API_KEY" -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}]}'`;
  return html`<section>
    <header class="row">
      <div><p class="crumbs"><a href="#/models">Model Services</a> / ${namespace}</p>
        <h1>${name} <${Phase} phase=${st.phase} /></h1></div>
      <div class="actions">
        <a class="button" href=${`#/models/${namespace}/${name}/chat`}>Open playground</a>
        <${Delete} ms=${ms} />
      </div>
    </header>
    ${st.message
      ? html`<p class=${`status-message ${st.phase === "Ready" ? "ok" : /Fail|Crash|Unavail/.test(st.phase || "") ? "bad" : ""}`}
          data-testid="status-message">${st.message}</p>`
      : null}
    ${progress
      ? html`<div class="meter"><div class="meter-label"><span>Downloading ${progress.model}</span>
          <span>${progress.percent}%</span></div>
          <div class="meter-bar" role="progressbar" aria-label="Download" aria-valuenow=${progress.percent}>
          <div style=${{ width: `${progress.percent}%` }}></div></div></div>`
      : null}
    <div class="grid two">
      <div class="card">
        <h2>Overview</h2>
        <dl class="facts">
          <dt>Model</dt><dd class="mono">${ms.spec.model}</dd>
          <dt>Engine</dt><dd>${st.engine || ms.spec.engine}</dd>
          <dt>Replicas</dt><dd data-testid="replicas">${st.readyReplicas || 0} ready of ${ms.spec.replicas}</dd>
          <dt>Model name in the API</dt><dd class="mono">${model}</dd>
          <dt>Created</dt><dd>${age(ms.metadata.creationTimestamp)} ago</dd>
        </dl>
        <${Scale} ms=${ms} />
      </div>
      <div class="card">
        <h2>Call it</h2>
        <pre class="code">${curl}</pre>
        <${CopyButton} text=${curl} label="Copy curl" />
        <p class="muted">Create an API key under <a href="#/account">Account & API keys</a>.</p>
      </div>
    </div>
    <h2>Metrics</h2>
    <${Metrics} namespace=${namespace} name=${name} />
    <h2>Conditions</h2>
    <${Conditions} conditions=${st.conditions} />
    <h2>Events</h2>
    <${EventList} events=${mine.slice(0, 20)} />
    <h2>Logs</h2>
    <${LogView} url=${`${path("modelservices", namespace, name)}/logs?follow=true&tailLines=200`}
      label="Replica logs" resetKey=${`${st.replicas}/${st.readyReplicas}/${st.phase}`} />
  </section>`;
}
