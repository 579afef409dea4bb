// Actions and HMAC keys: the action servers the platform calls for this app, and the keys that sign
// those calls. A new key's value is shown once, with Copy; the API never returns it again.

import { useState } from "preact/hooks";
import type { JsonObject } from "@bufbuild/protobuf";

import { actions, appRef, PAGE_SIZE } from "../api";
import type { AppProps } from "../routes";
import type { Action, CreateHmacKeyResponse, HmacKey } from "../gen/webhook/gateway/v1/actions_pb.js";
import { CopyButton, Dialog, ErrorNote, Loading, Pager, Table, Time, useAction, usePaged } from "../ui";

function actionNameProblem(name: string): string {
  if (name === "") return "";
  if (name.length > 100) return "At most 100 characters.";
  if (!/^[a-z0-9_]+$/.test(name)) return "Only a-z, 0-9 and _.";
  return "";
}

/** Parses the schema field: empty = any parameters; otherwise a JSON object. */
function parseSchema(text: string): { schema?: JsonObject; problem: string } {
  if (text.trim() === "") return { problem: "" };
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== "object" || Array.isArray(v)) return { problem: "The schema must be a JSON object." };
    return { schema: v as JsonObject, problem: "" };
  } catch (e) {
    return { problem: `Not valid JSON: ${(e as Error).message}` };
  }
}

