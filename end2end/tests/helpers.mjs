import { expect } from "@playwright/test";

/** Waits until the WASM has hydrated the page, so clicks reach Leptos. */
export async function hydrated(page) {
  await expect(page.locator("body[data-hydrated=true]")).toHaveCount(1);
}

/** Fails the test on any console error or uncaught exception in the page. */
export function watchConsole(page) {
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  return problems;
}

/** Signs in through the development sign-in page as the named demo user. */
export async function devSignIn(page, name) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByRole("button", { name: new RegExp(`^${name}`) }).click();
  await expect(page.getByTestId("who")).toHaveText(name);
}

/** Signs in through the local identity provider's real login form. */
export async function ssoSignIn(page, username, password, displayName) {
  await page.goto("/login");
  await page.getByRole("link", { name: "Sign in with single sign-on" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  if (displayName) await expect(page.getByTestId("who")).toHaveText(displayName);
}
