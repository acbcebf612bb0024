// The reference web client: a few hash routes over the REST API and the chat socket.
//   #/          sign in / register, then your pages (create, publish, open)
//   #/p/<slug>  the guest view of a published page, with the RSVP form
//   #/chat/<id> the assistant chat of a page
import {
  ApiError,
  call,
  login,
  logout,
  type OpenRsvpIn,
  type PageIn,
  type PageList,
  type PageOut,
  type PublicPageOut,
  type RsvpOut,
  refresh,
  register,
  session,
} from "./api";
import { Chat } from "./chat";

const app = document.getElementById("app") as HTMLElement;
let chat: Chat | null = null;

/** Builds an element: `h("button", {id: "x"}, "Save")`. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

function field(label: string, name: string, type = "text", value = ""): HTMLLabelElement {
  return h("label", {}, label, h("input", { name, type, value, required: "" }));
}

function formValues(form: HTMLFormElement): Record<string, string> {
  return Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, String(v)]));
}

/** Runs an action and shows its error (code, message and request id) in `#error`. */
async function guarded(action: () => Promise<void>): Promise<void> {
  const box = document.getElementById("error");
  if (box) box.textContent = "";
  try {
    await action();
  } catch (e) {
    const msg = e instanceof ApiError ? `${e.code}: ${e.message} (request ${e.requestId ?? "-"})` : String(e);
    if (box) box.textContent = msg;
  }
}

function header(): HTMLElement {
  const s = session();
  const bar = h("header", {}, h("a", { href: "#/" }, "모청 Mocheong"));
  if (s) {
    const renew = h("button", { id: "refresh-session", type: "button" }, "Refresh session");
    renew.onclick = () =>
      guarded(async () => {
        await refresh();
        setText("session-status", "session renewed");
      });
    const out = h("button", { id: "logout", type: "button" }, "Sign out");
    out.onclick = () => guarded(async () => {
      await logout();
      route();
    });
    bar.append(h("span", { id: "who" }, `Signed in as ${s.user.displayName}`), renew, out, h("span", { id: "session-status" }));
  }
  return bar;
}

function setText(id: string, text: string): void {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

function signIn(): HTMLElement {
  const form = h(
    "form",
    { id: "login-form" },
    field("Email", "email", "email"),
    field("Password", "password", "password"),
    h("label", {}, "Name (to register)", h("input", { name: "displayName" })),
    h("button", { type: "submit", name: "action", value: "login" }, "Sign in"),
    h("button", { type: "submit", name: "action", value: "register", id: "register" }, "Register"),
  );
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const action = (ev.submitter as HTMLButtonElement | null)?.value;
    void guarded(async () => {
      if (action === "register") await register(v.email ?? "", v.password ?? "", v.displayName || "Couple");
      else await login(v.email ?? "", v.password ?? "");
      route();
    });
  };
  return h("section", {}, h("h1", {}, "Sign in"), form);
}

async function dashboard(): Promise<HTMLElement> {
  const list = h("ul", { id: "pages" });
  const pages = await call<PageList>("GET", "/api/pages");
  for (const p of pages.items) list.append(pageRow(p));
  const form = h(
    "form",
    { id: "page-form" },
    field("Groom", "groom"),
    field("Bride", "bride"),
    field("Date and time (Seoul)", "when", "datetime-local"),
    field("Venue", "venue"),
    h("button", { type: "submit" }, "Create page"),
  );
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const body: PageIn = {
      groom: { name: v.groom ?? "" },
      bride: { name: v.bride ?? "" },
      // datetime-local has no offset: the page's time zone is Asia/Seoul.
      weddingAt: `${v.when}:00+09:00`,
      venue: { name: v.venue ?? "" },
      rsvp: { open: true, allowOpen: true, mealOptions: [] },
    };
    void guarded(async () => {
      const page = await call<PageOut>("POST", "/api/pages", { body });
      list.prepend(pageRow(page));
      form.reset();
    });
  };
  return h("section", {}, h("h1", {}, "Your pages"), form, list);
}

