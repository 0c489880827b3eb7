// The chat playground: talk to a model through the gateway, with the answer streamed.

import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { path, request, lines } from "../lib/api.js";
import { html, useWatch, Field, ErrorNote } from "../lib/ui.js";
import { servedName } from "./models.js";

// The text deltas of an OpenAI chat completion stream (server-sent events).
async function* deltas(response) {
  for await (const line of lines(response)) {
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") return;
    const chunk = JSON.parse(data);
    if (chunk.error) throw new Error(chunk.error.message);
    const choice = chunk.choices && chunk.choices[0];
    const text = choice && choice.delta && choice.delta.content;
    if (text) yield text;
  }
}

const NO_ANSWER = { stopped: "stopped", failed: "the request failed", empty: "the model sent no text" };

// What the model is sent of the conversation: the turns that got an answer (a failed or
// stopped-before-any-text turn stays on screen, marked, but is not sent again).
const context = (messages) =>
  messages.filter((m) => m.content && !m.failed).map(({ role, content }) => ({ role, content }));

// Keep a scrolling pane at its newest line as it grows, unless the user scrolled up to read.
function useFollow(deps) {
  const pane = useRef(null);
  const state = useRef({ pinned: true, top: 0 });
  useLayoutEffect(() => {
    const el = pane.current;
    if (!el || !state.current.pinned) return;
    el.scrollTop = el.scrollHeight;
    state.current.top = el.scrollTop;
  }, deps);
  const onScroll = () => {
    const el = pane.current;
    // Growth never moves scrollTop: only a scroll up by the user leaves it below where we put it.
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 24) state.current.pinned = true;
    else if (el.scrollTop < state.current.top) state.current.pinned = false;
  };
  const pin = () => {
    state.current.pinned = true;
  };
  return { pane, onScroll, pin };
}

