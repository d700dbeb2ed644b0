import { writeFile } from "node:fs/promises";
import { expect, test } from "@playwright/test";

/** The Berth with the development sign-in (and no single sign-on), and the one with single
 * sign-on only, on the same database (playwright.config.mjs, tools/test.sh). A context made with
 * `browser.newContext({ baseURL: SSO_URL })` signs in through the identity provider. */
export const DEV_URL = process.env.BERTH_BASE_URL ?? "http://127.0.0.1:3000";
export const SSO_URL = process.env.BERTH_SSO_BASE_URL ?? "http://127.0.0.1:3003";

/** The HTML of each page's latest document, read as it arrives (see watchConsole). */
const lastDocument = new WeakMap();

/** Waits until the WASM has hydrated the page, so clicks reach Leptos. When it never does, the
 * failure carries the page's recent errors (a hydration panic says there what did not match). */
export async function hydrated(page) {
  try {
    await expect(page.locator("body[data-hydrated=true]")).toHaveCount(1);
  } catch (e) {
    const errors = (await page.pageErrors()).map((err) => `pageerror: ${err.message}`);
    const console = (await page.consoleMessages())
      .filter((m) => m.type() === "error" || m.type() === "warning")
      .map((m) => `console.${m.type()}: ${m.text()}`);
    e.message += `\n\nThe page's errors and warnings:\n${[...errors, ...console].join("\n") || "(none)"}`;
    // The HTML the server sent, and the document as it is now, to compare (a hydration error).
    const sent = await lastDocument.get(page);
    if (sent) await writeFile(test.info().outputPath("document-sent.html"), sent);
    await writeFile(test.info().outputPath("document-now.html"), await page.content());
    throw e;
  }
}

/** Fails the test on any console error or uncaught exception in the page. */
export function watchConsole(page) {
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("response", (response) => {
    if (response.request().isNavigationRequest() && response.frame() === page.mainFrame()) {
      lastDocument.set(page, response.text().catch(() => undefined));
    }
  });
  return problems;
}

/** Signs in through the development sign-in page as the named demo user. */
export async function devSignIn(page, name) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByRole("button", { name: new RegExp(`^${name}`) }).click();
  await expect(page.getByTestId("who")).toHaveText(name);
}

/** Signs in through the local identity provider's real login form (on a page whose base URL is
 * the single sign-on server, SSO_URL). */
export async function ssoSignIn(page, username, password, displayName) {
  await page.goto("/login");
  await page.getByRole("link", { name: "Sign in with single sign-on" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  if (displayName) await expect(page.getByTestId("who")).toHaveText(displayName);
}
