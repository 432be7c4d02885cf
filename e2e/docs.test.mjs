// The interactive docs page as a person meets it, in headless Chromium:
// every operation is listed, nothing loads from another host, the page's
// Content-Security-Policy holds, and "Try it out" runs real requests, with
// a bearer token when the server can register a user.
//
//   BASE_URL=http://127.0.0.1:8080 node --test docs.test.mjs
// (`just test-e2e` starts a server on a throwaway database and runs this.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const HERE = dirname(fileURLToPath(import.meta.url));
const SCREENSHOT = join(HERE, "screenshots", "docs.png");
const METHODS = ["get", "post", "put", "patch", "delete"];

/** Registers a throwaway user; null when the server has no such route yet. */
async function accessToken() {
  const response = await fetch(`${BASE_URL}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      email: `e2e-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`,
      password: "correct horse battery staple 42",
      name: "E2E Tester",
    }),
  });
  if (response.status === 404) return null;
  // Read the body once: the failure message and the tokens both need it.
  const body = await response.text();
  assert.equal(response.status, 201, `register: ${body}`);
  return JSON.parse(body).tokens.access_token;
}

/** Expands one operation, runs it with "Try it out", returns the status shown. */
async function tryItOut(page, method, path) {
  const block = page.locator(`.opblock-${method}`, {
    has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
  });
  await block.locator(".opblock-summary").first().click();
  const tryOut = block.locator("button.try-out__btn");
  // tryItOutEnabled opens the editor at once; older settings need the click.
  if ((await tryOut.count()) > 0 && (await tryOut.innerText()).includes("Try it out")) {
    await tryOut.click();
  }
  await block.locator("button.execute").click();
  const status = block.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 15_000 });
  return (await status.innerText()).trim();
}

test("the /docs page lists every operation and runs requests", async () => {
  assert.ok(BASE_URL, "set BASE_URL (just test-e2e does)");
  const base = new URL(BASE_URL);
  const doc = await (await fetch(`${BASE_URL}/openapi.json`)).json();
  const operations = Object.values(doc.paths).flatMap((item) =>
    METHODS.filter((m) => item[m]),
  ).length;
  const token = await accessToken();
  if (token === null) {
    console.log("POST /api/v1/auth/register is 404: skipping Authorize and GET /api/v1/users/me");
  }

  const profile = mkdtempSync(join(tmpdir(), "pa-e2e-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const foreign = [];
  const problems = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.protocol !== "data:" && url.host !== base.host) foreign.push(request.url());
    });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(String(error)));

    const response = await page.goto(`${BASE_URL}/docs`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()["content-security-policy"] ?? "", /default-src 'none'/);
    await page.locator(".opblock").first().waitFor({ timeout: 20_000 });
    assert.equal(await page.locator(".opblock").count(), operations, "every operation is listed");

    if (token !== null) {
      await page.locator("button.authorize").first().click();
      const dialog = page.locator(".modal-ux");
      await dialog.locator("input").first().fill(token);
      await dialog.locator("button.authorize").click();
      await dialog.locator("button.btn-done").click();
    }

    assert.equal(await tryItOut(page, "get", "/health/live"), "200");
    if (token !== null) {
      assert.equal(await tryItOut(page, "get", "/api/v1/users/me"), "200");
    }

    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  assert.deepEqual(foreign, [], "requests to another host");
  assert.deepEqual(problems, [], "console errors (CSP violations show here)");
});
