// Roles (administrators only): the global roles and templates, and who holds which where.

import { useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import { html, useWatch, Field, ErrorNote, useSubmit, DeleteButton, useNamespaces } from "../lib/ui.js";

function Rules({ rules }) {
  return html`<ul class="rules">${rules.map((r, i) => html`<li key=${i}>
    <code>${r.verbs.join(",")}</code> on <code>${r.resources.join(",")}</code>
    ${r.apiGroups.includes("*") ? null : html` in <code>${r.apiGroups.join(",")}</code>`}
  </li>`)}</ul>`;
}

function RoleTable({ title, items }) {
  return html`<h2>${title}</h2>
  <table class="table" aria-label=${title}>
    <thead><tr><th>Name</th><th>Description</th><th>Rules</th></tr></thead>
    <tbody>${items.map((r) => html`<tr key=${r.metadata.name}>
      <td>${r.spec.displayName || r.metadata.name}<br /><small class="mono muted">${r.metadata.name}</small></td>
      <td>${r.spec.description}</td>
      <td><${Rules} rules=${r.spec.rules} /></td>
    </tr>`)}</tbody>
  </table>`;
}

function Bind({ me, users, templates }) {
  // Not llmos-system: only global roles reach it, so a binding there would grant nothing.
  const { names, fallback } = useNamespaces(me, (n) => n !== "llmos-system");
  const [form, setForm] = useState({ namespace: "", user: "", template: "namespace-member" });
  const namespace = form.namespace || fallback;
  const { busy, run, changed, fieldError, otherError } = useSubmit();
  const set = (k, field) => (e) => {
    setForm({ ...form, [k]: e.target.value });
    changed(field);
  };
  const submit = (event) => {
    event.preventDefault();
    run(() =>
      api("POST", path("roletemplatebindings", namespace), {
        apiVersion: "management.llmos.ai/v1",
        kind: "RoleTemplateBinding",
        metadata: { generateName: `${form.user}-${form.template}-`.slice(0, 50) },
        spec: { user: form.user, roleTemplate: form.template },
      }),
    );
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Grant a role in a namespace">
    <h2>Grant a role in a namespace</h2>
    <div class="cols">
      <${Field} label="User" id="bind-user" error=${fieldError("spec.user")}>
        <select id="bind-user" required value=${form.user} onChange=${set("user", "spec.user")}>
          <option value="">Choose a user</option>
          ${users.map((u) => html`<option key=${u.metadata.name}>${u.metadata.name}</option>`)}
        </select>
      <//>
      <${Field} label="Role" id="bind-template" error=${fieldError("spec.roleTemplate")}>
        <select id="bind-template" value=${form.template} onChange=${set("template", "spec.roleTemplate")}>
          ${templates.map((t) => html`<option key=${t.metadata.name} value=${t.metadata.name}>${t.spec.displayName || t.metadata.name}</option>`)}
        </select>
      <//>
      <${Field} label="Namespace" id="bind-namespace" error=${fieldError("metadata.namespace")}>
        <select id="bind-namespace" value=${namespace} onChange=${set("namespace", "metadata.namespace")}>
          ${names.map((n) => html`<option key=${n}>${n}</option>`)}
        </select>
      <//>
    </div>
    <${ErrorNote} error=${otherError()} />
    <button type="submit" disabled=${busy || !form.user}>Grant</button>
  </form>`;
}

export function RolesPage({ me }) {
  const globals = useWatch(path("globalroles"));
  const templates = useWatch(path("roletemplates"));
  const bindings = useWatch(path("roletemplatebindings"));
  const users = useWatch(path("users"));
  return html`<section>
    <h1>Roles</h1>
    <h2>Who holds which role</h2>
    <${ErrorNote} error=${bindings.error} />
    <table class="table" aria-label="Role bindings">
      <thead><tr><th>User</th><th>Role</th><th>Namespace</th><th></th></tr></thead>
      <tbody>${bindings.items.map((b) => html`<tr key=${b.metadata.uid}>
        <td>${b.spec.user}</td><td>${b.spec.roleTemplate}</td><td>${b.metadata.namespace}</td>
        <td><${DeleteButton} plural="roletemplatebindings" obj=${b} label="Revoke" what="binding" /></td>
      </tr>`)}</tbody>
    </table>
    <${Bind} me=${me} users=${users.items} templates=${templates.items} />
    <${RoleTable} title="Global roles" items=${globals.items} />
    <${RoleTable} title="Namespace role templates" items=${templates.items} />
  </section>`;
}
