// Playwright drives Debian's Chromium; the servers are started by tools/test.sh, not here.
// Project `apps` runs every spec against the Berth whose worker installs through Apps &
// Marketplace; project `legacy` runs the lifecycle spec again against a second Berth whose worker
// installs legacy catalog apps (BERTH_RANCHER_LEGACY_CATALOG), so every lifecycle operation is
// seen working in both Rancher modes. Both have the development sign-in and no single sign-on;
// project `sso` runs the single sign-on spec against a third Berth that has single sign-on only
// (no worker of its own, the same database as the first: tools/test.sh), which the sign-in parts
// of other specs reach through SSO_URL (helpers.mjs).
import { defineConfig } from "@playwright/test";

const baseURL = process.env.BERTH_BASE_URL ?? "http://127.0.0.1:3000";
const legacyURL = process.env.BERTH_LEGACY_BASE_URL ?? "http://127.0.0.1:3001";
const ssoURL = process.env.BERTH_SSO_BASE_URL ?? "http://127.0.0.1:3003";

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  reporter: [["list"]],
  projects: [
    { name: "apps", testIgnore: /sso\.spec\.mjs$/, use: { baseURL } },
    { name: "legacy", testMatch: /lifecycle\.spec\.mjs$/, use: { baseURL: legacyURL } },
    { name: "sso", testMatch: /sso\.spec\.mjs$/, use: { baseURL: ssoURL } },
  ],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
