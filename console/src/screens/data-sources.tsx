// Data Sources: the app's incoming webhooks — create, edit, rotate the provider secret, delete.

import { useState } from "preact/hooks";

import { appRef, PAGE_SIZE, webhooks } from "../api";
import type { AppProps } from "../routes";
import { Provider, TriggerState } from "../gen/webhook/gateway/v1/common_pb.js";
import type { Webhook } from "../gen/webhook/gateway/v1/webhooks_pb.js";
import { nameProblem, providerName, PROVIDERS, secretFields, stateName, type SecretField } from "../labels";
import { Dialog, ErrorNote, GRACE_CHOICES, Loading, Pager, Table, Time, useAction, usePaged } from "../ui";

type Secrets = Partial<Record<SecretField["key"], string>>;

function SecretInputs(props: { provider: Provider; prefix: string; values: Secrets; onChange: (v: Secrets) => void }) {
  const fields = secretFields(props.provider);
  if (fields.length === 0) {
    return <p class="hint">Generic webhooks have no secret: the API key in the URL (and HTTPS) authenticates.</p>;
  }
  return (
    <fieldset>
      <legend>Provider secret</legend>
      {fields.map((f) => (
        <div class="field" key={f.key}>
          <label for={`${props.prefix}-${f.key}`}>{f.label}</label>
          <input
            id={`${props.prefix}-${f.key}`}
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={props.values[f.key] ?? ""}
            aria-describedby={`${props.prefix}-${f.key}-hint`}
            onInput={(e) => props.onChange({ ...props.values, [f.key]: e.currentTarget.value })}
          />
          <span id={`${props.prefix}-${f.key}-hint`} class="hint">
            {f.hint} A <code>{"${configParam.NAME}"}</code> placeholder takes the value of a config param.
          </span>
        </div>
      ))}
    </fieldset>
  );
}

function NameField(props: { id: string; value: string; onInput: (v: string) => void }) {
  const problem = props.value === "" ? "" : nameProblem(props.value);
  return (
    <div class="field">
      <label for={props.id}>Name</label>
      <input
        id={props.id}
        value={props.value}
        required
        maxLength={60}
        spellcheck={false}
        aria-invalid={problem !== ""}
        aria-describedby={`${props.id}-rule`}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
      <span id={`${props.id}-rule`} class={problem ? "hint bad" : "hint"} aria-live="polite">
        {problem || "3–50 characters: letters, digits and [ ] ( ) . _ -, unique in the app."}
      </span>
    </div>
  );
}

/** Rate limit, burst and replay window as the form edits them (text, so empty means none). */
interface Limits {
  rate: string;
  burst: string;
  replay: string;
}

function limitsOf(w?: Webhook): Limits {
  const text = (n: number | undefined) => (n ? String(n) : "");
  return { rate: text(w?.rateLimitPerSecond), burst: text(w?.rateLimitBurst), replay: text(w?.replayWindowSeconds) };
}

/** The numbers of `l`, empty fields as 0 (none); `null` when one is not a number. */
function parseLimits(l: Limits): { rate: number; burst: number; replay: number } | null {
  const num = (t: string) => (t.trim() === "" ? 0 : Number(t));
  const v = { rate: num(l.rate), burst: num(l.burst), replay: num(l.replay) };
  return [v.rate, v.burst, v.replay].every((n) => Number.isFinite(n) && n >= 0) ? v : null;
}

