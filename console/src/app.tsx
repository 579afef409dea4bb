// The shell: sign-in, who you are, navigation, and the screen of the current route (routes.ts).

import { useEffect, useRef, useState } from "preact/hooks";

import { currentIdentity, onSessionChange, signIn, signOut, type Identity } from "./api";
import { ErrorNote, useAction } from "./ui";
import { appHref, parseRoute, type Route } from "./routes";
import { AppPicker } from "./screens/apps";
import { DataSources } from "./screens/data-sources";
import { ManageTriggers } from "./screens/triggers";
import { FailedTriggers } from "./screens/failed-triggers";
import { ConfigParams } from "./screens/config-params";
import { DataPlanes } from "./screens/data-planes";
import { Actions } from "./screens/actions";

const APP_SCREENS: [string, string][] = [
  ["data-sources", "Data Sources"],
  ["triggers", "Manage Triggers"],
  ["failed", "Failed Triggers"],
  ["params", "Config Params"],
  ["actions", "Actions"],
];

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

function SignIn() {
  const { busy, error, run } = useAction();
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main id="main" class="signin">
      <h1>Webhook Gateway</h1>
      <form
        aria-labelledby="signin-title"
        onSubmit={async (e) => {
          e.preventDefault();
          const field = input.current;
          if (!field) return;
          const token = field.value;
          const ok = await run(() => signIn(token));
          // The API token is not kept anywhere, not even in the field.
          if (ok) field.value = "";
        }}
      >
        <h2 id="signin-title">Sign in</h2>
        <label for="api-token">API token</label>
        <input
          ref={input}
          id="api-token"
          name="api-token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          aria-describedby="api-token-hint"
        />
        <p id="api-token-hint" class="hint">
          A token from <code>AdminService.CreateApiToken</code> or <code>control-plane bootstrap-token</code>{" "}
          (starts with <code>gwt_</code>). It is exchanged for a session that lasts until you sign out or
          reload the page; the console stores neither.
        </p>
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function short(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…` : id;
}

function Header({ who }: { who: Identity }) {
  return (
    <header class="top">
      <a class="brand" href="#/">
        Webhook Gateway
      </a>
      <section class="who" aria-label="Signed in as">
        <span>
          <span class="muted">Organization</span> <span title={who.organizationId}>{short(who.organizationId)}</span>
        </span>
        <span>
          <span class="muted">Workspace</span>{" "}
          {who.workspaceId ? <span title={who.workspaceId}>{short(who.workspaceId)}</span> : "all"}
        </span>
        <span>
          <span class="muted">Role</span> <strong data-testid="role">{who.role}</strong>
        </span>
        <button
          type="button"
          onClick={() => {
            signOut();
            window.location.hash = "#/";
          }}
        >
          Sign out
        </button>
      </section>
    </header>
  );
}

function Nav({ route }: { route: Route }) {
  const inApp = route.appId !== "";
  return (
    <nav class="side" aria-label="Screens">
      <ul>
        <li>
          <a href="#/" aria-current={route.screen === "apps" ? "page" : undefined}>
            Apps
          </a>
        </li>
        {inApp &&
          APP_SCREENS.map(([screen, label]) => (
            <li key={screen}>
              <a
                href={appHref(route.workspaceId, route.appId, screen)}
                aria-current={route.screen === screen ? "page" : undefined}
              >
                {label}
              </a>
            </li>
          ))}
        <li>
          <a href="#/data-planes" aria-current={route.screen === "data-planes" ? "page" : undefined}>
            Data Planes
          </a>
        </li>
      </ul>
      {inApp && (
        <p class="muted app-id" title={`workspace ${route.workspaceId}, app ${route.appId}`}>
          App {short(route.appId)}
        </p>
      )}
    </nav>
  );
}

function Screen({ route }: { route: Route }) {
  const app = { workspaceId: route.workspaceId, appId: route.appId };
  switch (route.screen) {
    case "data-sources":
      return <DataSources {...app} />;
    case "triggers":
      return <ManageTriggers {...app} />;
    case "failed":
      return <FailedTriggers {...app} />;
    case "params":
      return <ConfigParams {...app} />;
    case "actions":
      return <Actions {...app} />;
    case "data-planes":
      return <DataPlanes />;
    default:
      return <AppPicker />;
  }
}

export function App() {
  const [who, setWho] = useState<Identity | null>(currentIdentity());
  const route = useRoute();
  useEffect(() => onSessionChange(() => setWho(currentIdentity())), []);
  const main = useRef<HTMLElement>(null);
  // Move focus to the new screen's heading so screen readers announce the change.
  useEffect(() => {
    main.current?.querySelector<HTMLElement>("h1")?.focus();
  }, [route.screen, route.appId, who]);
  if (!who) return <SignIn />;
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        Skip to content
      </a>
      <Header who={who} />
      <Nav route={route} />
      <main id="main" ref={main} tabIndex={-1}>
        <Screen route={route} />
      </main>
    </div>
  );
}