function RegisterForm(props: AppProps & { onDone: (name: string) => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [url, setUrl] = useState("https://");
  const [schema, setSchema] = useState("");
  const { busy, error, setError, run } = useAction();
  const nameProblem = actionNameProblem(name);
  const parsed = parseSchema(schema);
  // An answer describes the values that were sent: editing any of them clears it.
  const edit = (set: (v: string) => void, value: string) => {
    set(value);
    setError(null);
  };
  return (
    <form
      class="panel"
      aria-labelledby="action-title"
      onSubmit={async (e) => {
        e.preventDefault();
        if (parsed.problem) {
          setError({ text: parsed.problem, reason: "SCHEMA_JSON", metadata: {} });
          return;
        }
        const ok = await run(() =>
          actions.registerAction({
            app: appRef(props.workspaceId, props.appId),
            name,
            description,
            webhookUrl: url,
            jsonSchema: parsed.schema,
          }),
        );
        if (ok) {
          setName("");
          setDescription("");
          setSchema("");
          props.onDone(ok.name);
        }
      }}
    >
      <h2 id="action-title">Register an action</h2>
      <p class="hint">
        The control plane sends a signed test request to the URL first; nothing is saved unless it answers 2xx
        within 10 seconds. The app needs an active HMAC key.
      </p>
      <div class="field">
        <label for="action-name">Name</label>
        <input
          id="action-name"
          value={name}
          required
          spellcheck={false}
          aria-invalid={nameProblem !== ""}
          aria-describedby="action-name-rule"
          onInput={(e) => edit(setName, e.currentTarget.value)}
        />
        <span id="action-name-rule" class={nameProblem ? "hint bad" : "hint"} aria-live="polite">
          {nameProblem || "1–100 characters of a-z, 0-9 and _; fixed once registered."}
        </span>
      </div>
      <div class="field">
        <label for="action-description">Description</label>
        <input id="action-description" value={description} required maxLength={500} onInput={(e) => edit(setDescription, e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="action-url">Action server URL</label>
        <input id="action-url" type="url" value={url} required spellcheck={false} onInput={(e) => edit(setUrl, e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="action-schema">Parameter JSON Schema (optional)</label>
        <textarea
          id="action-schema"
          rows={5}
          spellcheck={false}
          value={schema}
          aria-invalid={parsed.problem !== ""}
          aria-describedby="action-schema-hint"
          onInput={(e) => edit(setSchema, e.currentTarget.value)}
        />
        <span id="action-schema-hint" class={parsed.problem ? "hint bad" : "hint"} aria-live="polite">
          {parsed.problem || "Empty accepts any parameters."}
        </span>
      </div>
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={busy}>
        Validate and register
      </button>
    </form>
  );
}

function DeleteAction({ action, onClose }: { action: Action; onClose: (changed: boolean) => void }) {
  const { busy, error, run } = useAction();
  return (
    <Dialog title={`Delete ${action.name}?`} onClose={() => onClose(false)}>
      <p>Calls that name it afterwards fail with UNKNOWN_ACTION.</p>
      <ErrorNote error={error} />
      <div class="buttons">
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={async () => {
            if (await run(() => actions.deleteAction({ id: action.id }))) onClose(true);
          }}
        >
          Delete
        </button>
        <button type="button" onClick={() => onClose(false)}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

/** The new key's value, shown this once. */
function NewKey({ created, onClose }: { created: CreateHmacKeyResponse; onClose: () => void }) {
  return (
    <Dialog title="New HMAC key" onClose={onClose}>
      <p>
        Copy the value now: it is shown only this once. Receivers use its text as the HMAC-SHA256 key; calls name
        the key in <code>X-Signature-Key-Id</code>.
      </p>
      <div class="field">
        <label for="hmac-value">Key value</label>
        <div class="url-row">
          <input id="hmac-value" class="mono" readOnly value={created.value} onFocus={(e) => e.currentTarget.select()} />
          <CopyButton text={created.value} />
        </div>
      </div>
      <p class="hint">
        Key id <code>{created.key?.id}</code>
      </p>
      <div class="buttons">
        <button type="button" class="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}

function HmacKeys(props: AppProps) {
  const [label, setLabel] = useState("");
  const [created, setCreated] = useState<CreateHmacKeyResponse | null>(null);
  const [revoked, setRevoked] = useState(false);
  const change = useAction();
  const list = usePaged(
    async (pageToken) => {
      const res = await actions.listHmacKeys({
        app: appRef(props.workspaceId, props.appId),
        pageSize: PAGE_SIZE,
        pageToken,
        includeRevoked: revoked,
      });
      return { items: res.keys, nextPageToken: res.nextPageToken };
    },
    `${props.workspaceId}/${props.appId}/${revoked}`,
  );
  const revoke = async (k: HmacKey) => {
    if (await change.run(() => actions.revokeHmacKey({ id: k.id }))) list.reload();
  };
  return (
    <section aria-labelledby="hmac-title">
      <h2 id="hmac-title">HMAC keys</h2>
      <form
        class="toolbar"
        onSubmit={async (e) => {
          e.preventDefault();
          const res = await change.run(() => actions.createHmacKey({ app: appRef(props.workspaceId, props.appId), label }));
          if (res) {
            setLabel("");
            setCreated(res);
            list.reload();
          }
        }}
      >
        <label for="hmac-label" class="sr-only">
          Label of the new key
        </label>
        <input id="hmac-label" placeholder="Label (optional)" maxLength={100} value={label} onInput={(e) => setLabel(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={change.busy}>
          Create HMAC key
        </button>
        <label class="check">
          <input type="checkbox" checked={revoked} onChange={(e) => setRevoked(e.currentTarget.checked)} /> Show revoked keys
        </label>
      </form>
      <ErrorNote error={change.error ?? list.error} />
      <Loading on={list.loading} />
      <Table caption="HMAC keys" head={["Key id", "Label", "Created", "State", ""]} count={list.items.length} empty="No HMAC keys: create one before registering actions.">
        {list.items.map((k) => (
          <tr key={k.id} data-hmac={k.label}>
            <td data-label="Key id" class="mono">
              {k.id}
            </td>
            <td data-label="Label">{k.label || <span class="muted">—</span>}</td>
            <td data-label="Created">
              <Time ts={k.createdAt} />
            </td>
            <td data-label="State">
              {k.revokedAt ? (
                <>
                  Revoked <Time ts={k.revokedAt} />
                </>
              ) : (
                <span class="badge on">Active</span>
              )}
            </td>
            <td data-label="Actions" class="actions">
              {!k.revokedAt && (
                <button type="button" class="danger" aria-label={`Revoke key ${k.label || k.id}`} onClick={() => revoke(k)}>
                  Revoke
                </button>
              )}
            </td>
          </tr>
        ))}
      </Table>
      <Pager label="HMAC keys" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      {created && <NewKey created={created} onClose={() => setCreated(null)} />}
    </section>
  );
}

export function Actions(props: AppProps) {
  const [notice, setNotice] = useState("");
  const [deleting, setDeleting] = useState<Action | null>(null);
  const list = usePaged(
    async (pageToken) => {
      const res = await actions.listActions({ app: appRef(props.workspaceId, props.appId), pageSize: PAGE_SIZE, pageToken });
      return { items: res.actions, nextPageToken: res.nextPageToken };
    },
    `${props.workspaceId}/${props.appId}`,
  );
  return (
    <>
      <h1 tabIndex={-1}>Actions</h1>
      <p class="lead">Action servers the platform calls for this app, signed with the app's newest HMAC key.</p>
      <p role="status" class="notice">
        {notice}
      </p>
      <ErrorNote error={list.error} />
      <Loading on={list.loading} />
      <Table caption="Actions" head={["Name", "Description", "URL", "Validated", ""]} count={list.items.length} empty="No actions yet.">
        {list.items.map((a) => (
          <tr key={a.id} data-action={a.name}>
            <td data-label="Name" class="mono">
              {a.name}
            </td>
            <td data-label="Description">{a.description}</td>
            <td data-label="URL" class="mono">
              {a.webhookUrl}
            </td>
            <td data-label="Validated">
              <Time ts={a.validatedAt} />
            </td>
            <td data-label="Actions" class="actions">
              <button type="button" class="danger" aria-label={`Delete ${a.name}`} onClick={() => setDeleting(a)}>
                Delete
              </button>
            </td>
          </tr>
        ))}
      </Table>
      <Pager label="Actions" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      <RegisterForm
        {...props}
        onDone={(name) => {
          setNotice(`Registered ${name}.`);
          list.reload();
        }}
      />
      <HmacKeys {...props} />
      {deleting && (
        <DeleteAction
          action={deleting}
          onClose={(changed) => {
            setDeleting(null);
            if (changed) {
              setNotice(`Deleted ${deleting.name}.`);
              list.reload();
            }
          }}
        />
      )}
    </>
  );
}