function LimitFields(props: { prefix: string; value: Limits; onChange: (l: Limits) => void }) {
  const { prefix, value, onChange } = props;
  return (
    <fieldset class="field">
      <legend>Protection (optional)</legend>
      <label for={`${prefix}-rate`}>Rate limit (requests per second, for the whole fleet)</label>
      <input
        id={`${prefix}-rate`}
        inputMode="decimal"
        value={value.rate}
        aria-describedby={`${prefix}-rate-hint`}
        onInput={(e) => onChange({ ...value, rate: e.currentTarget.value })}
      />
      <span id={`${prefix}-rate-hint`} class="hint">
        Empty = no limit. Callers over it get 429 with Retry-After; only callers with the API key count.
      </span>
      <label for={`${prefix}-burst`}>Burst</label>
      <input
        id={`${prefix}-burst`}
        inputMode="numeric"
        value={value.burst}
        onInput={(e) => onChange({ ...value, burst: e.currentTarget.value })}
      />
      <label for={`${prefix}-replay`}>Replay window (seconds)</label>
      <input
        id={`${prefix}-replay`}
        inputMode="numeric"
        value={value.replay}
        aria-describedby={`${prefix}-replay-hint`}
        onInput={(e) => onChange({ ...value, replay: e.currentTarget.value })}
      />
      <span id={`${prefix}-replay-hint`} class="hint">
        A delivery repeated within it is answered with the original event id and not published again (up to 86400).
      </span>
    </fieldset>
  );
}

const BAD_LIMITS = { text: "Rate limit, burst and replay window must be numbers (or empty).", reason: "LIMITS_FORM", metadata: {} };

