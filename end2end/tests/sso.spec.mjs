// Single sign-on through the real local identity provider's login form.
import { test, expect } from "@playwright/test";
import { hydrated, watchConsole } from "./helpers.mjs";

async function ssoSignIn(page, username, password) {
  await page.goto("/login");
  await page.getByRole("link", { name: "Sign in with single sign-on" }).click();
  await expect(page.getByLabel("Username")).toBeVisible();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("a manager signs in through the identity provider and out again", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();

  // A wrong password fails visibly at the provider, and nobody is signed in.
  await ssoSignIn(page, "maria", "wrong-password");
  await expect(page.getByRole("alert")).toContainText("Invalid username or password");

  await page.getByLabel("Password").fill("maria-demo");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL("http://127.0.0.1:3000/");
  await expect(page.getByTestId("who")).toHaveText("Maria Manager");
  // Berth's own pages must be free of console errors (the provider's pages are not ours).
  const problems = watchConsole(page);
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole("link", { name: "Request a unit" })).toBeVisible();

  expect(problems).toEqual([]);

  // Signing out ends Berth's session and the provider's: its logout page sends us back to
  // Berth's first page, which sends whoever is signed out on to sign in, and the provider,
  // its session gone too, asks for the password.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByLabel("Password")).toBeVisible();
  expect(page.url()).toContain("127.0.0.1:4444");
  const who = await page.request.post("/api/whoami", { headers: { "Sec-Fetch-Site": "same-origin" } });
  expect((await who.text()).trim()).toBe("null");
  await ctx.close();
});

test("someone in no mapped group gets the polite no-access notice", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await ssoSignIn(page, "nora", "nora-demo");
  await expect(page.getByTestId("who")).toHaveText("Nora Nobody");
  await expect(page.getByRole("alert")).toContainText("no Berth role yet");
  await ctx.close();
});

test("a tampered callback creates no session", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const res = await page.goto("/auth/callback?code=forged&state=forged&iss=http%3A%2F%2F127.0.0.1%3A4444");
  expect(res.status()).toBe(400);
  await expect(page.getByRole("heading", { name: "Sign-in failed" })).toBeVisible();
  // Still signed out: Berth's first page sends us to sign in.
  await page.goto("/");
  await expect(page.getByLabel("Password")).toBeVisible();
  await ctx.close();
});
