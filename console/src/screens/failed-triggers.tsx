// Failed Triggers: requests that reached a webhook and were not published, newest first, with
// filters, a detail view (masked headers, payload) and Replay.

import { useEffect, useState } from "preact/hooks";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";

import { appRef, PAGE_SIZE, triggers, webhooks } from "../api";
import type { AppProps } from "../routes";
import type { FailedTrigger } from "../gen/webhook/gateway/v1/triggers_pb.js";
import type { Webhook } from "../gen/webhook/gateway/v1/webhooks_pb.js";
import { FAILURE_REASONS, failureReason } from "../errors";
import { providerName } from "../labels";
import { Dialog, ErrorNote, Loading, Pager, Table, Time, useAction, usePaged } from "../ui";

interface Filter {
  webhookId: string;
  reason: string;
  after: string;
  before: string;
}

const NO_FILTER: Filter = { webhookId: "", reason: "", after: "", before: "" };

function stamp(local: string) {
  return local ? timestampFromDate(new Date(local)) : undefined;
}

/** The payload as text: pretty-printed when it is JSON. */
function payloadText(ft: FailedTrigger): { text: string; json: boolean } {
  if (ft.payload.case === "payloadText") {
    try {
      return { text: JSON.stringify(JSON.parse(ft.payload.value), null, 2), json: true };
    } catch {
      return { text: ft.payload.value, json: false };
    }
  }
  if (ft.payload.case === "payloadBytes") {
    const bytes = ft.payload.value;
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return { text: `(binary, base64)\n${btoa(bin)}`, json: false };
  }
  return { text: "", json: false };
}

