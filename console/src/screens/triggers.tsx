// Manage Triggers: the app's webhooks that have committed bindings (State, Trigger Type, Event Name,
// Location) with the action menu Activate / Deactivate / Get URL, and the Get URL modal with Copy
// and Reset API Key.

import { useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { appRef, PAGE_SIZE, triggers, webhooks } from "../api";
import type { AppProps } from "../routes";
import { TriggerState } from "../gen/webhook/gateway/v1/common_pb.js";
import type { Trigger } from "../gen/webhook/gateway/v1/triggers_pb.js";
import type { GetWebhookUrlResponse } from "../gen/webhook/gateway/v1/webhooks_pb.js";
import { providerName, stateName, triggerTypeName } from "../labels";
import { ActionMenu, CopyButton, Dialog, ErrorNote, GRACE_CHOICES, Loading, Pager, Table, useAction, usePaged } from "../ui";

function locations(t: Trigger): string[] {
  const seen = new Set<string>();
  for (const b of t.bindings) seen.add(`${b.projectId} / ${b.branch}`);
  return [...seen];
}

function UrlDialog({ trigger, onClose }: { trigger: Trigger; onClose: () => void }) {
  const [url, setUrl] = useState<GetWebhookUrlResponse | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [grace, setGrace] = useState(0);
  const [notice, setNotice] = useState("");
  const load = useAction();
  const reset = useAction();
  useEffect(() => {
    void load.run(async () => setUrl(await webhooks.getWebhookUrl({ webhookId: trigger.webhookId })));
  }, [trigger.webhookId]);
  return (
    <Dialog title={`Webhook URL — ${trigger.eventName}`} onClose={onClose} wide>
      <ErrorNote error={load.error} />
      {load.busy && <p role="status">Loading…</p>}
      {url && (
        <>
          <div class="field">
            <label for="webhook-url">Webhook URL</label>
            <div class="url-row">
              <input id="webhook-url" class="mono" readOnly value={url.url} onFocus={(e) => e.currentTarget.select()} />
              <CopyButton text={url.url} />
            </div>
            <span class="hint">
              The API key is the <code>flowxApiKey</code> parameter. Configure this URL in the system that sends
              the events{trigger.state !== TriggerState.ACTIVE ? "; requests get 404 until the trigger is activated" : ""}.
            </span>
          </div>
          {url.previousKeyNotAfter && (
            <p class="notice" data-testid="previous-key">
              The previous API key keeps working until {timestampDate(url.previousKeyNotAfter).toLocaleString()}.
            </p>
          )}
          <p role="status" class="notice">
            {notice}
          </p>
        </>
      )}
      {!confirming ? (
        <div class="buttons">
          <button type="button" class="danger" onClick={() => setConfirming(true)} disabled={!url}>
            Reset API Key
          </button>
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      ) : (
        <form
          class="confirm"
          aria-labelledby="reset-title"
          onSubmit={async (e) => {
            e.preventDefault();
            const fresh = await reset.run(() => webhooks.resetApiKey({ webhookId: trigger.webhookId, gracePeriodSeconds: grace }));
            if (fresh) {
              setUrl(fresh);
              setConfirming(false);
              setNotice(
                grace === 0
                  ? "A new API key was generated. The previous URL no longer works: update it in every system that calls it."
                  : "A new API key was generated. Update the URL in every system that calls it before the grace window ends.",
              );
            }
          }}
        >
          <h3 id="reset-title">Reset the API key?</h3>
          <p>This creates a new URL. Systems still using the old one get 401 Unauthorized once the old key stops working.</p>
          <div class="field">
            <label for="reset-grace">Keep the old key working for</label>
            <select id="reset-grace" value={String(grace)} onChange={(e) => setGrace(Number(e.currentTarget.value))}>
              {GRACE_CHOICES.map(([s, label]) => (
                <option value={String(s)} key={s}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <ErrorNote error={reset.error} />
          <div class="buttons">
            <button type="submit" class="danger" disabled={reset.busy}>
              Reset the key
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

export function ManageTriggers(props: AppProps) {
  const [urlFor, setUrlFor] = useState<Trigger | null>(null);
  const [notice, setNotice] = useState("");
  const change = useAction();
  const list = usePaged(
    async (pageToken) => {
      const res = await triggers.listTriggers({ app: appRef(props.workspaceId, props.appId), pageSize: PAGE_SIZE, pageToken });
      return { items: res.triggers, nextPageToken: res.nextPageToken };
    },
    `${props.workspaceId}/${props.appId}`,
  );
  const setState = async (t: Trigger, activate: boolean) => {
    setNotice("");
    const done = await change.run(() =>
      activate ? triggers.activateTrigger({ webhookId: t.webhookId }) : triggers.deactivateTrigger({ webhookId: t.webhookId }),
    );
    if (done) {
      setNotice(`${t.eventName} is now ${stateName(done.state).toLowerCase()}.`);
      list.reload();
    }
  };
  return (
    <>
      <h1 tabIndex={-1}>Manage Triggers</h1>
      <p class="lead">
        Data sources connected to a committed process version. Activate one to start accepting its requests.
      </p>
      <p role="status" class="notice">
        {notice}
      </p>
      <ErrorNote error={change.error ?? list.error} />
      <Loading on={list.loading} />
      <Table caption="Triggers" head={["State", "Trigger Type", "Event Name", "Location", ""]} count={list.items.length} empty="No triggers: a data source appears here once a committed process version uses it.">
        {list.items.map((t) => (
          <tr key={t.webhookId} data-trigger={t.eventName}>
            <td data-label="State">
              <span class={t.state === TriggerState.ACTIVE ? "badge on" : "badge"} data-testid="state">
                {stateName(t.state)}
              </span>
            </td>
            <td data-label="Trigger Type">
              {t.triggerTypes.map((tt) => triggerTypeName(tt)).join(", ")}
            </td>
            <td data-label="Event Name">
              <strong>{t.eventName}</strong>
              <div class="muted">{providerName(t.provider)}</div>
            </td>
            <td data-label="Location">
              {locations(t).map((l) => (
                <div key={l}>{l}</div>
              ))}
            </td>
            <td data-label="Actions" class="actions">
              <ActionMenu
                label={`Actions for ${t.eventName}`}
                items={[
                  t.state === TriggerState.ACTIVE
                    ? { label: "Deactivate", onSelect: () => void setState(t, false) }
                    : { label: "Activate", onSelect: () => void setState(t, true) },
                  { label: "Get URL", onSelect: () => setUrlFor(t) },
                ]}
              />
            </td>
          </tr>
        ))}
      </Table>
      <Pager label="Triggers" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      {urlFor && <UrlDialog trigger={urlFor} onClose={() => setUrlFor(null)} />}
    </>
  );
}
