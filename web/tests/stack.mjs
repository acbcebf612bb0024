// Starts the processes the browser journey talks to — the agent-manager's Celery worker
// and API, the backend binary (with CORS for the web client's origin) and the web
// client's static server — each on a free port, with a queue and streams of its own.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = resolve(WEB, "..");
const AGENT_DIR = join(ROOT, "agent-manager");
const AGENT_PY = join(AGENT_DIR, ".venv/bin/python");
const BACKEND_BIN = process.env.BACKEND_BIN ?? join(ROOT, "target/debug/backend");
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";
const SERVICE_TOKEN = "browser-service-token";

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
    srv.on("error", fail);
  });
}

async function waitHttp(url, proc, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `status ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready (${last}):\n${proc.tail()}`);
}

export class Stack {
  constructor() {
    this.runId = randomBytes(5).toString("hex");
    this.workdir = mkdtempSync(join(tmpdir(), "mocheong-browser-"));
    this.procs = [];
    this.queue = `browser-${this.runId}`;
    this.completions = `chat:completions:browser-${this.runId}`;
  }

  spawn(name, cmd, args, env, cwd) {
    const log = join(this.workdir, `${name}.log`);
    const out = createWriteStream(log);
    const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout.pipe(out);
    proc.stderr.pipe(out);
    proc.tail = () => {
      try {
        return readFileSync(log, "utf8").slice(-3000);
      } catch {
        return "";
      }
    };
    this.procs.push(proc);
    return proc;
  }

  async start() {
    const agentEnv = {
      AGENT_REDIS_URL: REDIS_URL,
      AGENT_QUEUE: this.queue,
      AGENT_COMPLETION_STREAM: this.completions,
      AGENT_SERVICE_TOKEN: SERVICE_TOKEN,
      AGENT_MODEL_PROVIDER: "offline",
      // Slow enough that a person (the test) can stop an answer or reload mid-answer.
      AGENT_OFFLINE_CHUNK_DELAY_MS: "120",
    };
    this.spawn(
      "agent-worker",
      AGENT_PY,
      ["-m", "celery", "-A", "app.worker.celery_app", "worker", "-Q", this.queue, "--pool", "threads", "-c", "2",
        "-n", `${this.queue}@localhost`, "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", "WARNING"],
      agentEnv,
      AGENT_DIR,
    );
    const agentPort = await freePort();
    const agentUrl = `http://127.0.0.1:${agentPort}`;
    const agent = this.spawn(
      "agent-api",
      AGENT_PY,
      ["-m", "uvicorn", "app.api.main:app", "--host", "127.0.0.1", "--port", String(agentPort), "--log-level", "warning"],
      agentEnv,
      AGENT_DIR,
    );

    const webPort = await freePort();
    this.web = `http://127.0.0.1:${webPort}`;
    const apiPort = await freePort();
    this.api = `http://127.0.0.1:${apiPort}`;
    await waitHttp(`${agentUrl}/health`, agent);
    const backend = this.spawn("backend", BACKEND_BIN, ["serve"], {
      BIND_ADDR: `127.0.0.1:${apiPort}`,
      DATABASE_URL: process.env.TEST_DATABASE_URL || `sqlite://${this.workdir}/browser.db?mode=rwc`,
      DATA_DIR: join(this.workdir, "data"),
      REDIS_URL,
      AGENT_MANAGER_URL: agentUrl,
      AGENT_SERVICE_TOKEN: SERVICE_TOKEN,
      AGENT_QUEUE: this.queue,
      AGENT_COMPLETION_STREAM: this.completions,
      JWT_SECRET: "browser-jwt-secret-0123456789abcdef0123456789",
      SERVER_ID: `browser-${this.runId}`,
      // The web client is on another origin (another port).
      CORS_ORIGINS: this.web,
      LOGIN_RATE_PER_IP: "10000",
      LOGIN_RATE_PER_ACCOUNT: "10000",
      PUBLIC_WRITE_RATE_PER_IP: "10000",
    });
    const web = this.spawn("web", process.execPath, [join(WEB, "scripts/serve.mjs")], {
      PORT: String(webPort),
      API_URL: this.api,
    });
    await waitHttp(`${this.api}/health/live`, backend);
    await waitHttp(`${this.web}/config.js`, web);
  }

  async stop() {
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise((done) => {
            if (p.exitCode !== null || p.signalCode !== null) return done();
            const kill = setTimeout(() => p.kill("SIGKILL"), 10_000);
            p.once("exit", () => {
              clearTimeout(kill);
              done();
            });
            p.kill("SIGTERM");
          }),
      ),
    );
  }

  logs() {
    return this.procs.map((p) => `--- ${p.spawnargs.slice(0, 3).join(" ")}\n${p.tail()}`).join("\n");
  }
}
