// An environment's whole life, in the browser, once per Rancher mode (the `apps` project runs it
// against a Berth whose worker installs through Apps & Marketplace, the `legacy` project against
// one that installs legacy catalog apps; playwright.config.mjs): set up; changed from medium to
// large with an InfluxDB override, the plan showing the diff and only the apps whose values
// changed upgraded; a change whose DSM upgrade fails (simulator fault) rolled back to the
// previous revisions with the environment ready on its old spec; an admin's return to the
// previous spec; decommissioned with the proof; the name requested again and set up anew.
import { test, expect } from "@playwright/test";
import { devSignIn, hydrated, watchConsole } from "./helpers.mjs";

const SIM = process.env.BERTH_RANCHER_URL ?? "http://127.0.0.1:8444";

/** Sets the simulator's faults (all others off). */
async function faults(request, body) {
  const res = await request.put(`${SIM}/__sim/faults`, { data: body });
  expect(res.status()).toBe(204);
}

/** The Helm revisions of one release in the simulator, oldest first ([] when there is none). */
async function revisions(request, namespace, release) {
  const res = await request.get(`${SIM}/__sim/releases/${namespace}/${release}/history`);
  if (res.status() === 404) return [];
  expect(res.ok()).toBe(true);
  return res.json();
}

/** Opens a request as an admin, waits for its plan, checks it with `check`, and approves it. */
async function approve(admin, href, check = async () => {}) {
  await admin.goto(href);
  await hydrated(admin);
  const plan = admin.getByTestId("plan");
  // The plan is computed by the worker after the request is made; the live stream brings it.
  await expect(plan).toHaveAttribute("data-plan-status", "ready", { timeout: 60_000 });
  await check(plan);
  await admin.getByRole("button", { name: "Approve" }).click();
  await expect(admin.getByTestId("request-status")).toHaveText(/approved|provisioning|ready|failed/);
}

/** Asks for a unit through the form; returns the request page's address. */
async function requestUnit(manager, unit) {
  await manager.goto("/requests/new");
  await hydrated(manager);
  await manager.getByLabel("Business unit name").fill(unit);
  await manager.getByLabel("Owner contact").fill("maria@seaview.example");
  await manager.getByLabel("Size").selectOption("medium");
  await manager.getByRole("button", { name: "Submit request" }).click();
  await expect(manager).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  return new URL(manager.url()).pathname;
}

/** The environment page of a request, opened and hydrated. */
async function environmentOf(page, requestHref) {
  await page.goto(requestHref);
  await page.getByRole("link", { name: /Environment page and timeline/ }).click();
  await expect(page).toHaveURL(/\/environments\/[0-9a-f-]{36}$/);
  await hydrated(page);
  return new URL(page.url()).pathname;
}

/** Waits for the latest request of the open environment page to end `status`. */
async function latestRequestEnds(page, status, timeout = 180_000) {
  await expect(page.getByTestId("requests").locator("li").first()).toHaveAttribute("data-status", status, { timeout });
}

