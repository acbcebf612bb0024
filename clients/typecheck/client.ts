// A small typed client over the types generated from the backend's OpenAPI document.
// It is never run: `tsc --strict` compiling it (without skipLibCheck) is the test that
// the document gives a frontend correct types. scripts/openapi-check.sh runs it.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type Schemas = components["schemas"];
type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;

// Exact type equality (the usual conditional-type trick), checked at compile time.
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(): T | undefined => undefined;

// `GET /api/pages` is the caller's own pages; the admin list is another operation.
type MyPages = Json<paths["/api/pages"]["get"]["responses"][200]>;
expectType<Equal<MyPages, Schemas["Paginated_PageOut"]>>();
expectType<Equal<MyPages["items"][number], Schemas["PageOut"]>>();
type AdminPages = Json<paths["/api/admin/pages"]["get"]["responses"][200]>;
expectType<Equal<AdminPages["items"][number], Schemas["AdminPageOut"]>>();

// Every error answer has the one error body.
type PageErrors = Json<paths["/api/pages/{id}"]["get"]["responses"][401 | 404]>;
expectType<Equal<PageErrors, Schemas["ErrorBody"]>>();
type Unprocessable = Json<paths["/api/pages"]["post"]["responses"][422]>;
expectType<Equal<Unprocessable, Schemas["ErrorBody"]>>();

const api = createClient<paths>({ baseUrl: "http://localhost:8080" });

export async function login(email: string, password: string): Promise<Schemas["AuthOut"]> {
  const { data, error } = await api.POST("/api/auth/login", { body: { email, password } });
  if (error) {
    // The first invalid field, and every one of them with a message to show.
    const fields = error.error.details?.fields ?? [];
    throw new Error(`${error.error.code}: ${error.error.message} (${fields.length} fields)`);
  }
  return data;
}

export async function myPages(token: string, page: number): Promise<Schemas["PageOut"][]> {
  const { data, error } = await api.GET("/api/pages", {
    params: { query: { page, perPage: 20 } },
    headers: { Authorization: `Bearer ${token}`, "Accept-Language": "ko" },
  });
  if (error) {
    throw new Error(error.error.message);
  }
  const first = data.items[0];
  if (first) {
    const access: "owner" | "editor" | "admin" = first.access;
    void access;
    // @ts-expect-error the user list has no admin-only fields
    void first.groomName;
  }
  return data.items;
}

export async function createPage(token: string): Promise<string> {
  const { data, error } = await api.POST("/api/pages", {
    headers: { Authorization: `Bearer ${token}` },
    body: {
      groom: { name: "김철수" },
      bride: { name: "이영희" },
      weddingAt: "2027-05-15T12:30:00+09:00",
      venue: { name: "더채플앳청담" },
    },
  });
  if (error) {
    throw new Error(error.error.field ?? error.error.code);
  }
  return data.id;
}

export async function rsvp(code: string): Promise<Schemas["RsvpOut"]> {
  const { data, error } = await api.POST("/api/public/invitations/{code}/rsvp", {
    params: { path: { code } },
    body: { attending: true, partySize: 2 },
  });
  if (error) {
    const retry: number | undefined = error.error.retryAfter ?? undefined;
    throw new Error(`retry after ${retry ?? 0}s`);
  }
  return data;
}

// @ts-expect-error perPage is a number
void api.GET("/api/pages", { params: { query: { perPage: "20" } } });
