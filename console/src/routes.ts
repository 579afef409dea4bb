// Hash routes of the console. They carry ids only, never a token.
//   #/                                        app picker
//   #/apps/{workspaceId}/{appId}/{screen}     data-sources | triggers | failed | params | actions
//   #/data-planes                             connected data planes

export interface Route {
  screen: string;
  workspaceId: string;
  appId: string;
}

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "apps" && parts.length >= 3) {
    return { screen: parts[3] ?? "data-sources", workspaceId: parts[1] ?? "", appId: parts[2] ?? "" };
  }
  if (parts[0] === "data-planes") return { screen: "data-planes", workspaceId: "", appId: "" };
  return { screen: "apps", workspaceId: "", appId: "" };
}

export function appHref(workspaceId: string, appId: string, screen = "data-sources"): string {
  return `#/apps/${workspaceId}/${appId}/${screen}`;
}

/** The screen of an app every app screen receives. */
export interface AppProps {
  workspaceId: string;
  appId: string;
}
