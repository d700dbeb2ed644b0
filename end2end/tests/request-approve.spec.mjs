// The whole slice, signed in through the local identity provider: a manager requests a business
// unit, an admin approves it, the manager watches it provisioned live (AWS emulator + Rancher
// simulator) to all four charts deployed in order; the requester cannot approve their own
// request; the auditor reads the history and can change nothing. Those three use the Berth with
// single sign-on only (SSO_URL), which shares its database with the development one, whose worker
// plans and provisions; the other tests use the development sign-in there.
import { test, expect } from "@playwright/test";
import { SSO_URL, devSignIn, hydrated, ssoSignIn, watchConsole } from "./helpers.mjs";

test("request → approve → live provisioning → timeline, with separation of duties", async ({ browser }) => {
  test.setTimeout(240_000);
  const unit = `Trucking ${Date.now().toString(36)}`;

  // --- the manager, in one browser context ---
  const managerCtx = await browser.newContext({ baseURL: SSO_URL });
  const manager = await managerCtx.newPage();
  await ssoSignIn(manager, "maria", "maria-demo", "Maria Manager");
  const managerProblems = watchConsole(manager);

  await manager.getByRole("link", { name: "Request a unit" }).click();
  await expect(manager.getByRole("heading", { name: "Request a business unit" })).toBeVisible();
  await hydrated(manager);

  // An invalid name is refused next to the field, and nothing is stored.
  await manager.getByLabel("Business unit name").fill("Trucking!");
  await manager.getByLabel("Owner contact").fill("maria@seaview.example");
  await manager.getByRole("button", { name: "Submit request" }).click();
  await expect(manager.getByTestId("name-error")).toContainText("'!' is not allowed");

  // Fixed, it goes through and lands on the request page.
  await manager.getByLabel("Business unit name").fill(unit);
  await expect(manager.getByLabel("Short name")).toHaveValue(/^trucking-/);
  await manager.getByLabel("Description").fill("Fleet telemetry for the trucking division.");
  await manager.getByLabel("Size").selectOption("medium");
  await manager.getByRole("button", { name: "Submit request" }).click();
  await expect(manager).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  await expect(manager.getByTestId("request-status")).toHaveText("submitted");
  // The requester gets no approve button, and is told why.
  await expect(manager.getByTestId("no-decision")).toContainText("An admin reviews this request");
  await expect(manager.getByRole("button", { name: "Approve" })).toHaveCount(0);
  const requestUrl = manager.url();
  // The requester's own direct call of the approve server function is refused.
  const own = await manager.request.post("/api/decide_request", {
    form: { id: requestUrl.split("/").pop(), decision: "approve", note: "" },
    headers: { "Sec-Fetch-Site": "same-origin" },
  });
  expect(own.status()).toBe(403);


  // The manager keeps the environment page open: nothing is provisioned yet, and the page
  // follows the live stream from here on without any reload.
  await manager.getByRole("link", { name: /Environment page and timeline/ }).click();
  await hydrated(manager);
  const panel = manager.getByTestId("provisioning");
  await expect(panel).toHaveAttribute("data-live", "connected");
  await expect(manager.getByTestId("no-run")).toBeVisible();
  const slug = (await manager.locator("dd code").first().textContent()).trim();
  // Record, in the page, each step's statuses in the order the stream showed them.
  await manager.evaluate(() => {
    window.__seen = {};
    const record = () => {
      for (const row of document.querySelectorAll("tr[data-step]")) {
        const list = (window.__seen[row.dataset.step] ??= []);
        if (list[list.length - 1] !== row.dataset.status) list.push(row.dataset.status);
      }
    };
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true });
  });

  // --- an admin, in a separate browser context ---
  const adminCtx = await browser.newContext({ baseURL: SSO_URL });
  const admin = await adminCtx.newPage();
  await ssoSignIn(admin, "ada", "ada-demo", "Ada Admin");
  const adminProblems = watchConsole(admin);
  await admin.goto("/");
  await admin.getByRole("link", { name: unit }).click();
  await expect(admin.getByRole("heading", { name: unit })).toBeVisible();
  await admin.getByRole("link", { name: "create request" }).click();
  await hydrated(admin);
  // The admin reviews the plan the worker computed: the change set, the namespace and quota,
  // the four charts with their versions in order, the capacity line; no secret value.
  const plan = admin.getByTestId("plan");
  await expect(plan).toHaveAttribute("data-plan-status", "ready", { timeout: 60_000 });
  await expect(plan.getByTestId("plan-changes")).toContainText("AWS::SecretsManager::Secret");
  await expect(plan.getByTestId("plan-changes")).toContainText("AWS::IAM::User");
  await expect(plan.getByTestId("plan-kubernetes")).toContainText(`seaview-${slug} (new)`);
  await expect(plan.getByTestId("plan-kubernetes")).toContainText("8 CPU, 16Gi memory, 80 pods");
  await expect(plan.getByTestId("plan-chart")).toHaveText([/foundation.*0\.3\.1/, /certs.*1\.2\.0/, /influxdb.*4\.3\.2/, /dsm.*2\.7\.0/]);
  await expect(plan.getByTestId("capacity")).toContainText("Capacity: fits");
  // The registry password reaches the stack by reference: the plan names its version, never it.
  await expect(plan.getByTestId("plan-parameters")).toContainText("RegistryPasswordVersion");
  expect(await admin.content()).not.toContain(process.env.BERTH_REGISTRY_PASSWORD ?? "local-demo-registry-password");
  const hash = await plan.getAttribute("data-plan-hash");
  expect(hash).toMatch(/^[0-9a-f]{64}$/);
  await admin.getByLabel("Note (optional)").fill("Approved for Q1 rollout.");
  await admin.getByRole("button", { name: "Approve" }).click();
  await expect(admin.getByTestId("request-status")).toHaveText(/approved|provisioning|ready/);
  await expect(admin.getByText("Approved for Q1 rollout.")).toBeVisible();

  // --- the manager watches the provisioning live, to the end ---
  await expect(manager.getByTestId("run")).toBeVisible();
  await expect(manager.getByTestId("run")).toHaveAttribute("data-status", "succeeded", { timeout: 150_000 });
  await expect(manager.getByTestId("environment-status")).toHaveText("ready");
  const charts = ["foundation", "certs", "influxdb", "dsm"];
  for (const app of charts) {
    await expect(manager.locator(`tr[data-step='chart:${app}']`)).toHaveAttribute("data-status", "succeeded");
  }
  await expect(manager.locator("tr[data-step='chart:influxdb']")).toContainText("influxdb 4.3.2");
  await expect(manager.locator("tr[data-step='chart:influxdb']")).toContainText("deployed 4.3.2");
  const seen = await manager.evaluate(() => window.__seen);
  // Each chart was seen waiting or running before it succeeded: the page moved by itself.
  for (const app of charts) {
    const statuses = seen[`chart:${app}`] ?? [];
    expect(statuses.at(-1), `chart:${app}: ${statuses}`).toBe("succeeded");
    expect(statuses.length, `chart:${app} went live through ${statuses}`).toBeGreaterThan(1);
  }
  // The unit's stack, found by its tags: resources listed, never a secret value.
  await expect(manager.getByTestId("stack")).toContainText(slug);
  await expect(manager.getByTestId("stack-resources")).toContainText("AWS::SecretsManager::Secret");
  await expect(manager.getByTestId("stack-resources")).toContainText("AWS::IAM::User");
  expect(await manager.content()).not.toContain(process.env.BERTH_REGISTRY_PASSWORD ?? "local-demo-registry-password");

  // The simulator installed the four charts once each, in dependency order.
  const history = await (await manager.request.get(`${process.env.BERTH_RANCHER_URL ?? "http://127.0.0.1:8444"}/__sim/history`)).json();
  const installs = history.filter((h) => h.namespace.includes(slug)).map((h) => `${h.action}:${h.release}`);
  expect(installs).toEqual(charts.map((c) => `install:${c}`));

  // The timeline holds the decision (who, what) and the run, with actor names.
  await manager.reload();
  const timeline = manager.getByTestId("timeline");
  await expect(timeline.locator("li[data-kind='request.submitted']")).toContainText("Maria Manager");
  await expect(timeline.locator("li[data-kind='request.approved']")).toContainText("Ada Admin");
  await expect(timeline.locator("li[data-kind='request.approved']")).toContainText("Approved for Q1 rollout.");
  // The approval names the plan it bound; the plan's own page shows what was approved.
  await expect(timeline.locator("li[data-kind='request.approved']")).toContainText(`plan ${hash.slice(0, 12)}`);
  await expect(timeline.locator("li[data-kind='run.succeeded']")).toHaveCount(1);
  await timeline.locator("li[data-kind='request.approved']").getByRole("link", { name: "plan" }).click();
  await expect(manager.getByRole("heading", { name: `Plan ${hash.slice(0, 12)}` })).toBeVisible();

  // --- the auditor reads the history and has nothing to click ---
  const auditorCtx = await browser.newContext({ baseURL: SSO_URL });
  const auditor = await auditorCtx.newPage();
  await ssoSignIn(auditor, "audrey", "audrey-demo", "Audrey Auditor");
  await expect(auditor.getByRole("link", { name: "Request a unit" })).toHaveCount(0);
  await auditor.getByRole("link", { name: unit }).click();
  await expect(auditor.getByTestId("timeline").locator("li[data-kind='request.approved']")).toHaveCount(1);
  await expect(auditor.getByTestId("provisioning").getByRole("button")).toHaveCount(0);
  await auditor.getByRole("link", { name: "create request" }).click();
  await expect(auditor.getByTestId("request-status")).toHaveText("ready");
  await expect(auditor.getByRole("button", { name: "Approve" })).toHaveCount(0);
  await expect(auditor.getByRole("button", { name: "Reject" })).toHaveCount(0);

  expect(managerProblems).toEqual([]);
  expect(adminProblems).toEqual([]);
  await managerCtx.close();
  await adminCtx.close();
  await auditorCtx.close();
});

