// REST access with the generated OpenAPI types, and the session kept in localStorage
// (shared by every tab of the origin).
import type { components, paths } from "./api.gen";

type Schemas = components["schemas"];
export type AuthOut = Schemas["AuthOut"];
export type PageIn = Schemas["PageIn"];
export type PageOut = Schemas["PageOut"];
export type PublicPageOut = Schemas["PublicPageOut"];
export type OpenRsvpIn = Schemas["OpenRsvpIn"];
export type RsvpOut = Schemas["RsvpOut"];
export type MessageOut = Schemas["MessageOut"];
export type ErrorBody = Schemas["ErrorBody"];
export interface PageList {
  items: PageOut[];
  total: number;
}

/** The backend's address: set by the static server in config.js. */
export const API: string = (window as unknown as { MOCHEONG_API: string }).MOCHEONG_API;

const KEY = "mocheong.session";

export function session(): AuthOut | null {
  const raw = localStorage.getItem(KEY);
  return raw ? (JSON.parse(raw) as AuthOut) : null;
}

function save(s: AuthOut | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

let refreshing: Promise<AuthOut> | null = null;

/**
 * Exchanges the stored refresh token for a new pair. One refresh at a time per tab;
 * another tab may refresh at the same moment with the same token — the backend's
 * reuse grace window gives both tabs the same successor.
 */
export function refresh(): Promise<AuthOut> {
  refreshing ??= doRefresh().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function doRefresh(): Promise<AuthOut> {
  const held = session();
  if (!held) throw new ApiError(401, "not_signed_in", "not signed in", null);
  const res = await fetch(`${API}/api/auth/refresh`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refreshToken: held.refreshToken }),
  });
  if (!res.ok) {
    const err = await toError(res);
    // Signed out elsewhere, or the session really ended.
    if (session()?.refreshToken === held.refreshToken) save(null);
    throw err;
  }
  const fresh = (await res.json()) as AuthOut;
  save(fresh);
  return fresh;
}

async function toError(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => null)) as ErrorBody | null;
  return new ApiError(
    res.status,
    body?.error.code ?? "http_error",
    body?.error.message ?? res.statusText,
    res.headers.get("x-request-id"),
  );
}

type Method = "GET" | "POST" | "PATCH" | "DELETE";

/**
 * A JSON call to a documented path (`template` is checked against the OpenAPI paths;
 * `{name}` segments are filled from `params`). With `auth`, refreshes once on 401.
 */
export async function call<T>(
  method: Method,
  template: keyof paths,
  { params = {}, body, auth = true }: { params?: Record<string, string>; body?: unknown; auth?: boolean } = {},
): Promise<T> {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
  const send = (token?: string) =>
    fetch(`${API}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        "accept-language": navigator.language,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let res = await send(auth ? session()?.accessToken : undefined);
  if (auth && res.status === 401 && session()) {
    res = await send((await refresh()).accessToken);
  }
  if (!res.ok) throw await toError(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

export async function login(email: string, password: string): Promise<AuthOut> {
  const out = await call<AuthOut>("POST", "/api/auth/login", { body: { email, password }, auth: false });
  save(out);
  return out;
}

export async function register(email: string, password: string, displayName: string): Promise<AuthOut> {
  const out = await call<AuthOut>("POST", "/api/auth/register", {
    body: { email, password, displayName },
    auth: false,
  });
  save(out);
  return out;
}

export async function logout(): Promise<void> {
  const s = session();
  save(null);
  if (s) await call("POST", "/api/auth/logout", { body: { refreshToken: s.refreshToken }, auth: false });
}
