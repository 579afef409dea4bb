// Data Planes: the data planes connected to this control plane replica, with the config version
// each acknowledged, how long it took to converge, and its last NACK. Needs an ADMIN token.
// The API returns them all at once; the console pages them.

import { useState } from "preact/hooks";

import { distribution, PAGE_SIZE } from "../api";
import type { DataPlaneStatus } from "../gen/webhook/gateway/v1/config_distribution_pb.js";
import { ErrorNote, Loading, Pager, Table, usePaged } from "../ui";

export function DataPlanes() {
  const [current, setCurrent] = useState<bigint | null>(null);
  const [all, setAll] = useState<DataPlaneStatus[]>([]);
  const list = usePaged(async (pageToken) => {
    // The page token is the offset into the list read on the first page.
    let planes = all;
    if (pageToken === "") {
      const res = await distribution.listDataPlanes({});
      planes = [...res.dataPlanes].sort((a, b) => a.dataPlaneId.localeCompare(b.dataPlaneId));
      setAll(planes);
      setCurrent(res.currentVersion);
    }
    const from = Number(pageToken || "0");
    const to = from + PAGE_SIZE;
    return { items: planes.slice(from, to), nextPageToken: to < planes.length ? String(to) : "" };
  }, "planes");
  return (
    <>
      <h1 tabIndex={-1}>Data Planes</h1>
      <p class="lead">
        Data planes connected to this control plane replica.{" "}
        {current !== null && (
          <>
            Current config version: <strong data-testid="current-version">{current.toString()}</strong>.
          </>
        )}
      </p>
      <div class="toolbar">
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </div>
      <ErrorNote error={list.error} />
      <Loading on={list.loading} />
      <Table caption="Data planes" head={["Data plane", "Acknowledged", "Sent", "Convergence", "Last NACK", "Connected", "Peer"]} count={list.items.length} empty="No data plane is connected to this replica.">
        {list.items.map((d) => {
          const behind = current !== null && d.ackedVersion < current;
          return (
            <tr key={d.dataPlaneId} data-plane={d.dataPlaneId}>
              <td data-label="Data plane">
                <strong>{d.dataPlaneId}</strong>
              </td>
              <td data-label="Acknowledged">
                {d.ackedVersion.toString()}
                {" "}
                {behind ? <span class="badge warn">behind</span> : <span class="badge on">current</span>}
              </td>
              <td data-label="Sent">{d.sentVersion.toString()}</td>
              <td data-label="Convergence">{d.lastConvergenceMs.toString()} ms</td>
              <td data-label="Last NACK">{d.lastNackReason || <span class="muted">none</span>}</td>
              <td data-label="Connected">{new Date(Number(d.connectedAtUnixMs)).toLocaleString()}</td>
              <td data-label="Peer" class="mono">
                {d.peer}
              </td>
            </tr>
          );
        })}
      </Table>
      <Pager label="Data planes" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prevPage} onNext={list.nextPage} />
    </>
  );
}
