// Log in, and the setup a first login (or a forced password change) asks for.

import { useState } from "preact/hooks";
import { api, ApiError } from "../lib/api.js";
import { html, Field, ErrorNote, useSubmit } from "../lib/ui.js";

export function LoginPage({ info, onDone }) {
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const { busy, run, changed, otherError } = useSubmit();
  const submit = (event) => {
    event.preventDefault();
    run(async () => {
      await api("POST", "/v1-public/auth/login", { username, password, setCookie: true });
      await onDone();
    });
  };
  return html`<main class="center">
    <form class="card narrow" onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title">Log in to LLMOS</h1>
      ${info.firstLogin
        ? html`<p class="muted">First start: log in as <b>admin</b> with the one-time password
            the server printed (also in <code>bootstrap-password</code> in its data dir).</p>`
        : null}
      <${Field} label="Username" id="login-username">
        <input id="login-username" name="username" autocomplete="username" required
          value=${username} onInput=${(e) => { setUsername(e.target.value); changed(); }} />
      <//>
      <${Field} label="Password" id="login-password">
        <input id="login-password" name="password" type="password" autocomplete="current-password"
          required value=${password} onInput=${(e) => { setPassword(e.target.value); changed(); }} />
      <//>
      <${ErrorNote} error=${otherError()} id="login-error" />
      <button type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
  </main>`;
}

export function SetupPage({ info, me, onDone, onLogout }) {
  const firstLogin = info.firstLogin && me.globalRoles.includes("admin");
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [serverUrl, setServerUrl] = useState(info.serverUrl || location.origin);
  const { busy, setError, run, changed, fieldError, otherError } = useSubmit();
  const submit = (event) => {
    event.preventDefault();
    if (password !== confirm) {
      setError(ApiError.local("The two passwords differ.", "confirmPassword"));
      return;
    }
    run(async () => {
      if (firstLogin) {
        await api("POST", "/v1-auth/first-login", { newPassword: password, serverUrl });
      } else {
        await api("POST", "/v1-auth/password", { currentPassword: current, newPassword: password });
      }
      await onDone();
    });
  };
  return html`<main class="center">
    <form class="card narrow" onSubmit=${submit} aria-labelledby="setup-title">
      <h1 id="setup-title">${firstLogin ? "Welcome to LLMOS" : "Set a new password"}</h1>
      <p class="muted">${firstLogin
        ? "Choose the admin password and the URL users will reach this server at."
        : `User ${me.user} must set a new password before going on.`}</p>
      ${firstLogin
        ? null
        : html`<${Field} label="Current password" id="setup-current" error=${fieldError("currentPassword")}>
            <input id="setup-current" type="password" autocomplete="current-password" required
              value=${current} onInput=${(e) => { setCurrent(e.target.value); changed("currentPassword"); }} />
          <//>`}
      <${Field} label="New password" id="setup-password" error=${fieldError("newPassword")}
        hint="At least 12 characters.">
        <input id="setup-password" type="password" autocomplete="new-password" required
          value=${password} onInput=${(e) => { setPassword(e.target.value); changed("newPassword"); changed("confirmPassword"); }} />
      <//>
      <${Field} label="Confirm new password" id="setup-confirm" error=${fieldError("confirmPassword")}>
        <input id="setup-confirm" type="password" autocomplete="new-password" required
          value=${confirm} onInput=${(e) => { setConfirm(e.target.value); changed("confirmPassword"); }} />
      <//>
      ${firstLogin
        ? html`<${Field} label="Server URL" id="setup-url" error=${fieldError("serverUrl")}
            hint="The https URL of this server, as users and nodes will reach it.">
            <input id="setup-url" type="url" required value=${serverUrl}
              onInput=${(e) => { setServerUrl(e.target.value); changed("serverUrl"); }} />
          <//>`
        : null}
      <${ErrorNote} error=${otherError()} id="setup-error" />
      <div class="actions">
        <button type="submit" disabled=${busy}>${busy ? "Saving…" : "Save and continue"}</button>
        <button type="button" class="secondary" onClick=${onLogout}>Log out</button>
      </div>
    </form>
  </main>`;
}
