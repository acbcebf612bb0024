// The chat over Socket.IO with the official client and its default transports
// (polling first, then the upgrade to a websocket). Contract: docs/chat.md.
import { io, type Socket } from "socket.io-client";
import { API, refresh, session } from "./api";

/** One agent item (`newMessage` with role `assistant`), as the agent publishes it. */
export interface Item {
  session_id: string;
  message_id: string;
  seq: number;
  role: "assistant" | "user";
  type: "text-delta" | "text" | "component" | "done" | "error";
  content?: string;
  stopped?: boolean;
  user_id?: string;
  created_at?: string;
}

/** A stored message in the socket's `resumed` reply (snake_case, like every socket event). */
export interface StoredMessage {
  id: string;
  role: "user" | "assistant";
  content: string;
  /** `pending`, `answered`, `stopped`, `failed` (user); `complete`, `stopped` (assistant). */
  status: string;
  /** Assistant messages: the user message they answer. */
  answer_to?: string | null;
}

/** A question and its answer as the page shows them. */
export interface Turn {
  id: string; // the user message's id (ULID: sorts by time)
  question: string;
  answer: string;
  state: "waiting" | "streaming" | "answered" | "stopped" | "failed";
  lastSeq: number;
}

export class Chat {
  readonly socket: Socket;
  readonly turns = new Map<string, Turn>();
  sessionId = "";
  /** The Engine.IO transports used, in order: `polling` then `websocket` by default. */
  readonly transports: string[] = [];

  constructor(
    private readonly pageId: string,
    private readonly onChange: () => void,
    private readonly onStatus: (status: string) => void,
  ) {
    // `auth` as a function: every reconnect sends the current access token.
    this.socket = io(`${API}/chat`, {
      auth: (cb) => cb({ token: session()?.accessToken ?? "" }),
    });
    this.socket.io.on("open", () => {
      const engine = this.socket.io.engine;
      this.transports.push(engine.transport.name);
      engine.on("upgrade", (t) => {
        this.transports.push(t.name);
        this.showConnected();
      });
    });
    this.socket.on("connect", () => void this.join());
    this.socket.on("connect_error", (err) => {
      this.onStatus(`connect_error: ${err.message}`);
      // An expired access token: refresh, and socket.io-client retries by itself.
      if (err.message.startsWith("unauthorized")) {
        refresh().then(
          () => this.socket.connect(),
          () => this.onStatus("signed out"),
        );
      }
    });
    this.socket.on("disconnect", () => this.onStatus("disconnected"));
    this.socket.on("newMessage", (item: Item) => this.apply(item));
  }

  /** Joins the page's room, then asks for everything of the session (resume). */
  private async join(): Promise<void> {
    const info = await this.socket.emitWithAck("joinRoom", { room: `page-${this.pageId}` });
    if (info.code) return this.onStatus(`joinRoom: ${info.code}`);
    this.sessionId = info.session_id;
    const resumed = await this.socket.emitWithAck("resume", { session_id: this.sessionId });
    for (const m of (resumed.messages ?? []) as StoredMessage[]) this.applyStored(m);
    for (const item of (resumed.items ?? []) as Item[]) this.apply(item);
    this.showConnected();
    this.onChange();
  }

  private showConnected(): void {
    if (this.sessionId) this.onStatus(`connected (${this.socket.io.engine.transport.name})`);
  }

  private turn(id: string): Turn {
    let t = this.turns.get(id);
    if (!t) {
      t = { id, question: "", answer: "", state: "waiting", lastSeq: -1 };
      this.turns.set(id, t);
    }
    return t;
  }

  private applyStored(m: StoredMessage): void {
    if (m.role === "user") {
      const t = this.turn(m.id);
      t.question = m.content;
      if (m.status === "failed") t.state = "failed";
    } else if (m.answer_to) {
      const t = this.turn(m.answer_to);
      t.answer = m.content;
      t.state = m.status === "stopped" ? "stopped" : "answered";
      t.lastSeq = Number.MAX_SAFE_INTEGER; // finished: later items change nothing
    }
  }

  /** One item, live or from resume; each `(message_id, seq)` counts once. */
  apply(item: Item): void {
    if (item.role === "user") {
      this.turn(item.message_id).question = item.content ?? "";
      return this.onChange();
    }
    const t = this.turn(item.message_id);
    if (item.seq <= t.lastSeq) return;
    t.lastSeq = item.seq;
    if (item.type === "text-delta") {
      t.answer += item.content ?? "";
      t.state = "streaming";
    } else if (item.type === "done") {
      t.answer = item.content ?? t.answer;
      t.state = item.stopped ? "stopped" : "answered";
    } else if (item.type === "error") {
      t.answer = item.content ?? "error";
      t.state = "failed";
    }
    this.onChange();
  }

  async send(text: string): Promise<void> {
    const accepted = await this.socket.emitWithAck("chat-message", {
      text,
      client_msg_id: crypto.randomUUID(),
    });
    if (accepted.code) return this.onStatus(`chat-message: ${accepted.code}`);
    const t = this.turn(accepted.message_id);
    t.question = text;
    this.onChange();
  }

  /** Stops the answer being written, if any. */
  async stop(): Promise<void> {
    const open = [...this.turns.values()].filter((t) => t.state === "streaming" || t.state === "waiting");
    for (const t of open) await this.socket.emitWithAck("stop-generation", { message_id: t.id });
  }

  close(): void {
    this.socket.close();
  }
}
