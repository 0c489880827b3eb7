// Account & API keys: who you are, your password, your keys and what they used.

import { useState } from "preact/hooks";
import { api } from "../lib/api.js";
import { html, useAsync, age, Field, ErrorNote, Loading, useSubmit, CopyButton, Modal } from "../lib/ui.js";

// The model a new key's snippet calls: the first it is scoped to, else (a key for every model)
// the first the user can see; null when there is none yet.
async function modelFor(scopes) {
  if (scopes.length && !scopes.includes("*")) return scopes[0];
  const models = await api("GET", "/v1/models");
  return models.data.length ? models.data[0].id : null;
}

function snippets(token, model) {
  const base = `${location.origin}/v1`;
  const call = model
    ? `    model="${model}",`
    : `    model="MODEL",  # a model this key may use: ${base}/models lists them`;
  return {
    curl: `curl ${base}/models -H "Authorization: Bearer ${token}"`,
    python: `from openai import OpenAI

client = OpenAI(base_url="${base}", api_key="${token}")
# LLMOS signs its own certificate: trust it with
#   curl -k ${location.origin}/v1-public/cacerts -o llmos-ca.pem
#   export SSL_CERT_FILE=llmos-ca.pem
reply = client.chat.completions.create(
${call}
    messages=[{"role": "user", "content": "Hello!"}],
)
print(reply.choices[0].message.content)`,
  };
}

function NewKey({ created, onClose }) {
  const model = useAsync(() => modelFor(created.scopes || []), [created.token]);
  const code = snippets(created.token, model.value);
  return html`<${Modal} title="Your new API key" onClose=${onClose}>
    <p><b>Store this key now: it is not shown again.</b></p>
    <div class="secret-row">
      <input readonly class="mono" aria-label="API key" value=${created.token} data-testid="new-key"
        onFocus=${(e) => e.target.select()} />
      <${CopyButton} text=${created.token} />
    </div>
    <h3>curl</h3><pre class="code">${code.curl}</pre><${CopyButton} text=${code.curl} label="Copy curl" />
    <h3>Python (openai)</h3>
    ${model.loading
      ? html`<${Loading} what="your models" />`
      : html`<pre class="code" data-testid="python-snippet">${code.python}</pre>
          <${CopyButton} text=${code.python} label="Copy Python" />`}
    <div class="actions"><button type="button" onClick=${onClose}>Done</button></div>
  <//>`;
}

function Keys({ me }) {
  const keys = useAsync(() => api("GET", "/v1-auth/apikeys"), []);
  const [form, setForm] = useState({ description: "", ttlMinutes: "", scopes: "*", rpm: "", tpm: "" });
  const [created, setCreated] = useState(null);
  const { busy, run, changed, fieldError, otherError } = useSubmit();
  const revoke = useSubmit();
  const set = (k, field = k) => (e) => {
    setForm({ ...form, [k]: e.target.value });
    changed(field);
  };
  const num = (v) => (v === "" ? undefined : Number(v));
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      const key = await api("POST", "/v1-auth/apikeys", {
        description: form.description,
        ttlMinutes: num(form.ttlMinutes),
        scopes: form.scopes.split(",").map((s) => s.trim()).filter(Boolean),
        requestsPerMinute: num(form.rpm),
        tokensPerMinute: num(form.tpm),
      });
      setCreated(key);
      setForm({ description: "", ttlMinutes: "", scopes: "*", rpm: "", tpm: "" });
      keys.reload();
    });
  };
  const apiKeyLogin = me.token.type === "apikey";
  return html`<h2>API keys</h2>
    ${keys.loading && !keys.value ? html`<${Loading} what="keys" />` : null}
    <${ErrorNote} error=${keys.error || revoke.error} />
    ${keys.value
      ? keys.value.items.length
        ? html`<table class="table" aria-label="API keys">
            <thead><tr><th>Name</th><th>Description</th><th>Models</th><th>Limits</th><th>Expires</th>
              <th>Last used</th><th></th></tr></thead>
            <tbody>${keys.value.items.map((k) => html`<tr key=${k.name} data-key=${k.name}>
              <td class="mono">${k.name}</td><td>${k.description}</td><td>${k.scopes.join(", ")}</td>
              <td>${[k.requestsPerMinute && `${k.requestsPerMinute} req/min`, k.tokensPerMinute && `${k.tokensPerMinute} tok/min`].filter(Boolean).join(", ") || "none"}</td>
              <td>${k.expiresAt || "never"}</td>
              <td>${k.lastUsedAt ? `${age(k.lastUsedAt)} ago` : "never"}</td>
              <td><button type="button" class="danger small" aria-label=${`Revoke ${k.name}`}
                onClick=${() => confirm(`Revoke key ${k.name}? Clients using it stop working.`) &&
                  revoke.run(async () => { await api("DELETE", `/v1-auth/apikeys/${k.name}`); keys.reload(); })}>Revoke</button></td>
            </tr>`)}</tbody>
          </table>`
        : html`<p class="muted">No API keys yet.</p>`
      : null}
    <form class="card" onSubmit=${submit} aria-label="Create an API key" novalidate>
      <h3>Create an API key</h3>
      ${apiKeyLogin ? html`<p class="muted">You are signed in with an API key; log in with a password to create keys.</p>` : null}
      <div class="cols">
        <${Field} label="Description" id="key-description" error=${fieldError("description")}>
          <input id="key-description" value=${form.description} onInput=${set("description")} />
        <//>
        <${Field} label="Models" id="key-scopes" error=${fieldError("scopes")} hint="Comma-separated model names; * is every model.">
          <input id="key-scopes" value=${form.scopes} onInput=${set("scopes")} />
        <//>
        <${Field} label="Expires after (minutes)" id="key-ttl" error=${fieldError("ttlMinutes")} hint="Empty: never.">
          <input id="key-ttl" type="number" min="1" value=${form.ttlMinutes} onInput=${set("ttlMinutes")} />
        <//>
        <${Field} label="Requests per minute" id="key-rpm" error=${fieldError("requestsPerMinute")} hint="Empty: no limit.">
          <input id="key-rpm" type="number" min="1" value=${form.rpm} onInput=${set("rpm", "requestsPerMinute")} />
        <//>
        <${Field} label="Tokens per minute" id="key-tpm" error=${fieldError("tokensPerMinute")} hint="Empty: no limit.">
          <input id="key-tpm" type="number" min="1" value=${form.tpm} onInput=${set("tpm", "tokensPerMinute")} />
        <//>
      </div>
      <${ErrorNote} error=${otherError()} />
      <button type="submit" disabled=${busy || apiKeyLogin}>Create key</button>
    </form>
    ${created ? html`<${NewKey} created=${created} onClose=${() => setCreated(null)} />` : null}`;
}