function Detail({ id, onClose, onReplayed }: { id: string; onClose: () => void; onReplayed: () => void }) {
  const [ft, setFt] = useState<FailedTrigger | null>(null);
  const [eventId, setEventId] = useState("");
  const load = useAction();
  const replay = useAction();
  useEffect(() => {
    void load.run(async () => setFt(await triggers.getFailedTrigger({ id })));
  }, [id]);
  const doReplay = async (force: boolean) => {
    setEventId("");
    const res = await replay.run(() => triggers.replayFailedTrigger({ id, force }));
    if (res) {
      setEventId(res.eventId);
      if (res.failedTrigger) setFt({ ...res.failedTrigger, headers: ft?.headers ?? [], payload: ft?.payload ?? res.failedTrigger.payload });
      onReplayed();
    }
  };
  const payload = ft ? payloadText(ft) : null;
  return (
    <Dialog title="Failed trigger" onClose={onClose} wide>
      <ErrorNote error={load.error} />
      {ft && payload && (
        <>
          <dl class="facts">
            <dt>Received</dt>
            <dd>
              <Time ts={ft.receivedAt} />
            </dd>
            <dt>Event name</dt>
            <dd>
              {ft.webhookName} <span class="muted">({providerName(ft.provider)})</span>
            </dd>
            <dt>Reason</dt>
            <dd>
              {failureReason(ft.reasonCode)} <code>{ft.reasonCode}</code>
              {ft.detail && <span class="muted"> — {ft.detail}</span>}
            </dd>
            <dt>Answer</dt>
            <dd>
              HTTP {ft.httpStatus} to {ft.method}
            </dd>
            <dt>Request id</dt>
            <dd class="mono">{ft.requestId}</dd>
            <dt>Data plane</dt>
            <dd>{ft.dataPlaneId}</dd>
            <dt>Replays</dt>
            <dd data-testid="replays">
              {ft.replayCount === 0 ? (
                "never replayed"
              ) : (
                <>
                  {ft.replayCount} (last <Time ts={ft.replayedAt} />, event <code>{ft.replayEventId}</code>)
                </>
              )}
            </dd>
          </dl>
          <h3>Headers</h3>
          <p class="hint">Credentials, cookies and signatures are masked before they are stored.</p>
          <Table caption="Request headers" head={["Header", "Value"]} count={ft.headers.length} empty="No headers.">
            {ft.headers.map((h, i) => (
              <tr key={`${h.name}-${i}`}>
                <th scope="row" data-label="Header">
                  {h.name}
                </th>
                <td data-label="Value" class="mono">
                  {h.values.join(", ")}
                </td>
              </tr>
            ))}
          </Table>
          <h3>Payload</h3>
          <p class="hint">
            {ft.payloadSize.toString()} bytes{payload.json ? ", JSON" : ""}
            {ft.payloadTruncated ? " — truncated: only the first part was kept, so it cannot be replayed" : ""}
          </p>
          {!ft.replayable && !ft.payloadTruncated && (
            <p class="hint" data-testid="not-replayable">
              Not replayable: this request was refused before its sender was verified (API key, signature or
              handshake), so its payload is never published.
            </p>
          )}
          <pre class="payload" tabIndex={0} aria-label="Payload">
            {payload.text}
          </pre>
          <ErrorNote error={replay.error} />
          <p role="status" class="notice" data-testid="replay-result">
            {eventId && (
              <>
                Published as event <code data-testid="event-id">{eventId}</code>.
              </>
            )}
          </p>
          <div class="buttons">
            {ft.replayable &&
              (ft.replayCount === 0 ? (
                <button type="button" class="primary" disabled={replay.busy} onClick={() => doReplay(false)}>
                  Replay
                </button>
              ) : (
                <button type="button" class="primary" disabled={replay.busy} onClick={() => doReplay(true)}>
                  Replay again
                </button>
              ))}
            <button type="button" onClick={onClose}>
              Close
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}

function Filters(props: AppProps & { onApply: (f: Filter) => void }) {
  const [f, setF] = useState<Filter>(NO_FILTER);
  const [hooks, setHooks] = useState<Webhook[]>([]);
  useEffect(() => {
    webhooks
      .listWebhooks({ app: appRef(props.workspaceId, props.appId), pageSize: 500 })
      .then((r) => setHooks(r.webhooks))
      .catch(() => setHooks([]));
  }, [props.workspaceId, props.appId]);
  return (
    <form
      class="panel filters"
      aria-label="Filters"
      onSubmit={(e) => {
        e.preventDefault();
        props.onApply(f);
      }}
    >
      <div class="field">
        <label for="f-webhook">Webhook</label>
        <select id="f-webhook" value={f.webhookId} onChange={(e) => setF({ ...f, webhookId: e.currentTarget.value })}>
          <option value="">All</option>
          {hooks.map((w) => (
            <option value={w.id} key={w.id}>
              {w.name}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="f-reason">Reason</label>
        <select id="f-reason" value={f.reason} onChange={(e) => setF({ ...f, reason: e.currentTarget.value })}>
          <option value="">All</option>
          {Object.entries(FAILURE_REASONS).map(([code, words]) => (
            <option value={code} key={code}>
              {words}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="f-after">Received from</label>
        <input id="f-after" type="datetime-local" value={f.after} onInput={(e) => setF({ ...f, after: e.currentTarget.value })} />
      </div>
      <div class="field">
        <label for="f-before">Received before</label>
        <input id="f-before" type="datetime-local" value={f.before} onInput={(e) => setF({ ...f, before: e.currentTarget.value })} />
      </div>
      <div class="buttons">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          onClick={() => {
            setF(NO_FILTER);
            props.onApply(NO_FILTER);
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

export function FailedTriggers(props: AppProps) {
  const [filter, setFilter] = useState<Filter>(NO_FILTER);
  const [openId, setOpenId] = useState("");
  const list = usePaged(
    async (pageToken) => {
      const res = await triggers.listFailedTriggers({
        app: appRef(props.workspaceId, props.appId),
        webhookId: filter.webhookId,
        reasonCodes: filter.reason ? [filter.reason] : [],
        receivedAfter: stamp(filter.after),
        receivedBefore: stamp(filter.before),
        pageSize: PAGE_SIZE,
        pageToken,
      });
      return { items: res.failedTriggers, nextPageToken: res.nextPageToken };
    },
    `${props.workspaceId}/${props.appId}/${JSON.stringify(filter)}`,
  );
  return (
    <>
      <h1 tabIndex={-1}>Failed Triggers</h1>
      <p class="lead">Requests that reached a data source and were not published, newest first.</p>
      <Filters {...props} onApply={setFilter} />
      <div class="toolbar">
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </div>
      <ErrorNote error={list.error} />
      <Loading on={list.loading} />
      <Table caption="Failed triggers" head={["Received", "Event Name", "Reason", "Status", "Replayed", ""]} count={list.items.length} empty="No failed triggers match.">
        {list.items.map((ft) => (
          <tr key={ft.id} data-failed={ft.reasonCode}>
            <td data-label="Received">
              <Time ts={ft.receivedAt} />
            </td>
            <td data-label="Event Name">{ft.webhookName}</td>
            <td data-label="Reason">
              {failureReason(ft.reasonCode)}
              <div class="muted mono">{ft.reasonCode}</div>
            </td>
            <td data-label="Status">{ft.httpStatus}</td>
            <td data-label="Replayed">{ft.replayCount > 0 ? `${ft.replayCount}×` : "—"}</td>
            <td data-label="Actions" class="actions">
              <button type="button" onClick={() => setOpenId(ft.id)} aria-label={`Details of the ${ft.reasonCode} request to ${ft.webhookName}`}>
                Details
              </button>
            </td>
          </tr>
        ))}
      </Table>
      <Pager label="Failed triggers" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      {openId && <Detail id={openId} onClose={() => setOpenId("")} onReplayed={list.reload} />}
    </>
  );
}
