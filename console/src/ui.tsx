// Small building blocks every screen uses: error notes, paged lists, modal dialogs, action menus,
// copy buttons. Native elements first (<dialog>, <button>, <label>) so keyboard and screen readers
// work without extra code.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

import { describe, isSessionOver, type Shown } from "./errors";
import { signOut } from "./api";

/** An API error in words. `role="alert"` so screen readers announce it. */
export function ErrorNote({ error }: { error: Shown | null }) {
  if (!error) return null;
  const extra = Object.entries(error.metadata)
    .filter(([k]) => k === "field" || k === "param" || k === "name")
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
  return (
    <div class="error" role="alert" data-reason={error.reason}>
      {error.text}
      {extra && <span class="error-extra"> ({extra})</span>}
    </div>
  );
}

/** Turns a thrown API error into a shown one; an expired session signs out. */
export function shown(err: unknown): Shown {
  if (isSessionOver(err)) signOut();
  return describe(err);
}

/** A call's state: running, failed (in words) or done. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Shown | null>(null);
  const run = useCallback(async <T,>(f: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await f();
    } catch (err) {
      setError(shown(err));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}

export interface PageResult<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * A list read page by page with the API's page tokens. `fetch` gets the token of the page to read;
 * `key` changes reload from the first page.
 */
export function usePaged<T>(fetch: (pageToken: string) => Promise<PageResult<T>>, key: string) {
  const [tokens, setTokens] = useState<string[]>([""]);
  const [items, setItems] = useState<T[]>([]);
  const [next, setNext] = useState("");
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<Shown | null>(null);
  const [nonce, setNonce] = useState(0);
  const fetchRef = useRef(fetch);
  fetchRef.current = fetch;
  const token = tokens[tokens.length - 1] ?? "";

  useEffect(() => setTokens([""]), [key]);
  useEffect(() => {
    let live = true;
    setLoading(true);
    fetchRef
      .current(token)
      .then((page) => {
        if (!live) return;
        setItems(page.items);
        setNext(page.nextPageToken);
        setError(null);
      })
      .catch((err) => live && setError(shown(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [token, key, nonce]);

  return {
    items,
    loading,
    error,
    page: tokens.length,
    hasNext: next !== "",
    hasPrev: tokens.length > 1,
    nextPage: () => next && setTokens((t) => [...t, next]),
    prevPage: () => setTokens((t) => (t.length > 1 ? t.slice(0, -1) : t)),
    reload: () => setNonce((n) => n + 1),
  };
}

/** Previous / next page buttons of a list. */
export function Pager(props: {
  label: string;
  page: number;
  hasPrev: boolean;
  hasNext: boolean;
  onPrev: () => void;
  onNext: () => void;
}) {
  if (!props.hasPrev && !props.hasNext) return null;
  return (
    <nav class="pager" aria-label={`${props.label} pages`}>
      <button type="button" disabled={!props.hasPrev} onClick={props.onPrev}>
        Previous page
      </button>
      <span aria-live="polite">Page {props.page}</span>
      <button type="button" disabled={!props.hasNext} onClick={props.onNext}>
        Next page
      </button>
    </nav>
  );
}

/** A modal dialog (native <dialog>: focus is kept inside, Escape closes it). */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const opener = document.activeElement as HTMLElement | null;
    return () => opener?.focus?.();
  }, []);
  return (
    <dialog
      ref={ref}
      class={props.wide ? "wide" : undefined}
      aria-labelledby={id}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <div class="dialog-head">
        <h2 id={id}>{props.title}</h2>
        <button type="button" class="icon" aria-label="Close dialog" onClick={props.onClose}>
          ×
        </button>
      </div>
      {props.children}
    </dialog>
  );
}

export interface MenuItem {
  label: string;
  onSelect: () => void;
}

/** The three-dot action menu of a table row (menu button pattern: arrows, Escape, Enter). */
export function ActionMenu({ label, items }: { label: string; items: MenuItem[] }) {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLUListElement>(null);
  const focusItem = (i: number) => {
    const els = menu.current?.querySelectorAll<HTMLButtonElement>("[role=menuitem]");
    if (els && els.length) els[(i + els.length) % els.length]?.focus();
  };
  // Layout effect: the first item has focus before the browser paints the open menu.
  useLayoutEffect(() => {
    if (!open) return;
    focusItem(0);
    const close = (e: MouseEvent) => {
      if (!menu.current?.contains(e.target as Node) && e.target !== button.current) setOpen(false);
    };
    document.addEventListener("mousedown", close);
    return () => document.removeEventListener("mousedown", close);
  }, [open]);
  const onKey = (e: KeyboardEvent) => {
    const els = Array.from(menu.current?.querySelectorAll<HTMLButtonElement>("[role=menuitem]") ?? []);
    const at = els.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === "ArrowDown") (e.preventDefault(), focusItem(at + 1));
    else if (e.key === "ArrowUp") (e.preventDefault(), focusItem(at - 1));
    else if (e.key === "Escape" || e.key === "Tab") {
      setOpen(false);
      button.current?.focus();
    }
  };
  return (
    <div class="menu-wrap">
      <button
        ref={button}
        type="button"
        class="icon"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-label={label}
        onClick={() => setOpen(!open)}
      >
        ⋮
      </button>
      {open && (
        <ul ref={menu} role="menu" aria-label={label} class="menu" onKeyDown={onKey}>
          {items.map((item) => (
            <li role="none" key={item.label}>
              <button
                type="button"
                role="menuitem"
                tabIndex={-1}
                onClick={() => {
                  setOpen(false);
                  button.current?.focus();
                  item.onSelect();
                }}
              >
                {item.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Copies `text` to the clipboard and says so. */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [said, setSaid] = useState("");
  return (
    <span class="copy">
      <button
        type="button"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(text);
            setSaid("Copied to the clipboard.");
          } catch {
            setSaid("Copying was refused by the browser: select the text and copy it.");
          }
        }}
      >
        {label}
      </button>
      <span role="status" class="muted">
        {said}
      </span>
    </span>
  );
}

/** A time for people, in the browser's locale and zone, with the ISO form as a tooltip. */
export function Time({ ts }: { ts?: Timestamp }) {
  if (!ts) return <span class="muted">—</span>;
  const d = timestampDate(ts);
  return (
    <time dateTime={d.toISOString()} title={d.toISOString()}>
      {d.toLocaleString()}
    </time>
  );
}

/** A table that reads as labelled cards on narrow screens (labels come from `data-label`). */
export function Table(props: { caption: string; head: string[]; children: ComponentChildren; empty?: string; count: number }) {
  return (
    <div class="table-wrap">
      <table class="cards">
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col" key={h}>
                {h || <span class="sr-only">Actions</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
      {props.count === 0 && <p class="empty">{props.empty ?? "Nothing here yet."}</p>}
    </div>
  );
}

export function Loading({ on }: { on: boolean }) {
  return on ? (
    <p class="muted" role="status">
      Loading…
    </p>
  ) : null;
}

/** Grace-window choices for secret rotation and API-key resets, in seconds. */
export const GRACE_CHOICES: [number, string][] = [
  [0, "No grace: the old one stops working at once"],
  [3600, "1 hour"],
  [86400, "24 hours"],
  [604800, "7 days"],
];
