// The app picker: the apps in the token's scope (ListApps) and a way to open any app by id.

import { useState } from "preact/hooks";

import { apps, currentIdentity, PAGE_SIZE } from "../api";
import { appHref } from "../routes";
import { ErrorNote, Loading, Pager, Table, usePaged } from "../ui";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function OpenById() {
  const who = currentIdentity();
  const [ws, setWs] = useState(who?.workspaceId ?? "");
  const [app, setApp] = useState("");
  const [tried, setTried] = useState(false);
  const wsBad = !UUID.test(ws.trim());
  const appBad = !UUID.test(app.trim());
  return (
    <form
      class="panel"
      aria-labelledby="open-title"
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        if (!wsBad && !appBad) window.location.hash = appHref(ws.trim(), app.trim());
      }}
    >
      <h2 id="open-title">Open an app by id</h2>
      <div class="row">
        <div class="field">
          <label for="open-ws">Workspace id</label>
          <input
            id="open-ws"
            value={ws}
            readOnly={!!who?.workspaceId}
            aria-invalid={tried && wsBad}
            aria-describedby="open-ws-msg"
            onInput={(e) => setWs(e.currentTarget.value)}
            spellcheck={false}
          />
          <span id="open-ws-msg" class="hint">
            {tried && wsBad ? "Enter a UUID." : who?.workspaceId ? "Your token's workspace." : ""}
          </span>
        </div>
        <div class="field">
          <label for="open-app">App id</label>
          <input
            id="open-app"
            value={app}
            aria-invalid={tried && appBad}
            aria-describedby="open-app-msg"
            onInput={(e) => setApp(e.currentTarget.value)}
            spellcheck={false}
          />
          <span id="open-app-msg" class="hint">
            {tried && appBad ? "Enter a UUID." : "A new app appears in the list once it holds a data source or param."}
          </span>
        </div>
      </div>
      <button type="submit">Open</button>
    </form>
  );
}

export function AppPicker() {
  const list = usePaged(
    async (pageToken) => {
      const res = await apps.listApps({ pageSize: PAGE_SIZE, pageToken });
      return { items: res.apps, nextPageToken: res.nextPageToken };
    },
    "apps",
  );
  return (
    <>
      <h1 tabIndex={-1}>Apps</h1>
      <p class="lead">The apps in your token's scope that hold data sources or config params.</p>
      <ErrorNote error={list.error} />
      <Loading on={list.loading} />
      <Table caption="Apps" head={["App", "Workspace", "Data sources", "Active", "Config params"]} count={list.items.length} empty="No apps yet: open one by id below to create its first data source.">
        {list.items.map((a) => (
          <tr key={`${a.app?.workspaceId}/${a.app?.appId}`}>
            <td data-label="App">
              <a href={appHref(a.app?.workspaceId ?? "", a.app?.appId ?? "")} class="mono">
                {a.app?.appId}
              </a>
            </td>
            <td data-label="Workspace" class="mono">
              {a.app?.workspaceId}
            </td>
            <td data-label="Data sources">{a.webhookCount}</td>
            <td data-label="Active">{a.activeWebhookCount}</td>
            <td data-label="Config params">{a.configParamCount}</td>
          </tr>
        ))}
      </Table>
      <Pager label="Apps" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      <OpenById />
    </>
  );
}
