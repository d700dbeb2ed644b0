// Every part of a page tells the truth live, and whoever is not signed in is sent to sign in
// and back: the environment page's request list and the environment list follow the live
// stream to "ready" without a reload; an anonymous visit signs in through the provider (on the
// Berth with single sign-on, SSO_URL) and lands on the page asked for; the auditors' table fits
// a 1280-pixel window.
import { test, expect } from "@playwright/test";
import { SSO_URL, devSignIn, hydrated, watchConsole } from "./helpers.mjs";

/** Fills the local identity provider's login form (the page is the provider's). */
async function atProvider(page, username, password) {
  await expect(page.getByLabel("Username")).toBeVisible();
  expect(page.url().startsWith(SSO_URL)).toBe(false);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Submits a request as the signed-in manager of `page`; returns its id. */
async function submit(page, name, slug = "") {
  const res = await page.request.post("/api/submit_request", {
    form: { name, slug, description: "", owner_contact: "maria@seaview.example", blueprint: "insight", size: "small" },
    headers: { "Sec-Fetch-Site": "same-origin", Accept: "application/json" },
  });
  expect(res.ok(), await res.text()).toBe(true);
}

test("an anonymous visitor signs in through the redirect and lands on the page asked for", async ({ browser }) => {
  const ctx = await browser.newContext({ baseURL: SSO_URL });
  const page = await ctx.newPage();

  // Opened directly: the server answers with the redirect, so no error box is ever shown.
  const asked = "/audit?status=ready";
  const first = await page.request.get(asked, { maxRedirects: 0 });
  expect(first.status()).toBe(303);
  expect(first.headers()["location"]).toBe("/auth/login?return_to=%2Faudit%3Fstatus%3Dready");
  await page.goto(asked);
  await atProvider(page, "audrey", "audrey-demo");
  await expect(page).toHaveURL(`${SSO_URL}${asked}`);
  await expect(page.getByTestId("who")).toHaveText("Audrey Auditor");
  await expect(page.getByRole("heading", { name: /Audit/ })).toBeVisible();
  await expect(page.getByLabel("Status")).toHaveValue("ready");
  const problems = watchConsole(page);
  await page.reload();
  await hydrated(page);
  expect(problems).toEqual([]);

  // After hydration: the session ends (cookies gone, the provider's too), and a link followed
  // in the page leads to sign-in and back to where the link pointed.
  await ctx.clearCookies();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Environments" }).click();
  await atProvider(page, "audrey", "audrey-demo");
  await expect(page).toHaveURL(`${SSO_URL}/`);
  await expect(page.getByRole("heading", { name: "Environments" })).toBeVisible();
  await expect(page.getByTestId("sign-in-redirect")).toHaveCount(0);

  // A return address elsewhere is never followed: sign-in ends on Berth's own first page.
  await ctx.clearCookies();
  await page.goto("/auth/login?return_to=%2F%2Fevil.example%2F");
  await atProvider(page, "audrey", "audrey-demo");
  await expect(page).toHaveURL(`${SSO_URL}/`);
  await ctx.close();
});

test("the environment page's requests and the environment list turn ready live, without a reload", async ({ browser }) => {
  test.setTimeout(240_000);
  const unit = `Live ${Date.now().toString(36)}`;

  const managerCtx = await browser.newContext();
  const manager = await managerCtx.newPage();
  await devSignIn(manager, "Maria Manager");
  const problems = watchConsole(manager);
  await submit(manager, unit);

  // The environment list, in a second tab, and the environment page, opened once each.
  const list = await managerCtx.newPage();
  const listProblems = watchConsole(list);
  await list.goto("/");
  await hydrated(list);
  const row = list.getByRole("row").filter({ hasText: unit });
  await expect(row.locator(".badge")).toHaveText("submitted");

  await manager.goto("/");
  await hydrated(manager);
  await manager.getByRole("link", { name: unit }).click();
  await expect(manager.getByRole("heading", { name: unit })).toBeVisible();
  await hydrated(manager);
  await expect(manager.getByTestId("provisioning")).toHaveAttribute("data-live", "connected");
  const requests = manager.getByTestId("requests").locator("li");
  await expect(requests).toHaveCount(1);
  await expect(requests.first()).toHaveAttribute("data-status", "submitted");
  const requestHref = await requests.first().getByRole("link").getAttribute("href");
  // A mark that a reload would wipe out.
  await manager.evaluate(() => (window.__noReload = true));
  await list.evaluate(() => (window.__noReload = true));

  // An admin approves the plan the worker computed.
  const adminCtx = await browser.newContext();
  const admin = await adminCtx.newPage();
  await devSignIn(admin, "Ada Admin");
  await admin.goto(requestHref);
  await hydrated(admin);
  await expect(admin.getByTestId("plan")).toHaveAttribute("data-plan-status", "ready", { timeout: 60_000 });
  await admin.getByRole("button", { name: "Approve" }).click();
  await expect(admin.getByTestId("request-status")).toHaveText(/approved|provisioning|ready/);

  // The run finishes; the header, the run and the request list all say so, and so does the list.
  await expect(manager.getByTestId("run")).toHaveAttribute("data-status", "succeeded", { timeout: 180_000 });
  await expect(manager.getByTestId("environment-status")).toHaveText("ready");
  await expect(requests.first()).toHaveAttribute("data-status", "ready");
  await expect(requests.first().locator(".badge")).toHaveText("ready");
  await expect(row.locator(".badge")).toHaveText("ready");
  expect(await manager.evaluate(() => window.__noReload)).toBe(true);
  expect(await list.evaluate(() => window.__noReload)).toBe(true);

  expect(problems).toEqual([]);
  expect(listProblems).toEqual([]);
  await managerCtx.close();
  await adminCtx.close();
});

test("the auditors' table fits a 1280-pixel window without clipping its last column", async ({ browser }) => {
  // The longest name and short name the form allows, in one row.
  const managerCtx = await browser.newContext();
  const manager = await managerCtx.newPage();
  await devSignIn(manager, "Maria Manager");
  const stamp = Date.now().toString(36);
  const name = `Wide ${stamp} Californian charging stations and long haul logistics`.slice(0, 64).trim();
  const slug = `wide-${stamp}-charging-stations-logistics`.slice(0, 40).replace(/-$/, "");
  await submit(manager, name, slug);
  await managerCtx.close();

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await devSignIn(page, "Audrey Auditor");
  const problems = watchConsole(page);
  await page.goto("/audit");
  await hydrated(page);
  const table = page.getByTestId("audit-environments");
  await expect(table).toContainText(slug);
  const m = await table.evaluate((t) => {
    const wrap = t.parentElement;
    const last = t.querySelector("thead th:last-child").getBoundingClientRect();
    return {
      viewport: window.innerWidth,
      lastRight: last.right,
      tableWidth: t.getBoundingClientRect().width,
      wrapWidth: wrap.clientWidth,
      wrapScroll: wrap.scrollWidth,
      pageScroll: document.documentElement.scrollWidth,
    };
  });
  const seen = JSON.stringify(m);
  expect(m.lastRight, seen).toBeLessThanOrEqual(m.viewport);
  expect(m.tableWidth, seen).toBeLessThanOrEqual(m.wrapWidth);
  expect(m.wrapScroll, seen).toBeLessThanOrEqual(m.wrapWidth);
  expect(m.pageScroll, seen).toBeLessThanOrEqual(m.viewport);
  await expect(table.locator("thead th").last()).toBeInViewport({ ratio: 1 });
  expect(problems).toEqual([]);
  await ctx.close();
});