export function PlaygroundPage({ params }) {
  const services = useWatch(path("modelservices"));
  const [chosen, setChosen] = useState(params.length ? `${params[0]}/${params[1]}` : "");
  const [system, setSystem] = useState("You are a helpful assistant.");
  const [temperature, setTemperature] = useState(0.7);
  const [maxTokens, setMaxTokens] = useState(256);
  const [messages, setMessages] = useState([]);
  const [input, setInput] = useState("");
  const [error, setError] = useState(null);
  const [streaming, setStreaming] = useState(false);
  const [chunks, setChunks] = useState(0);
  const controller = useRef(null);
  const follow = useFollow([messages]);

  const ready = services.items.filter((ms) => (ms.status || {}).readyReplicas > 0);
  // The one chosen (or linked to); the first ready one only when none was named.
  const named = services.items.find((ms) => `${ms.metadata.namespace}/${ms.metadata.name}` === chosen);
  const current = chosen ? named : ready[0];
  const missing = chosen && !named && services.loaded
    ? `There is no model service ${chosen} (or you may not see it): choose one under Model.`
    : null;
  const model = current ? servedName(current) : "";

  const send = async (event) => {
    event.preventDefault();
    const text = input.trim();
    if (!text || !model) return;
    const turn = { role: "user", content: text };
    const shown = [...messages, turn];
    setMessages([...shown, { role: "assistant", content: "" }]);
    follow.pin();
    setInput("");
    setError(null);
    setStreaming(true);
    setChunks(0);
    controller.current = new AbortController();
    let answer = "";
    let why = "empty"; // of a turn with no text: "stopped", "failed" or "empty"
    try {
      const response = await request(
        "POST",
        "/v1/chat/completions",
        {
          model,
          stream: true,
          stream_options: { include_usage: true }, // the engine's own counts, for usage
          // An emptied field is left out: the model's own default applies.
          ...(String(temperature).trim() === "" ? {} : { temperature: Number(temperature) }),
          ...(String(maxTokens).trim() === "" ? {} : { max_tokens: Number(maxTokens) }),
          messages: [...(system.trim() ? [{ role: "system", content: system }] : []), ...context(shown)],
        },
        { signal: controller.current.signal },
      );
      for await (const delta of deltas(response)) {
        answer += delta;
        setChunks((n) => n + 1);
        setMessages([...shown, { role: "assistant", content: answer }]);
      }
    } catch (err) {
      why = err.name === "AbortError" ? "stopped" : "failed";
      if (why === "failed") setError(err);
    } finally {
      // No text came back: keep the question on screen, marked, and leave it out from now on.
      if (!answer) setMessages([...messages, { ...turn, failed: why }]);
      setStreaming(false);
    }
  };

  return html`<section class="playground">
    <h1>Playground</h1>
    <div class="grid sidebar-right">
      <div class="card chat">
        <ol class="messages" aria-live="polite" aria-label="Conversation" ref=${follow.pane}
          onScroll=${follow.onScroll}>
          ${messages.length === 0 ? html`<li class="muted">Ask ${model || "a model"} something.</li>` : null}
          ${messages.map((m, i) => html`<li key=${i} class=${`message ${m.role}${m.failed ? " failed" : ""}`}
            data-role=${m.role} data-failed=${m.failed}>
            <b>${m.role === "user" ? "You" : "Assistant"}</b>
            <div class="content">${m.content || (streaming && i === messages.length - 1 ? "…" : "")}</div>
            ${m.failed
              ? html`<small class="muted">No answer (${NO_ANSWER[m.failed]}): not sent with later messages.</small>`
              : null}
          </li>`)}
        </ol>
        <${ErrorNote} error=${error || missing} id="chat-error" />
        <form class="composer" onSubmit=${send} aria-label="Send a message">
          <label class="visually-hidden" for="chat-input">Message</label>
          <textarea id="chat-input" rows="2" placeholder="Type a message; Enter sends, Shift+Enter for a new line"
            value=${input} onInput=${(e) => setInput(e.target.value)}
            onKeyDown=${(e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(e); } }} />
          ${streaming
            ? html`<button type="button" class="secondary" onClick=${() => controller.current.abort()}>Stop</button>`
            : html`<button type="submit" disabled=${!model}>Send</button>`}
        </form>
        <p class="muted" data-testid="chunks" data-chunks=${chunks}>${streaming ? `streaming… ${chunks} chunks` : ""}</p>
      </div>
      <aside class="card">
        <${Field} label="Model" id="chat-model">
          <select id="chat-model" value=${current ? `${current.metadata.namespace}/${current.metadata.name}` : ""}
            onChange=${(e) => setChosen(e.target.value)}>
            ${services.items.length === 0 ? html`<option value="">No model services</option>` : null}
            ${services.items.length && !current ? html`<option value="">Choose a model</option>` : null}
            ${services.items.map((ms) => {
              const id = `${ms.metadata.namespace}/${ms.metadata.name}`;
              const up = (ms.status || {}).readyReplicas > 0;
              return html`<option key=${id} value=${id}>${servedName(ms)}${up ? "" : " (not ready)"}</option>`;
            })}
          </select>
        <//>
        <${Field} label="System prompt" id="chat-system">
          <textarea id="chat-system" rows="4" value=${system} onInput=${(e) => setSystem(e.target.value)} />
        <//>
        <${Field} label=${`Temperature: ${Number(temperature).toFixed(1)}`} id="chat-temperature">
          <input id="chat-temperature" type="range" min="0" max="2" step="0.1" value=${temperature}
            onInput=${(e) => setTemperature(e.target.value)} />
        <//>
        <${Field} label="Max tokens" id="chat-max-tokens">
          <input id="chat-max-tokens" type="number" min="1" value=${maxTokens}
            onInput=${(e) => setMaxTokens(e.target.value)} />
        <//>
        <button type="button" class="secondary" onClick=${() => { setMessages([]); setError(null); }}>
          Clear conversation</button>
      </aside>
    </div>
  </section>`;
}