function CreateForm(props: AppProps & { onDone: () => void; onCancel: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [provider, setProvider] = useState<Provider>(Provider.GENERIC);
  const [secrets, setSecrets] = useState<Secrets>({});
  const [path, setPath] = useState("");
  const [raw, setRaw] = useState(false);
  const [limits, setLimits] = useState<Limits>(limitsOf());
  const { busy, error, setError, run } = useAction();
  return (
    <form
      class="panel"
      aria-labelledby="create-title"
      onSubmit={async (e) => {
        e.preventDefault();
        if (nameProblem(name)) {
          setError({ text: `The name is not valid: ${nameProblem(name)}`, reason: "NAME_RULE", metadata: {} });
          return;
        }
        const parsed = parseLimits(limits);
        if (!parsed) {
          setError(BAD_LIMITS);
          return;
        }
        const hasSecret = secretFields(provider).some((f) => (secrets[f.key] ?? "") !== "");
        const done = await run(() =>
          webhooks.createWebhook({
            app: appRef(props.workspaceId, props.appId),
            name,
            description,
            provider,
            correlationKeyPath: path,
            includeRawBody: raw,
            providerSecret: hasSecret ? { ...secrets } : undefined,
            rateLimitPerSecond: parsed.rate,
            rateLimitBurst: parsed.burst,
            replayWindowSeconds: parsed.replay,
          }),
        );
        if (done) props.onDone();
      }}
    >
      <h2 id="create-title">New incoming webhook</h2>
      <NameField id="new-name" value={name} onInput={setName} />
      <div class="field">
        <label for="new-description">Description (optional)</label>
        <input id="new-description" value={description} maxLength={500} onInput={(e) => setDescription(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="new-provider">Provider</label>
        <select
          id="new-provider"
          value={String(provider)}
          aria-describedby="new-provider-hint"
          onChange={(e) => {
            setProvider(Number(e.currentTarget.value) as Provider);
            setSecrets({});
          }}
        >
          {PROVIDERS.map(([p, label]) => (
            <option value={String(p)} key={p}>
              {label}
            </option>
          ))}
        </select>
        <span id="new-provider-hint" class="hint">
          Fixed once created: to switch provider, create a new data source.
        </span>
      </div>
      <SecretInputs provider={provider} prefix="new" values={secrets} onChange={setSecrets} />
      <div class="field">
        <label for="new-path">Correlation key path (optional)</label>
        <input id="new-path" value={path} spellcheck={false} aria-describedby="new-path-hint" onInput={(e) => setPath(e.currentTarget.value)} />
        <span id="new-path-hint" class="hint">
          Where resume requests carry the correlation value, e.g. <code>entry[0].changes[0].value.id</code>.
        </span>
      </div>
      <label class="check">
        <input type="checkbox" checked={raw} onChange={(e) => setRaw(e.currentTarget.checked)} /> Also carry the raw body
        (base64) in the Kafka event
      </label>
      <LimitFields prefix="new" value={limits} onChange={setLimits} />
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled={busy}>
          Create
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function EditDialog({ webhook, onClose }: { webhook: Webhook; onClose: (changed: boolean) => void }) {
  const [name, setName] = useState(webhook.name);
  const [description, setDescription] = useState(webhook.description);
  const [path, setPath] = useState(webhook.correlationKeyPath);
  const [raw, setRaw] = useState(webhook.includeRawBody);
  const [limits, setLimits] = useState<Limits>(limitsOf(webhook));
  const { busy, error, setError, run } = useAction();
  return (
    <Dialog title={`Edit ${webhook.name}`} onClose={() => onClose(false)}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const parsed = parseLimits(limits);
          const before = parseLimits(limitsOf(webhook));
          if (!parsed || !before) {
            setError(BAD_LIMITS);
            return;
          }
          const ok = await run(() =>
            // Only what changed is sent (absent fields stay as they are).
            webhooks.updateWebhook({
              id: webhook.id,
              name: name !== webhook.name ? name : undefined,
              description: description !== webhook.description ? description : undefined,
              correlationKeyPath: path !== webhook.correlationKeyPath ? path : undefined,
              includeRawBody: raw !== webhook.includeRawBody ? raw : undefined,
              rateLimitPerSecond: parsed.rate !== before.rate ? parsed.rate : undefined,
              // A burst is only meaningful with a rate; clearing the rate clears it too.
              rateLimitBurst: parsed.rate > 0 && parsed.burst !== before.burst ? parsed.burst : undefined,
              replayWindowSeconds: parsed.replay !== before.replay ? parsed.replay : undefined,
            }),
          );
          if (ok) onClose(true);
        }}
      >
        <NameField id="edit-name" value={name} onInput={setName} />
        <div class="field">
          <label for="edit-description">Description</label>
          <input id="edit-description" value={description} maxLength={500} onInput={(e) => setDescription(e.currentTarget.value)} />
        </div>
        <p class="hint">Provider: {providerName(webhook.provider)} (fixed).</p>
        <div class="field">
          <label for="edit-path">Correlation key path</label>
          <input id="edit-path" value={path} spellcheck={false} onInput={(e) => setPath(e.currentTarget.value)} />
        </div>
        <label class="check">
          <input type="checkbox" checked={raw} onChange={(e) => setRaw(e.currentTarget.checked)} /> Carry the raw body
        </label>
        <LimitFields prefix="edit" value={limits} onChange={setLimits} />
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
          <button type="button" onClick={() => onClose(false)}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function RotateDialog({ webhook, onClose }: { webhook: Webhook; onClose: (changed: boolean) => void }) {
  const [secrets, setSecrets] = useState<Secrets>({});
  const [grace, setGrace] = useState(0);
  const { busy, error, run } = useAction();
  return (
    <Dialog title={`${webhook.hasProviderSecret ? "Rotate" : "Set"} the secret of ${webhook.name}`} onClose={() => onClose(false)}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const ok = await run(() =>
            webhooks.setProviderSecret({ webhookId: webhook.id, ...secrets, previousSecretGraceSeconds: grace }),
          );
          if (ok) onClose(true);
        }}
      >
        <SecretInputs provider={webhook.provider} prefix="rotate" values={secrets} onChange={setSecrets} />
        {webhook.hasProviderSecret && (
          <div class="field">
            <label for="rotate-grace">Keep the previous secret valid for</label>
            <select id="rotate-grace" value={String(grace)} onChange={(e) => setGrace(Number(e.currentTarget.value))}>
              {GRACE_CHOICES.map(([s, label]) => (
                <option value={String(s)} key={s}>
                  {label}
                </option>
              ))}
            </select>
          </div>
        )}
        <ErrorNote error={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            Save secret
          </button>
          <button type="button" onClick={() => onClose(false)}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function DeleteDialog({ webhook, onClose }: { webhook: Webhook; onClose: (changed: boolean) => void }) {
  const { busy, error, run } = useAction();
  return (
    <Dialog title={`Delete ${webhook.name}?`} onClose={() => onClose(false)}>
      <p>
        This deletes the data source and its trigger bindings. Systems that still call its URL will get errors:
        remove the URL from them first.
      </p>
      <ErrorNote error={error} />
      <div class="buttons">
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={async () => {
            const ok = await run(() => webhooks.deleteWebhook({ id: webhook.id }));
            if (ok) onClose(true);
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

type Open = { kind: "edit" | "rotate" | "delete"; webhook: Webhook } | null;

export function DataSources(props: AppProps) {
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<Open>(null);
  const [notice, setNotice] = useState("");
  const list = usePaged(
    async (pageToken) => {
      const res = await webhooks.listWebhooks({ app: appRef(props.workspaceId, props.appId), pageSize: PAGE_SIZE, pageToken });
      return { items: res.webhooks, nextPageToken: res.nextPageToken };
    },
    `${props.workspaceId}/${props.appId}`,
  );
  const closed = (message: string) => (changed: boolean) => {
    setOpen(null);
    if (changed) {
      setNotice(message);
      list.reload();
    }
  };
  return (
    <>
      <h1 tabIndex={-1}>Data Sources</h1>
      <p class="lead">Incoming webhooks of this app. Connect one to a process node and commit, then activate it in Manage Triggers.</p>
      <div class="toolbar">
        {!creating && (
          <button type="button" class="primary" onClick={() => (setCreating(true), setNotice(""))}>
            New data source
          </button>
        )}
        <span role="status" class="notice">
          {notice}
        </span>
      </div>
      {creating && (
        <CreateForm
          {...props}
          onCancel={() => setCreating(false)}
          onDone={() => {
            setCreating(false);
            setNotice("Data source created.");
            list.reload();
          }}
        />
      )}
      <ErrorNote error={list.error} />
      <Loading on={list.loading} />
      <Table caption="Data sources" head={["Name", "Provider", "State", "Bindings", "Secret", "Updated", ""]} count={list.items.length} empty="No data sources yet.">
        {list.items.map((w) => (
          <tr key={w.id} data-webhook={w.name}>
            <td data-label="Name">
              <strong>{w.name}</strong>
              {w.description && <div class="muted">{w.description}</div>}
            </td>
            <td data-label="Provider">{providerName(w.provider)}</td>
            <td data-label="State">
              <span class={w.state === TriggerState.ACTIVE ? "badge on" : "badge"}>{stateName(w.state)}</span>
            </td>
            <td data-label="Bindings">{w.bindingCount}</td>
            <td data-label="Secret">
              {w.provider === Provider.GENERIC ? "—" : w.hasProviderSecret ? "Set" : "Not set"}
              {w.secretParamRefs.length > 0 && <div class="muted">from {w.secretParamRefs.join(", ")}</div>}
            </td>
            <td data-label="Updated">
              <Time ts={w.updatedAt} />
            </td>
            <td data-label="Actions" class="actions">
              <button type="button" onClick={() => setOpen({ kind: "edit", webhook: w })} aria-label={`Edit ${w.name}`}>
                Edit
              </button>
              {w.provider !== Provider.GENERIC && (
                <button type="button" onClick={() => setOpen({ kind: "rotate", webhook: w })} aria-label={`Rotate the secret of ${w.name}`}>
                  {w.hasProviderSecret ? "Rotate secret" : "Set secret"}
                </button>
              )}
              <button type="button" class="danger" onClick={() => setOpen({ kind: "delete", webhook: w })} aria-label={`Delete ${w.name}`}>
                Delete
              </button>
            </td>
          </tr>
        ))}
      </Table>
      <Pager label="Data sources" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      {open?.kind === "edit" && <EditDialog webhook={open.webhook} onClose={closed("Data source saved.")} />}
      {open?.kind === "rotate" && <RotateDialog webhook={open.webhook} onClose={closed("Secret saved.")} />}
      {open?.kind === "delete" && <DeleteDialog webhook={open.webhook} onClose={closed("Data source deleted.")} />}
    </>
  );
}
