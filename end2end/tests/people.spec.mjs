// The admins' People page: everyone who signed in with their roles and open sessions; an admin
// ends every session of a person, whose browsers are then signed out. The page passes axe's
// WCAG A/AA checks.
import { test, expect } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { devSignIn, hydrated, watchConsole } from "./helpers.mjs";

async function accessible(page) {
  const { violations } = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  expect(violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(", ")}`)).toEqual([]);
}

test("an admin ends every session of a person", async ({ browser }) => {
  // Mark signs in twice (two browsers).
  const marks = [];
  for (let i = 0; i < 2; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await devSignIn(page, "Mark Manager");
    marks.push(page);
  }

  const admin = await (await browser.newContext()).newPage();
  await devSignIn(admin, "Alan Admin");
  const problems = watchConsole(admin);
  await admin.getByRole("link", { name: "People" }).click();
  await expect(admin.getByRole("heading", { name: "People", level: 1 })).toBeVisible();
  await hydrated(admin);
  await accessible(admin);
  const row = admin.getByRole("row").filter({ hasText: "Mark Manager" });
  const open = Number(await row.getByTestId("open-sessions").textContent());
  expect(open).toBeGreaterThanOrEqual(2);

  await row.getByRole("button", { name: "End sessions of Mark Manager" }).click();
  await expect(admin.getByTestId("sessions-ended")).toHaveText(`${open} sessions ended.`);
  await expect(row.getByTestId("open-sessions")).toHaveText("0");
  await expect(row.getByRole("button")).toHaveCount(0);
  await accessible(admin);

  // Each of Mark's browsers is signed out at its next page load.
  for (const page of marks) {
    await page.goto("/tokens");
    await expect(page).toHaveURL(/\/login(\?|$)/);
  }
  // The admin is still signed in.
  await admin.reload();
  await expect(admin.getByTestId("who")).toHaveText("Alan Admin");
  expect(problems).toEqual([]);
});