function Password() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [done, setDone] = useState(false);
  const { busy, run, changed, fieldError, otherError } = useSubmit();
  const submit = (event) => {
    event.preventDefault();
    setDone(false);
    run(async () => {
      await api("POST", "/v1-auth/password", { currentPassword: current, newPassword: next });
      setCurrent("");
      setNext("");
      setDone(true);
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Change password" novalidate>
    <h2>Change password</h2>
    <div class="cols">
      <${Field} label="Current password" id="pw-current" error=${fieldError("currentPassword")}>
        <input id="pw-current" type="password" autocomplete="current-password" required value=${current}
          onInput=${(e) => { setCurrent(e.target.value); changed("currentPassword"); }} />
      <//>
      <${Field} label="New password" id="pw-new" error=${fieldError("newPassword")}>
        <input id="pw-new" type="password" autocomplete="new-password" required value=${next}
          onInput=${(e) => { setNext(e.target.value); changed("newPassword"); }} />
      <//>
    </div>
    <${ErrorNote} error=${otherError()} />
    ${done ? html`<p class="ok" role="status">Password changed. Your other sessions were logged out.</p>` : null}
    <button type="submit" disabled=${busy}>Change password</button>
  </form>`;
}

function Usage() {
  const usage = useAsync(() => api("GET", "/v1-auth/usage"), []);
  if (!usage.value) return html`<${ErrorNote} error=${usage.error} />`;
  return html`<h2>Usage <button type="button" class="secondary small" onClick=${usage.reload}>Refresh</button></h2>
    ${usage.value.items.length
      ? html`<table class="table" aria-label="Usage">
          <thead><tr><th>Model</th><th>Key</th><th>Requests</th><th>Prompt tokens</th><th>Completion tokens</th></tr></thead>
          <tbody>${usage.value.items.map((u, i) => html`<tr key=${i}>
            <td class="mono">${u.model}</td><td class="mono">${u.apiKey}</td><td>${u.requests}</td>
            <td>${u.promptTokens}</td><td>${u.completionTokens}</td></tr>`)}</tbody>
        </table>`
      : html`<p class="muted">No requests through the gateway since the server started.</p>`}`;
}

export function AccountPage({ me }) {
  return html`<section>
    <h1>Account & API keys</h1>
    <dl class="facts card">
      <dt>User</dt><dd>${me.user}</dd>
      <dt>Global roles</dt><dd>${me.globalRoles.join(", ")}</dd>
      <dt>Namespaces</dt><dd>${me.allNamespaces ? "all (global role)" : me.namespaces.join(", ") || "none"}</dd>
      <dt>Session expires</dt><dd>${me.token.expiresAt || "never"}</dd>
    </dl>
    <${Keys} me=${me} />
    <${Usage} />
    <${Password} />
  </section>`;
}
