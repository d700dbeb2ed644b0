// Single sign-on through the real local identity provider's login form, on the Berth that has
// single sign-on only (project `sso`, baseURL SSO_URL); and each server offers one way to sign in.
import { test, expect } from "@playwright/test";
import { DEV_URL, SSO_URL, hydrated, watchConsole } from "./helpers.mjs";

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
  await expect(page).toHaveURL(`${SSO_URL}/`);
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

test("a person whose sessions an admin ended is told why before signing in again", async ({ browser }) => {
  const mariaCtx = await browser.newContext();
  const maria = await mariaCtx.newPage();
  await ssoSignIn(maria, "maria", "maria-demo");
  await expect(maria.getByTestId("who")).toHaveText("Maria Manager");

  const adaCtx = await browser.newContext();
  const ada = await adaCtx.newPage();
  await ssoSignIn(ada, "ada", "ada-demo");
  await expect(ada.getByTestId("who")).toHaveText("Ada Admin");
  const sameOrigin = { "Sec-Fetch-Site": "same-origin" };
  // Her id as this server knows her (the development server's demo Maria shares the database).
  const person = (await (await maria.request.post("/api/whoami", { headers: sameOrigin })).json()).id;
  const ended = await ada.request.post("/api/end_sessions", { headers: sameOrigin, form: { person } });
  expect(ended.status()).toBe(200);

  // Her next page sends her to Berth's sign-in page, which says why, instead of straight
  // through the provider (whose session would sign her in again without a word).
  await maria.goto("/requests/new");
  await expect(maria).toHaveURL(/\/login\?return_to=/);
  await expect(maria.getByTestId("sign-in-ended")).toHaveText(
    "An administrator ended your session. Sign in again to continue.",
  );
  await maria.getByRole("link", { name: "Sign in with single sign-on" }).click();
  await expect(maria).toHaveURL(`${SSO_URL}/requests/new`);
  await expect(maria.getByTestId("who")).toHaveText("Maria Manager");
  await mariaCtx.close();
  await adaCtx.close();
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

test("the single sign-on server offers and accepts no development sign-in; the other no single sign-on", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const problems = watchConsole(page);
  await page.goto("/login");
  await hydrated(page);
  await expect(page.getByRole("link", { name: "Sign in with single sign-on" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Development sign-in" })).toHaveCount(0);
  await expect(page.locator("form[action='/auth/dev-login']")).toHaveCount(0);
  await expect(page.getByRole("button", { name: /^Ada Admin/ })).toHaveCount(0);
  expect(problems).toEqual([]);

  // A real demo account of the shared database, as the development server lists it...
  const options = await page.request.post(`${DEV_URL}/api/sign_in_options`, {
    headers: { "Sec-Fetch-Site": "same-origin", Accept: "application/json" },
  });
  expect(options.ok(), await options.text()).toBe(true);
  const { sso, demo_users } = await options.json();
  expect(sso).toBe(false);
  const ada = demo_users.find((u) => u.name === "Ada Admin");
  expect(ada).toBeTruthy();
  // ...is refused here: the single sign-on server has no development sign-in at all.
  const res = await page.request.post("/auth/dev-login", {
    form: { user_id: ada.id, return_to: "/" },
    headers: { "Sec-Fetch-Site": "same-origin" },
    maxRedirects: 0,
  });
  expect(res.status()).toBe(404);
  const who = await page.request.post("/api/whoami", { headers: { "Sec-Fetch-Site": "same-origin" } });
  expect((await who.text()).trim()).toBe("null");
  const here = await page.request.post("/api/sign_in_options", {
    headers: { "Sec-Fetch-Site": "same-origin", Accept: "application/json" },
  });
  expect(await here.json()).toEqual({ sso: true, demo_users: [], ended: null });

  // The development server's sign-in page offers the demo people, and no single sign-on.
  await page.goto(`${DEV_URL}/login`);
  await hydrated(page);
  await expect(page.getByRole("button", { name: /^Ada Admin/ })).toBeVisible();
  await expect(page.getByRole("link", { name: "Sign in with single sign-on" })).toHaveCount(0);
  const login = await page.request.get(`${DEV_URL}/auth/login`, { maxRedirects: 0 });
  expect(login.status()).toBe(303);
  expect(login.headers()["location"]).toBe("/login");
  const callback = await page.request.get(`${DEV_URL}/auth/callback?code=x&state=y`, { maxRedirects: 0 });
  expect(callback.status()).toBe(404);
  await ctx.close();
});
