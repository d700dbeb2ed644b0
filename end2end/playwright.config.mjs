// Playwright drives Debian's Chromium; the servers are started by tools/test.sh, not here.
// Project `apps` runs every spec against the Berth whose worker installs through Apps &
// Marketplace; project `legacy` runs the lifecycle spec again against a second Berth whose worker
// installs legacy catalog apps (BERTH_RANCHER_LEGACY_CATALOG), so every lifecycle operation is
// seen working in both Rancher modes.
import { defineConfig } from "@playwright/test";

const baseURL = process.env.BERTH_BASE_URL ?? "http://127.0.0.1:3000";
const legacyURL = process.env.BERTH_LEGACY_BASE_URL ?? "http://127.0.0.1:3001";

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
    { name: "apps", use: { baseURL } },
    { name: "legacy", testMatch: /lifecycle\.spec\.mjs$/, use: { baseURL: legacyURL } },
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