test("an environment's whole life: set up, changed, a failed change rolled back, returned, decommissioned, its name used again", async ({ browser }, info) => {
  test.setTimeout(900_000);
  const mode = info.project.name;
  const unit = `Life ${mode} ${Date.now().toString(36)}`;

  const managerCtx = await browser.newContext();
  const manager = await managerCtx.newPage();
  await devSignIn(manager, "Maria Manager");
  const managerProblems = watchConsole(manager);
  const adminCtx = await browser.newContext();
  const admin = await adminCtx.newPage();
  await devSignIn(admin, "Ada Admin");
  const adminProblems = watchConsole(admin);
  await faults(manager.request, {});

  // --- set up: medium ---
  const create = await requestUnit(manager, unit);
  const envPage = await environmentOf(manager, create);
  const slug = (await manager.locator("dd code").first().textContent()).trim();
  const ns = `seaview-${slug}`;
  await approve(admin, create);
  await manager.goto(envPage);
  await hydrated(manager);
  await expect(manager.getByTestId("environment-status")).toHaveText("ready", { timeout: 180_000 });
  const apps = ["foundation", "certs", "influxdb", "dsm"];
  for (const app of apps) {
    expect((await revisions(manager.request, ns, app)).map((r) => r.revision), app).toEqual([1]);
  }
  const life = manager.getByTestId("environment-life");
  await expect(life.getByTestId("releases").locator("tr[data-app]")).toHaveCount(4);
  // Never changed: nothing to return to.
  await expect(life.getByTestId("return")).toHaveCount(0);

  // --- a change: medium → large, an InfluxDB retention ---
  await life.getByRole("link", { name: "Request a change" }).click();
  await hydrated(manager);
  await expect(manager.getByLabel("Business unit name")).toHaveAttribute("readonly", "");
  // A value outside the blueprint's schema is refused next to its field; nothing is stored.
  await manager.getByLabel("Data retention (influxdb)").fill("forever");
  await manager.getByRole("button", { name: "Request the change" }).click();
  await expect(manager.getByTestId("overrides.influxdb.retention-error")).toContainText("30d");
  await manager.getByLabel("Size", { exact: true }).selectOption("large");
  await manager.getByLabel("Data retention (influxdb)").fill("30d");
  await manager.getByRole("button", { name: "Request the change" }).click();
  await expect(manager).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  const change = new URL(manager.url()).pathname;

  // The plan shows only what differs: the fields, the quota, each app's action and values diff.
  await approve(admin, change, async (plan) => {
    const fields = plan.getByTestId("plan-fields");
    await expect(fields.getByRole("row", { name: /^size / })).toContainText(/Medium.*Large/);
    await expect(fields.locator("tr", { hasText: "overrides.influxdb.retention" })).toContainText(/\(default\).*30d/);
    // The storage size the form showed (medium's default) follows the new size's default.
    await expect(fields.locator("tr", { hasText: "storage_size" })).toHaveCount(0);
    await expect(plan.getByTestId("plan-quota")).toContainText("→");
    const app = (name) => plan.locator(`[data-testid=plan-app][data-app=${name}]`);
    await expect(app("certs")).toHaveAttribute("data-action", "unchanged");
    for (const name of ["foundation", "influxdb", "dsm"]) {
      await expect(app(name)).toHaveAttribute("data-action", "upgrade");
    }
    await expect(app("influxdb").locator("pre")).toContainText(/\+\s+duration: "?30d"?/);
    await expect(app("dsm").locator("pre")).toContainText(/\+replicaCount: "?4"?/);
  });
  await manager.goto(envPage);
  await hydrated(manager);
  await latestRequestEnds(manager, "ready");
  // Only the apps whose values changed were upgraded: revision 2 for those, 1 for the others.
  const now = {};
  for (const app of apps) now[app] = (await revisions(manager.request, ns, app)).map((r) => r.revision);
  expect(now).toEqual({ foundation: [1, 2], certs: [1], influxdb: [1, 2], dsm: [1, 2] });
  await manager.reload();
  await hydrated(manager);
  await expect(manager.locator("dl.facts").first()).toContainText("Large");
  await expect(life.locator("tr[data-app=influxdb] [data-testid=revision]")).toHaveText("2");
  await expect(life.locator("tr[data-app=certs] [data-testid=revision]")).toHaveText("1");

  // --- a change whose DSM upgrade fails: rolled back, ready on the old spec ---
  await faults(manager.request, { fail_upgrades: { dsm: "Helm upgrade failed: simulated DSM failure" } });
  try {
    await life.getByRole("link", { name: "Request a change" }).click();
    await hydrated(manager);
    await manager.getByLabel("Data retention (influxdb)").fill("90d");
    await manager.getByLabel("DSM replicas (dsm)").fill("6");
    await manager.getByRole("button", { name: "Request the change" }).click();
    await expect(manager).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
    const failing = new URL(manager.url()).pathname;
    await approve(admin, failing);
    await manager.goto(envPage);
    await hydrated(manager);
    await latestRequestEnds(manager, "failed");
  } finally {
    await faults(manager.request, {});
  }
  await expect(manager.getByTestId("environment-status")).toHaveText("ready");
  // influxdb was upgraded in the run (revision 3) and rolled back to revision 2 (as revision 4);
  // dsm's upgrade failed (revision 3) and was rolled back too; nothing else was touched.
  const influx = await revisions(manager.request, ns, "influxdb");
  expect(influx.map((r) => r.revision)).toEqual([1, 2, 3, 4]);
  expect(influx.at(-1).values.retentionPolicy?.duration, JSON.stringify(influx.at(-1).values)).toBe("30d");
  expect((await revisions(manager.request, ns, "certs")).map((r) => r.revision)).toEqual([1]);
  expect((await revisions(manager.request, ns, "foundation")).map((r) => r.revision)).toEqual([1, 2]);
  // The timeline, filtered to the rollback (it is pages long by now).
  await manager.goto(`${envPage}?kind=run.rolled_back`);
  await hydrated(manager);
  const rolledBack = manager.getByTestId("timeline").locator("li[data-kind='run.rolled_back']");
  await expect(rolledBack).toContainText("change failed at dsm: ");
  await expect(rolledBack).toContainText(/rolled back dsm to revision 2, influxdb to revision 2/);
  await expect(manager.locator("dl.facts").first()).toContainText("Large");

  // --- an admin asks to return to the spec before the last applied change: medium ---
  await admin.goto(envPage);
  await hydrated(admin);
  const back = admin.getByTestId("return");
  await expect(back).toContainText("size Medium");
  await back.getByRole("button", { name: "Return to the previous spec" }).click();
  await expect(admin).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  const returning = new URL(admin.url()).pathname;
  // The admin who asked cannot approve it; another admin does, after reading the plan.
  await hydrated(admin);
  await expect(admin.getByTestId("no-decision")).toBeVisible();
  const alanCtx = await browser.newContext();
  const alan = await alanCtx.newPage();
  await devSignIn(alan, "Alan Admin");
  await approve(alan, returning, async (plan) => {
    const fields = plan.getByTestId("plan-fields");
    await expect(fields.getByRole("row", { name: /^size / })).toContainText(/Large.*Medium/);
    await expect(fields.locator("tr", { hasText: "overrides.influxdb.retention" })).toContainText(/30d.*\(default\)/);
  });
  await manager.goto(envPage);
  await hydrated(manager);
  await latestRequestEnds(manager, "ready");
  await manager.reload();
  await expect(manager.locator("dl.facts").first()).toContainText("Medium");

  // --- decommission: the typed name must match; the proof records each check ---
  await hydrated(manager);
  await life.getByRole("link", { name: "Decommission" }).click();
  await hydrated(manager);
  await manager.getByLabel(/Type .* to confirm/).fill(slug);
  await manager.getByRole("button", { name: "Request decommission" }).click();
  await expect(manager.getByTestId("confirm-error")).not.toBeEmpty();
  await manager.getByLabel(/Type .* to confirm/).fill(unit);
  await manager.getByRole("button", { name: "Request decommission" }).click();
  await expect(manager).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  const decommission = new URL(manager.url()).pathname;
  await approve(alan, decommission, async (plan) => {
    await expect(plan.getByTestId("plan-removal")).toContainText(`seaview-${slug}`);
    await expect(plan.getByTestId("plan-retained")).toContainText("DataBucket");
  });
  await manager.goto(envPage);
  await hydrated(manager);
  await expect(manager.getByTestId("environment-status")).toHaveText("decommissioned", { timeout: 240_000 });
  await manager.goto(`${envPage}?kind=decommissioned`);
  const proof = manager.getByTestId("timeline").locator("li[data-kind='decommissioned']");
  await expect(proof).toContainText(/(\d+) of \1 checks passed/);
  for (const app of apps) {
    const history = await revisions(manager.request, ns, app);
    expect(history.filter((r) => r.status === "deployed"), app).toEqual([]);
  }
  // The list filters decommissioned environments.
  await manager.goto("/?status=decommissioned");
  await hydrated(manager);
  await expect(manager.getByTestId("environments")).toContainText(unit);
  await manager.goto("/?status=ready");
  await hydrated(manager);
  await expect(manager.getByText(unit, { exact: true })).toHaveCount(0);

  // --- the name is free again: requested, approved and set up anew ---
  const again = await requestUnit(manager, unit);
  const againPage = await environmentOf(manager, again);
  expect(againPage).not.toBe(envPage);
  await expect(manager.locator("dd code").first()).toHaveText(slug);
  await approve(admin, again);
  await manager.goto(againPage);
  await hydrated(manager);
  await expect(manager.getByTestId("environment-status")).toHaveText("ready", { timeout: 180_000 });

  // The two refused submissions above (a retention outside the schema, a wrong typed name) are
  // answered 422, which the browser logs; anything else in the console is a problem.
  const refused = managerProblems.filter((p) => p.includes("status of 422"));
  expect(refused).toHaveLength(2);
  expect(managerProblems.filter((p) => !refused.includes(p))).toEqual([]);
  expect(adminProblems).toEqual([]);
  await managerCtx.close();
  await adminCtx.close();
  await alanCtx.close();
});
