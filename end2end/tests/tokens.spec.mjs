// API tokens from the pages: a manager makes a personal access token (a refused form keeps what
// was typed), copies the secret shown once, uses it on /api/v1 as a script would, and revokes
// it; an admin makes a service account and issues its token. Both pages pass axe's WCAG A/AA
// checks, with the secret shown too.
import { test, expect } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { devSignIn, hydrated, watchConsole } from "./helpers.mjs";

/** Fails on any WCAG 2 A/AA violation axe finds in the page as it is now. */
async function accessible(page) {
  const { violations } = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  expect(violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(", ")}`)).toEqual([]);
}

test("a personal token: made on the page, shown once, used on the API, revoked", async ({ browser, request }) => {
  const ctx = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  const page = await ctx.newPage();
  await devSignIn(page, "Maria Manager");
  const problems = watchConsole(page);

  await page.getByRole("link", { name: "API tokens" }).click();
  await expect(page.getByRole("heading", { name: "API tokens", level: 1 })).toBeVisible();
  await hydrated(page);
  await accessible(page);
  // Only the scopes a manager's role allows are offered.
  await expect(page.getByRole("checkbox", { name: /^read/ })).toBeChecked();
  await expect(page.getByRole("checkbox", { name: /^request/ })).toBeVisible();
  await expect(page.getByRole("checkbox", { name: /^decide/ })).toHaveCount(0);
  await expect(page.getByRole("checkbox", { name: /^operate/ })).toHaveCount(0);

  // Too long a life is refused next to the field; what was typed stays.
  const name = `e2e ${Date.now().toString(36)}`;
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Expires after (days)").fill("400");
  await page.getByRole("checkbox", { name: /^request/ }).check();
  await page.getByRole("button", { name: "Make token" }).click();
  await expect(page.getByTestId("token-days-error")).toHaveText("A token lives from 1 to 90 days.");
  await expect(page.getByLabel("Name")).toHaveValue(name);
  await expect(page.getByRole("checkbox", { name: /^request/ })).toBeChecked();
  await expect(page.getByTestId("new-token")).toHaveCount(0);

  await page.getByLabel("Expires after (days)").fill("7");
  await page.getByRole("button", { name: "Make token" }).click();
  const shown = page.getByTestId("new-token");
  await expect(shown).toContainText("you won't see this again");
  const secret = await page.getByTestId("token-secret").inputValue();
  expect(secret).toMatch(/^berth_pat_[0-9a-f]{64}$/);
  await page.getByRole("button", { name: "Copy" }).click();
  await expect(page.getByTestId("copy-status")).toHaveText("Copied.");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  const row = page.locator("tr[data-token]", { hasText: name });
  await expect(row.getByTestId("token-state")).toHaveText("active");
  await expect(row).toContainText(secret.slice(0, 16));
  await expect(row).not.toContainText(secret.slice(16));
  await accessible(page);

  // The secret works on the API, as a script would send it (no cookies).
  const who = await request.get("/api/v1/whoami", { headers: { Authorization: `Bearer ${secret}` } });
  expect(who.status()).toBe(200);
  const me = await who.json();
  expect(me.name).toBe("Maria Manager");
  expect(me.token.name).toBe(name);
  expect(me.token.scopes).toEqual(["read", "request"]);

  // Shown once: after a reload the page no longer has it, and the list has its last use.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  expect(await page.content()).not.toContain(secret);
  await expect(row).toContainText("from 127.0.0.1");

  await row.getByRole("button", { name: `Revoke ${name}` }).click();
  await expect(row.getByTestId("token-state")).toHaveText("revoked");
  const after = await request.get("/api/v1/whoami", { headers: { Authorization: `Bearer ${secret}` } });
  expect(after.status()).toBe(401);

  expect(problems).toEqual([]);
  await ctx.close();
});

test("a service account made by an admin calls with its own token", async ({ browser, request }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await devSignIn(page, "Ada Admin");
  const problems = watchConsole(page);

  await page.getByRole("link", { name: "Service accounts" }).click();
  await expect(page.getByRole("heading", { name: "Service accounts", level: 1 })).toBeVisible();
  await hydrated(page);
  await accessible(page);

  const account = `Deploy bot ${Date.now().toString(36)}`;
  // Without a role it is refused next to the roles; the name stays.
  const accountName = page.locator("#account-name");
  await accountName.fill(account);
  await page.getByRole("button", { name: "Create service account" }).click();
  await expect(page.getByTestId("account-roles-error")).toHaveText("Choose at least one role.");
  await expect(accountName).toHaveValue(account);
  await page.getByRole("checkbox", { name: "manager" }).check();
  await page.getByRole("button", { name: "Create service account" }).click();

  const section = page.locator(`[data-testid=service-account][data-name="${account}"]`);
  await expect(section.getByRole("heading", { name: account, exact: true, level: 2 })).toBeVisible();
  await section.getByLabel("Name").fill("deploys");
  await section.getByRole("button", { name: "Issue token" }).click();
  await expect(section.getByTestId("new-token")).toContainText("you won't see this again");
  const secret = await section.getByTestId("token-secret").inputValue();
  expect(secret).toMatch(/^berth_sat_[0-9a-f]{64}$/);
  await accessible(page);

  const who = await request.get("/api/v1/whoami", { headers: { Authorization: `Bearer ${secret}` } });
  expect(who.status()).toBe(200);
  expect((await who.json()).name).toBe(account);

  // Disabled, its token is refused at the next call.
  await section.getByRole("button", { name: `Disable ${account}` }).click();
  await expect(section.getByTestId("account-disabled")).toBeVisible();
  const after = await request.get("/api/v1/whoami", { headers: { Authorization: `Bearer ${secret}` } });
  expect(after.status()).toBe(401);

  expect(problems).toEqual([]);
  await ctx.close();
});
