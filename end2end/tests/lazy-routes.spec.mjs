// Lazy routes (app/src/lib.rs): the environment list needs only the main WASM module; every
// other page's code is a separate part, fetched when the page is first shown, and the page
// hydrates whether it is opened directly or reached by a link.
import { test, expect } from "@playwright/test";
import { devSignIn, hydrated, watchConsole } from "./helpers.mjs";

/** Records the paths of the .wasm files a page fetches. */
function watchWasm(page) {
  const fetched = [];
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path.endsWith(".wasm")) fetched.push(path);
  });
  return fetched;
}

test("the landing page loads only the main module; the other pages load theirs and hydrate", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const wasm = watchWasm(page);

  // Opened directly: the sign-in page (a lazy route) hydrates, its button signs in. (Signed
  // out, every other page sends the visitor to sign in, so sign in first, in another tab.)
  const signIn = await ctx.newPage();
  const signInWasm = watchWasm(signIn);
  await devSignIn(signIn, "Sam Superuser");
  expect(signInWasm.some((p) => p.includes("login_route"))).toBe(true);
  await signIn.close();

  // The landing page needs only the main module.
  await page.goto("/");
  await hydrated(page);
  expect(wasm).toEqual(["/pkg/berth.wasm"]);
  const problems = watchConsole(page);

  // Reached by a link: the request form's part loads, and the form works.
  await page.getByRole("link", { name: "Request a unit" }).click();
  await expect(page.getByRole("heading", { name: "Request a business unit" })).toBeVisible();
  expect(wasm.some((p) => p.includes("new_request_route"))).toBe(true);
  const unit = `Lazy ${Date.now().toString(36)}`;
  await page.getByLabel("Business unit name").fill(unit);
  await page.getByLabel("Owner contact").fill("sam@seaview.example");
  await page.getByRole("button", { name: "Submit request" }).click();
  await expect(page).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("request-status")).toHaveText("submitted");

  // Opened directly: the request page hydrates before it says so, and its button works.
  await page.reload();
  await hydrated(page);
  await page.getByRole("button", { name: "Withdraw this request" }).click();
  await expect(page.getByTestId("request-status")).toHaveText("withdrawn");

  // The environment page, by a link from the list and then directly; the auditors' view directly.
  await page.goto("/");
  await hydrated(page);
  await page.getByRole("link", { name: unit }).click();
  await expect(page.getByTestId("environment-status")).toHaveText("withdrawn");
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("timeline")).toBeVisible();
  await page.goto("/audit");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: /Audit/ })).toBeVisible();

  expect(problems).toEqual([]);
  await ctx.close();
});
