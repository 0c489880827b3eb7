// Settings (administrators only): each server setting, its default and its value.

import { useState } from "preact/hooks";
import { path } from "../lib/api.js";
import { html, useWatch, ErrorNote, Loading, useSubmit, mergePatch } from "../lib/ui.js";

// Settings the server keeps itself: shown, not edited here.
const KEPT_BY_SERVER = { "first-login": "Kept by the server: the first-login setup sets it." };

function SettingRow({ setting }) {
  const [value, setValue] = useState(setting.spec.value ?? "");
  const { busy, run, changed, otherError } = useSubmit();
  const name = setting.metadata.name;
  const dirty = value !== (setting.spec.value ?? "");
  const kept = KEPT_BY_SERVER[name];
  const save = (event) => {
    event.preventDefault();
    run(() => mergePatch("settings", setting, { spec: { value } }));
  };
  return html`<tr data-setting=${name}>
    <td class="mono">${name}</td>
    <td>${setting.spec.description}</td>
    <td class="mono">${setting.spec.default ?? ""}</td>
    <td class="setting-value">
      ${kept
        ? html`<span class="mono" data-testid="setting-value">${setting.spec.value ?? setting.spec.default ?? ""}</span>
            <br /><small class="muted">${kept}</small>`
        : html`<form class="inline" onSubmit=${save}>
            <label class="visually-hidden" for=${`setting-${name}`}>${name}</label>
            <input id=${`setting-${name}`} value=${value} placeholder=${setting.spec.default ?? ""}
              onInput=${(e) => { setValue(e.target.value); changed(); }} />
            <button type="submit" class="secondary small" disabled=${busy || !dirty}>Save</button>
          </form>
          <${ErrorNote} error=${otherError()} />`}
    </td>
  </tr>`;
}

export function SettingsPage() {
  const settings = useWatch(path("settings"));
  return html`<section>
    <h1>Settings</h1>
    <${ErrorNote} error=${settings.error} />
    ${settings.loaded
      ? html`<table class="table" aria-label="Settings">
          <thead><tr><th>Name</th><th>What it does</th><th>Default</th><th>Value</th></tr></thead>
          <tbody>${settings.items.map((s) => html`<${SettingRow} key=${s.metadata.name + s.metadata.resourceVersion} setting=${s} />`)}</tbody>
        </table>`
      : html`<${Loading} what="settings" />`}
  </section>`;
}
