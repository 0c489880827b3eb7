// The LLMOS dashboard: session, navigation and routes.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, onUnauthorized } from "./lib/api.js";
import { html, Loading, ErrorNote } from "./lib/ui.js";
import { LoginPage, SetupPage } from "./pages/login.js";
import { HomePage } from "./pages/home.js";
import { ModelListPage } from "./pages/models.js";
import { ModelCreatePage } from "./pages/model-create.js";
import { ModelDetailPage } from "./pages/model-detail.js";
import { PlaygroundPage } from "./pages/playground.js";
import { NotebooksPage } from "./pages/notebooks.js";
import { VolumesPage } from "./pages/volumes.js";
import { MLClustersPage } from "./pages/mlclusters.js";
import { DetailPage } from "./pages/detail.js";
import { UsersPage } from "./pages/users.js";
import { RolesPage } from "./pages/roles.js";
import { NamespacesPage } from "./pages/namespaces.js";
import { AccountPage } from "./pages/account.js";
import { SettingsPage } from "./pages/settings.js";

const ROUTES = [
  [/^\/$/, HomePage],
  [/^\/models$/, ModelListPage],
  [/^\/models\/new$/, ModelCreatePage],
  [/^\/models\/([^/]+)\/([^/]+)$/, ModelDetailPage],
  [/^\/models\/([^/]+)\/([^/]+)\/chat$/, PlaygroundPage],
  [/^\/playground$/, PlaygroundPage],
  [/^\/notebooks$/, NotebooksPage],
  [/^\/volumes$/, VolumesPage],
  [/^\/mlclusters$/, MLClustersPage],
  [/^\/(notebooks|mlclusters|volumes)\/([^/]+)\/([^/]+)$/, DetailPage],
  [/^\/users$/, UsersPage, "admin"],
  [/^\/roles$/, RolesPage, "admin"],
  [/^\/namespaces$/, NamespacesPage, "admin"],
  [/^\/account$/, AccountPage],
  [/^\/settings$/, SettingsPage, "admin"],
];

const NAV = [
  ["/", "Home"],
  ["/models", "Model Services"],
  ["/playground", "Playground"],
  ["/notebooks", "Notebooks"],
  ["/mlclusters", "ML Clusters"],
  ["/volumes", "Volumes"],
  ["/namespaces", "Namespaces", "admin"],
  ["/users", "Users", "admin"],
  ["/roles", "Roles", "admin"],
  ["/settings", "Settings", "admin"],
  ["/account", "Account & API keys"],
];

function decodePart(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null; // a malformed escape
  }
}

function useRoute() {
  // As written: each part a route takes is decoded once, by Shell (decoding the whole of it
  // first would decode twice, and throw on a malformed escape such as "%E0%A4%A").
  const read = () => location.hash.replace(/^#/, "") || "/";
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const changed = () => setRoute(read());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function Shell({ me, info, route, onLogout }) {
  const admin = me.globalRoles.includes("admin");
  let page = null;
  for (const [pattern, Page, needs] of ROUTES) {
    const match = pattern.exec(route);
    if (match) {
      const params = match.slice(1).map(decodePart);
      page =
        needs === "admin" && !admin
          ? html`<${ErrorNote} error="This page is for administrators." />`
          : params.includes(null)
            ? html`<h1>Not found</h1><p>This link is malformed. <a href="#/">Home</a></p>`
            : html`<${Page} me=${me} info=${info} params=${params} />`;
      break;
    }
  }
  const section = "/" + (route.split("/")[1] || "");
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <nav class="sidebar" aria-label="Main">
      <div class="brand">LLMOS <small>${info.version}</small></div>
      <ul>
        ${NAV.filter(([, , needs]) => !needs || admin).map(
          ([href, label]) => html`<li key=${href}>
            <a href=${`#${href}`} aria-current=${section === href ? "page" : undefined}>${label}</a>
          </li>`,
        )}
      </ul>
      <div class="whoami">
        <span title=${`Signed in as ${me.displayName || me.user}`}>${me.displayName || me.user}</span>
        <button type="button" class="secondary small" onClick=${onLogout}>Log out</button>
      </div>
    </nav>
    <main id="main" tabindex="-1">${page || html`<h1>Not found</h1><p><a href="#/">Home</a></p>`}</main>
  </div>`;
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState({ loading: true });

  const load = async () => {
    try {
      const info = await api("GET", "/v1-public/info");
      try {
        const me = await api("GET", "/v1-auth/me");
        setSession({ info, me });
      } catch (error) {
        if (error.status === 401) setSession({ info, me: null });
        else setSession({ info, error });
      }
    } catch (error) {
      setSession({ error });
    }
  };

  useEffect(() => {
    load();
    return onUnauthorized(() => setSession((s) => (s.me ? { info: s.info, me: null } : s)));
  }, []);

  const logout = async () => {
    try {
      await api("POST", "/v1-auth/logout");
    } finally {
      setSession((s) => ({ info: s.info, me: null }));
      location.hash = "#/";
    }
  };

  if (session.loading) return html`<${Loading} what="LLMOS" />`;
  if (session.error) return html`<main class="center"><${ErrorNote} error=${session.error} /></main>`;
  if (!session.me) return html`<${LoginPage} info=${session.info} onDone=${load} />`;
  if (session.me.mustChangePassword)
    return html`<${SetupPage} info=${session.info} me=${session.me} onDone=${load} onLogout=${logout} />`;
  return html`<${Shell} me=${session.me} info=${session.info} route=${route} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById("app"));
