// Starts a real bridge (with its built-in Daraja simulator) for a test file: a free port, a data
// folder of its own, an admin token; waits for /healthz; creates a project through the admin API.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { MpesaBridgeAdmin } from "../../dist/esm/index.js";

const here = dirname(fileURLToPath(import.meta.url));
export const BRIDGE_BIN = process.env.MPESA_BRIDGE_BIN ?? resolve(here, "../../../../.venv/bin/mpesa-bridge");
export const ADMIN_TOKEN = "sdk-js-tests-admin-token-0123456789abcdef";

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitUntil(check, { timeoutMs = 15000, intervalMs = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

let phoneCounter = Math.floor(Math.random() * 100000);
/** A phone of its own for each payment (the simulator locks a phone per push in flight); it pays. */
export function freshPhone() {
  phoneCounter = (phoneCounter + 1) % 100000;
  return `07129${String(phoneCounter).padStart(5, "0")}`;
}

export async function startBridge(env = {}) {
  if (!existsSync(BRIDGE_BIN)) throw new Error(`no bridge at ${BRIDGE_BIN}: run make install, or set MPESA_BRIDGE_BIN`);
  const dir = mkdtempSync(join(tmpdir(), "mpesa-bridge-sdk-js-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logPath = join(dir, "bridge.log");
  const { openSync } = await import("node:fs");
  const log = openSync(logPath, "a");
  const childEnv = { ...process.env };
  for (const key of Object.keys(childEnv)) if (key.startsWith("MPESA_BRIDGE_") && key !== "MPESA_BRIDGE_BIN") delete childEnv[key];
  const child = spawn(BRIDGE_BIN, ["serve"], {
    env: {
      ...childEnv,
      PYTHONUNBUFFERED: "1",
      MPESA_BRIDGE_ENV: "development",
      MPESA_BRIDGE_PORT: String(port),
      MPESA_BRIDGE_HOST: "127.0.0.1",
      MPESA_BRIDGE_DATA_DIR: join(dir, "data"),
      MPESA_BRIDGE_ADMIN_TOKEN: ADMIN_TOKEN,
      MPESA_BRIDGE_PUBLIC_BASE_URL: url,
      MPESA_BRIDGE_SIMULATOR_CALLBACK_DELAY: "0.3",
      MPESA_BRIDGE_INBOX_POLL_INTERVAL: "0.1",
      MPESA_BRIDGE_WEBHOOK_POLL_INTERVAL: "0.1",
      MPESA_BRIDGE_SSE_POLL_INTERVAL: "0.2",
      MPESA_BRIDGE_RATE_LIMIT_PHONE: "100/minute",
      ...env,
    },
    stdio: ["ignore", log, log],
  });
  let exited = null;
  child.on("exit", (code) => (exited = code));
  const output = () => (existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-4000) : "");
  try {
    await waitUntil(
      async () => {
        if (exited !== null) throw new Error(`bridge exited with ${exited}:\n${output()}`);
        try {
          return (await fetch(`${url}/healthz`)).ok;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30000, what: "the bridge's /healthz" },
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  const admin = new MpesaBridgeAdmin(ADMIN_TOKEN, { baseUrl: url });
  const newProject = async (name = "SDK tests") => {
    const project = await admin.projects.create({ name });
    return { projectId: project.id, secretKey: project.secret_keys.test };
  };
  const { projectId, secretKey } = await newProject();
  return {
    url,
    admin,
    projectId,
    secretKey,
    newProject,
    output,
    async stop() {
      if (exited === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