function pageRow(p: PageOut): HTMLElement {
  const li = h("li", { "data-page": p.id });
  const draw = (page: PageOut) => {
    const publish = h("button", { class: "publish", type: "button" }, "Publish");
    publish.onclick = () =>
      guarded(async () => draw(await call<PageOut>("POST", "/api/pages/{id}/publish", { params: { id: page.id } })));
    li.replaceChildren(
      h("strong", {}, `${page.groom.name} ♥ ${page.bride.name}`),
      ` ${page.weddingLocal} · `,
      h("span", { class: "status" }, page.status),
      " ",
      page.status === "published" ? h("a", { class: "guest-link", href: `#/p/${page.slug}` }, "Guest view") : publish,
      " ",
      h("a", { class: "chat-link", href: `#/chat/${page.id}` }, "Chat"),
    );
  };
  draw(p);
  return li;
}

async function guestView(slug: string): Promise<HTMLElement> {
  const page = await call<PublicPageOut>("GET", "/api/public/pages/{slug}", { params: { slug }, auth: false });
  const done = h("p", { id: "rsvp-result" });
  const form = h(
    "form",
    { id: "rsvp-form" },
    field("Name", "name"),
    field("Phone", "phone", "tel"),
    h(
      "label",
      {},
      "Attending",
      h("select", { name: "attending" }, h("option", { value: "yes" }, "Yes"), h("option", { value: "no" }, "No")),
    ),
    h("button", { type: "submit" }, "Send RSVP"),
  );
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const body: OpenRsvpIn = {
      name: v.name ?? "",
      phone: v.phone ?? "",
      attending: v.attending === "yes",
      partySize: 1,
    };
    void guarded(async () => {
      const saved = await call<RsvpOut>("POST", "/api/public/pages/{slug}/rsvp", {
        params: { slug },
        body,
        auth: false,
      });
      done.textContent = `Thank you, ${saved.name}: ${saved.attending ? "see you there" : "we will miss you"}.`;
    });
  };
  return h(
    "section",
    { class: "guest" },
    h("h1", { id: "couple" }, `${page.groom.name} ♥ ${page.bride.name}`),
    h("p", { id: "when" }, page.weddingLocal),
    h("p", { id: "venue" }, page.venue?.name ?? ""),
    page.greeting ? h("p", {}, page.greeting) : "",
    page.rsvp.accepting && page.rsvp.allowOpen ? form : h("p", {}, "RSVP is closed."),
    done,
  );
}

function chatView(pageId: string): HTMLElement {
  const log = h("div", { id: "chat-log" });
  const status = h("p", { id: "chat-status" }, "connecting…");
  const draw = () => {
    const turns = [...(chat?.turns.values() ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
    log.replaceChildren(
      ...turns.flatMap((t) => [
        h("div", { class: "msg user" }, t.question),
        h("div", { class: "msg assistant", "data-state": t.state, "data-id": t.id }, t.answer),
      ]),
    );
    const busy = turns.some((t) => t.state === "streaming" || t.state === "waiting");
    stop.disabled = !busy;
  };
  chat = new Chat(pageId, draw, (s) => {
    status.textContent = s;
    status.dataset.transports = chat?.transports.join(",") ?? "";
  });
  const input = h("input", { name: "text", placeholder: "Ask the assistant", autocomplete: "off" });
  const form = h("form", { id: "chat-form" }, input, h("button", { type: "submit" }, "Send"));
  const stop = h("button", { id: "stop", type: "button" }, "Stop");
  stop.disabled = true;
  stop.onclick = () => void chat?.stop();
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    void chat?.send(text);
  };
  return h("section", {}, h("h1", {}, "Assistant"), status, log, form, stop);
}

async function route(): Promise<void> {
  chat?.close();
  chat = null;
  const [, view, arg] = location.hash.split("/");
  const error = h("p", { id: "error", role: "alert" });
  app.replaceChildren(header(), error);
  await guarded(async () => {
    let body: HTMLElement;
    if (view === "p" && arg) body = await guestView(arg);
    else if (!session()) body = signIn();
    else if (view === "chat" && arg) body = chatView(arg);
    else body = await dashboard();
    app.append(body);
  });
}

// Another tab signed in, out or refreshed: redraw the header (the token is read from
// storage at each call, so nothing else needs to change).
window.addEventListener("storage", (e) => {
  if (e.key === "mocheong.session" && !e.newValue) void route();
});
window.addEventListener("hashchange", () => void route());
void route();
