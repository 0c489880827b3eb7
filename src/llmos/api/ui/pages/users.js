// Users (administrators only): create, change roles, disable and delete.

import { useState } from "preact/hooks";
import { api, path } from "../lib/api.js";
import {
  html, useWatch, age, Field, ErrorNote, Loading, useSubmit, DeleteButton, mergePatch,
} from "../lib/ui.js";

function CreateUser() {
  const [form, setForm] = useState({ name: "", displayName: "", password: "", admin: false, mustChange: true });
  const { busy, run, changed, fieldError, otherError } = useSubmit();
  const set = (k, field) => (e) => {
    setForm({ ...form, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
    changed(field);
  };
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", path("users"), {
        apiVersion: "management.llmos.ai/v1",
        kind: "User",
        metadata: { name: form.name },
        spec: {
          displayName: form.displayName,
          password: form.password,
          globalRoles: [form.admin ? "admin" : "user"],
          mustChangePassword: form.mustChange,
        },
      });
      setForm({ name: "", displayName: "", password: "", admin: false, mustChange: true });
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Create a user" novalidate>
    <h2>Create a user</h2>
    <div class="cols">
      <${Field} label="Username" id="user-name" error=${fieldError("metadata.name")}>
        <input id="user-name" required autocomplete="off" value=${form.name} onInput=${set("name", "metadata.name")} />
      <//>
      <${Field} label="Display name" id="user-display" error=${fieldError("spec.displayName")}>
        <input id="user-display" value=${form.displayName} onInput=${set("displayName", "spec.displayName")} />
      <//>
      <${Field} label="Password" id="user-password" error=${fieldError("spec.password")}>
        <input id="user-password" type="password" autocomplete="new-password" required
          value=${form.password} onInput=${set("password", "spec.password")} />
      <//>
    </div>
    <label class="check"><input type="checkbox" checked=${form.admin} onChange=${set("admin", "spec.globalRoles")} /> Administrator</label>
    <label class="check"><input type="checkbox" checked=${form.mustChange} onChange=${set("mustChange", "spec.mustChangePassword")} />
      Must change the password at first login</label>
    <${ErrorNote} error=${otherError()} />
    <button type="submit" disabled=${busy}>Create user</button>
  </form>`;
}

function UserRow({ user, me }) {
  const [error, setError] = useState(null);
  const admin = user.spec.globalRoles.includes("admin");
  const self = user.metadata.name === me.user;
  const patch = (spec) => mergePatch("users", user, { spec }).then(() => setError(null), setError);
  return html`<tr data-user=${user.metadata.name}>
    <td>${user.metadata.name}</td>
    <td>${user.spec.displayName}</td>
    <td>${user.spec.globalRoles.join(", ")}</td>
    <td>${user.spec.active ? "active" : "disabled"}</td>
    <td>${user.status && user.status.lastLoginTime ? `${age(user.status.lastLoginTime)} ago` : "never"}</td>
    <td><div class="row-actions">
      ${self ? html`<span class="muted">you</span>` : html`
        <button type="button" class="secondary small" onClick=${() => patch({ globalRoles: [admin ? "user" : "admin"] })}>
          ${admin ? "Make user" : "Make admin"}</button>
        <button type="button" class="secondary small" onClick=${() => patch({ active: !user.spec.active })}>
          ${user.spec.active ? "Disable" : "Enable"}</button>
        <${DeleteButton} plural="users" obj=${user} what="user" />`}
      <${ErrorNote} error=${error} />
    </div></td>
  </tr>`;
}

export function UsersPage({ me }) {
  const users = useWatch(path("users"));
  return html`<section>
    <h1>Users</h1>
    <${ErrorNote} error=${users.error} />
    ${users.loaded
      ? html`<table class="table" aria-label="Users">
          <thead><tr><th>Username</th><th>Display name</th><th>Global roles</th><th>State</th>
            <th>Last login</th><th>Actions</th></tr></thead>
          <tbody>${users.items.map((u) => html`<${UserRow} key=${u.metadata.name} user=${u} me=${me} />`)}</tbody>
        </table>`
      : html`<${Loading} what="users" />`}
    <${CreateUser} />
  </section>`;
}