test("the requester's direct call of the approve server function is refused with 403", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  // Sam is both manager and admin: the policy still refuses his own request.
  await devSignIn(page, "Sam Superuser");
  await page.goto("/requests/new");
  await hydrated(page);
  await page.getByLabel("Business unit name").fill(`Charging ${Date.now().toString(36)}`);
  await page.getByLabel("Owner contact").fill("sam@seaview.example");
  await page.getByRole("button", { name: "Submit request" }).click();
  await expect(page).toHaveURL(/\/requests\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("no-decision")).toContainText("cannot decide your own request");
  const id = page.url().split("/").pop();

  const res = await page.request.post("/api/decide_request", {
    form: { id, decision: "approve", note: "" },
    headers: { "Sec-Fetch-Site": "same-origin" },
  });
  expect(res.status()).toBe(403);
  await page.reload();
  await expect(page.getByTestId("request-status")).toHaveText("submitted");
  await ctx.close();
});

test("a user with no role is told politely, and the page reads without JavaScript", async ({ browser }) => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await devSignIn(page, "Nora Nobody");
  await expect(page.getByRole("alert")).toContainText("no Berth role yet");
  await ctx.close();

  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const p = await noJs.newPage();
  await p.goto("/login");
  await p.getByRole("button", { name: /^Audrey Auditor/ }).click();
  await expect(p.getByRole("heading", { name: "Environments" })).toBeVisible();
  await expect(p.getByTestId("environments")).toBeVisible();
  await noJs.close();
});
