// Config Params: per-app values that provider secrets reference as ${configParam.NAME}. SECRET
// values are write-only: the API never returns them, and the form's field is masked.

import { useState } from "preact/hooks";

import { appRef, PAGE_SIZE, params } from "../api";
import type { AppProps } from "../routes";
import { ConfigParamKind, type ConfigParam } from "../gen/webhook/gateway/v1/config_params_pb.js";
import { Dialog, ErrorNote, Loading, Pager, Table, Time, useAction, usePaged } from "../ui";

function paramNameProblem(name: string): string {
  if (name === "") return "";
  if (name.length > 100) return "At most 100 characters.";
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) return "Letters, digits, _ - and ., starting with a letter or _.";
  return "";
}

function SetForm(props: AppProps & { onDone: (name: string) => void }) {
  const [name, setName] = useState("");
  const [kind, setKind] = useState<ConfigParamKind>(ConfigParamKind.SECRET);
  const [value, setValue] = useState("");
  const { busy, error, run } = useAction();
  const problem = paramNameProblem(name);
  const valueProps = {
    autocomplete: "off",
    spellcheck: false,
    value,
    onInput: (e: Event) => setValue((e.currentTarget as HTMLInputElement).value),
  };
  return (
    <form
      class="panel"
      aria-labelledby="param-title"
      onSubmit={async (e) => {
        e.preventDefault();
        const ok = await run(() => params.setConfigParam({ app: appRef(props.workspaceId, props.appId), name, kind, value }));
        if (ok) {
          setName("");
          setValue("");
          props.onDone(ok.name);
        }
      }}
    >
      <h2 id="param-title">Set a config param</h2>
      <div class="row">
        <div class="field">
          <label for="param-name">Name</label>
          <input
            id="param-name"
            value={name}
            required
            spellcheck={false}
            aria-invalid={problem !== ""}
            aria-describedby="param-name-rule"
            onInput={(e) => setName(e.currentTarget.value)}
          />
          <span id="param-name-rule" class={problem ? "hint bad" : "hint"} aria-live="polite">
            {problem || "Setting an existing name replaces its value."}
          </span>
        </div>
        <div class="field">
          <label for="param-kind">Kind</label>
          <select id="param-kind" value={String(kind)} onChange={(e) => setKind(Number(e.currentTarget.value) as ConfigParamKind)}>
            <option value={String(ConfigParamKind.SECRET)}>Secret (write-only, encrypted)</option>
            <option value={String(ConfigParamKind.VALUE)}>Value (readable)</option>
          </select>
        </div>
      </div>
      <div class="field">
        <label for="param-value">Value</label>
        {kind === ConfigParamKind.SECRET ? (
          <input id="param-value" type="password" {...valueProps} />
        ) : (
          <input id="param-value" type="text" {...valueProps} />
        )}
      </div>
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={busy}>
        Save param
      </button>
    </form>
  );
}

function DeleteParam(props: AppProps & { param: ConfigParam; onClose: (changed: boolean) => void }) {
  const { busy, error, run } = useAction();
  return (
    <Dialog title={`Delete ${props.param.name}?`} onClose={() => props.onClose(false)}>
      <p>Provider secrets that reference it must be changed first.</p>
      <ErrorNote error={error} />
      <div class="buttons">
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={async () => {
            const ok = await run(() => params.deleteConfigParam({ app: appRef(props.workspaceId, props.appId), name: props.param.name }));
            if (ok) props.onClose(true);
          }}
        >
          Delete
        </button>
        <button type="button" onClick={() => props.onClose(false)}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

export function ConfigParams(props: AppProps) {
  const [notice, setNotice] = useState("");
  const [deleting, setDeleting] = useState<ConfigParam | null>(null);
  const list = usePaged(
    async (pageToken) => {
      const res = await params.listConfigParams({ app: appRef(props.workspaceId, props.appId), pageSize: PAGE_SIZE, pageToken });
      return { items: res.params, nextPageToken: res.nextPageToken };
    },
    `${props.workspaceId}/${props.appId}`,
  );
  return (
    <>
      <h1 tabIndex={-1}>Config Params</h1>
      <p class="lead">
        Values provider secrets can reference as <code>{"${configParam.NAME}"}</code>. Changing one updates every
        secret that uses it.
      </p>
      <p role="status" class="notice">
        {notice}
      </p>
      <ErrorNote error={list.error} />
      <Loading on={list.loading} />
      <Table caption="Config params" head={["Name", "Kind", "Value", "Updated", ""]} count={list.items.length} empty="No config params yet.">
        {list.items.map((p) => (
          <tr key={p.name} data-param={p.name}>
            <td data-label="Name" class="mono">
              {p.name}
            </td>
            <td data-label="Kind">{p.kind === ConfigParamKind.SECRET ? "Secret" : "Value"}</td>
            <td data-label="Value" class="mono">
              {p.kind === ConfigParamKind.SECRET ? <span class="muted">hidden (write-only)</span> : p.value}
            </td>
            <td data-label="Updated">
              <Time ts={p.updatedAt} />
            </td>
            <td data-label="Actions" class="actions">
              <button type="button" class="danger" aria-label={`Delete ${p.name}`} onClick={() => setDeleting(p)}>
                Delete
              </button>
            </td>
          </tr>
        ))}
      </Table>
      <Pager label="Config params" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
      <SetForm
        {...props}
        onDone={(name) => {
          setNotice(`Saved ${name}.`);
          list.reload();
        }}
      />
      {deleting && (
        <DeleteParam
          {...props}
          param={deleting}
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
