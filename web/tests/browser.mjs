// Drives the demo page in headless Chromium: uploads a document, waits for the
// text and word boxes, saves a screenshot, then checks that rejections explain
// themselves. Prints what it saw as one JSON object.
//
//   node tests/browser.mjs PAGE_URL DOCUMENT OUTPUT_DIR OTHER_TOKEN ELSEWHERE_URL
//
// ELSEWHERE_URL serves the same page from another origin (as a user serves
// web/ for a deployed stack): it must reach the API named in its address, or
// in its form, across origins.
// The stack is expected to limit uploads to 150000 bytes and job creation to
// 3 a minute per user; OTHER_TOKEN is another user's, for the burst.
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { chromium } from "playwright-core";

const [pageUrl, documentPath, outDir, otherToken, elsewhereUrl] = process.argv.slice(2);
if (!pageUrl || !documentPath || !outDir || !otherToken || !elsewhereUrl) {
  console.error("usage: node tests/browser.mjs PAGE_URL DOCUMENT OUTPUT_DIR OTHER_TOKEN ELSEWHERE_URL");
  process.exit(2);
}

// Every wait below is for a condition the page shows, under one generous ceiling:
// the tests run beside others that load both cores (Tesseract, a 429 storm), and
// a wait that is only slow must not fail.
const CEILING = 180_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = {};
// A page in a browser context of its own (its own storage), whose every wait
// and action, and those of other pages opened in its context, run under the ceiling.
async function open(options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(CEILING);
  return context.newPage();
}
try {
  // First visit without the token in the address: the page asks for one.
  const stranger = await open();
  await stranger.goto(new URL("/", pageUrl).href);
  await stranger.waitForSelector("#auth:not([hidden])");
  seen.asks_for_token = true;
  await stranger.close();

  const page = await open({ viewport: { width: 1280, height: 1100 } });
  // File choosers are intercepted from the start. Playwright switches
  // interception on when the first listener is added, by a protocol call it
  // does not wait for: added just before a key press, that call can reach the
  // browser after the press, and the chooser then opens unseen. Listening from
  // the page's first moment, interception is in place long before the press.
  page.on("filechooser", () => {});
  page.on("console", (message) => console.error(`[page] ${message.text()}`));
  page.on("pageerror", (error) => console.error(`[page error] ${error.message}`));
  await page.goto(pageUrl);

  // Every value the progress label takes.
  await page.evaluate(() => {
    window.progressSeen = [];
    new MutationObserver(() => window.progressSeen.push(document.getElementById("progress-label").textContent))
      .observe(document.getElementById("progress-label"), { childList: true, characterData: true, subtree: true });
  });

  await page.setInputFiles("#file", documentPath);
  await page.waitForSelector('#status[data-status="completed"]');
  await page.waitForSelector("#boxes .box");
  seen.progress = await page.textContent("#progress-label");
  seen.progress_events = (await page.evaluate(() => window.progressSeen)).length;
  seen.status = await page.getAttribute("#status", "data-status");
  seen.text = await page.textContent("#text");
  seen.document_type = await page.textContent("#document-type");
  seen.confidence = await page.textContent("#confidence");
  seen.boxes = await page.locator("#boxes .box").count();
  seen.review = (await page.isVisible("#review")) ? await page.textContent("#review") : null;
  seen.screenshot = join(outDir, `${basename(documentPath).replace(/\.[^.]+$/, "")}.png`);
  await page.screenshot({ path: seen.screenshot, fullPage: true });

  // Only the page's own scripts run: one injected into it is refused.
  seen.injected_script_ran = await page.evaluate(() => new Promise((resolve) => {
    document.addEventListener("securitypolicyviolation", () => resolve(window.injected === true), { once: true });
    const script = document.createElement("script");
    script.textContent = "window.injected = true";
    document.body.append(script);
  }));

  // A PDF cut in half: accepted as a PDF, uploaded, then rejected by ingest.
  const pdf = await readFile(new URL("../../tests/fixtures/documents/contract.pdf", import.meta.url));
  await page.setInputFiles("#file", { name: "cut.pdf", mimeType: "application/pdf", buffer: pdf.subarray(0, pdf.length >> 1) });
  await page.waitForSelector('#status[data-status="rejected"]');
  await page.waitForSelector("#error:not([hidden])");
  seen.rejected = { code: await page.getAttribute("#error", "data-code"), text: await page.textContent("#error") };
  await page.screenshot({ path: join(outDir, "rejected.png"), fullPage: true });

  // A text file: refused by the API before any upload.
  await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await page.waitForFunction(() => document.getElementById("error").dataset.code === "unsupported_type");
  seen.unsupported = { code: await page.getAttribute("#error", "data-code"), text: await page.textContent("#error") };

  // A file is declared as what its bytes are: a PNG named .jpg, a PDF with no
  // extension; bytes of no accepted type keep the browser's guess.
  seen.sniffed = await page.evaluate(async () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    return [
      await sniffType(new File([png], "photo.jpg", { type: "image/jpeg" })),
      await sniffType(new File(["%PDF-1.7\n"], "scan", { type: "" })),
      await sniffType(new File(["hello"], "notes.txt", { type: "text/plain" })),
    ];
  });

  // A long PDF's progress, as the page renders each poll of a job read in chunks.
  seen.chunked_status = await page.evaluate(() => {
    setJobStatus({ status: "processing", pages: 250, pages_done: 100 });
    return document.getElementById("status").textContent;
  });

  // A file over the size limit: refused at creation, nothing uploaded.
  await page.setInputFiles("#file", { name: "big.pdf", mimeType: "application/pdf", buffer: pdf });
  await page.waitForFunction(() => document.getElementById("error").dataset.code === "file_too_large");
  seen.too_large = { code: await page.getAttribute("#error", "data-code"), text: await page.textContent("#error") };

  seen.recent = await page.locator("#recent li").count();

  // The drop zone opens the file chooser from the keyboard.
  await page.focus("#drop");
  await page.evaluate(() => {
    window.fileInputClicks = 0;
    document.getElementById("file").addEventListener("click", () => window.fileInputClicks++);
  });
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.keyboard.press("Enter")]);
  seen.keyboard_file_chooser = Boolean(chooser) && (await page.evaluate(() => window.fileInputClicks)) === 1;

  // Search: a word of the text just read finds its job, with the passage
  // around it; a phrase in no document finds nothing, and says so.
  const word = seen.text.split(/\s+/).filter((w) => /[가-힣]/.test(w)).sort((a, b) => b.length - a.length)[0];
  await page.fill("#query", word);
  const searched = page.waitForResponse((r) => r.url().includes("/v1/jobs?") && r.url().includes("q="));
  await page.press("#query", "Enter");
  await searched;
  await page.waitForSelector("#recent .snippet");
  seen.search = {
    word,
    hits: await page.locator("#recent li").count(),
    snippet: await page.textContent("#recent .snippet"),
    note: await page.textContent("#recent-note"),
  };
  await page.screenshot({ path: join(outDir, "search.png"), fullPage: true });
  await page.fill("#query", "없는말없는말");
  await page.press("#query", "Enter");
  await page.waitForFunction(() => document.getElementById("recent").textContent.includes("nothing found"));
  seen.search_none = await page.textContent("#recent");
  // A hit opens from the keyboard as from a click.
  await page.fill("#query", word);
  await page.press("#query", "Enter");
  await page.waitForSelector("#recent .snippet");
  await page.focus("#recent li");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#result:not([hidden])");
  seen.opened_by_keyboard = (await page.textContent("#text")).includes(word);

  // A link naming another API, with no token: the page keeps the token it has
  // for its own API, sends it nowhere else, and asks for a token for that API.
  // Opened in a tab of the same browser, which holds the page's saved token.
  const hostile = "http://127.0.0.1:9";
  const toHostile = [];
  const linked = await page.context().newPage();
  linked.on("request", (r) => {
    if (r.url().startsWith(hostile)) toHostile.push({ url: r.url(), authorization: r.headers().authorization ?? null });
  });
  await linked.goto(new URL(`/#api=${encodeURIComponent(hostile)}`, pageUrl).href);
  await linked.waitForSelector("#auth:not([hidden])");
  seen.hostile_link = {
    api: await linked.inputValue("#api"),
    token: await linked.inputValue("#token"),
  };
  // Opened again without the link, the page reads its own API as before.
  await linked.goto(new URL("/", pageUrl).href);
  await linked.waitForSelector("#recent li .name");
  seen.hostile_link.own_api_still_read = await linked.locator("#recent li").count();
  seen.hostile_link.requests = toHostile;
  await linked.close();

  // The page served elsewhere reaches the API its address names (CORS), and
  // one given in its form.
  const api = new URL(pageUrl).origin;
  const token = new URL(pageUrl).hash.match(/token=([^&]+)/)[1];
  const elsewhere = await open();
  elsewhere.on("pageerror", (error) => console.error(`[elsewhere page error] ${error.message}`));
  await elsewhere.goto(`${elsewhereUrl}#api=${encodeURIComponent(api)}&token=${token}`);
  await elsewhere.waitForSelector("#recent li .name");
  seen.elsewhere = { origin: new URL(elsewhereUrl).origin, recent: await elsewhere.locator("#recent li").count() };
  await elsewhere.evaluate(() => localStorage.clear());
  await elsewhere.goto(elsewhereUrl);
  await elsewhere.waitForSelector("#auth:not([hidden])");
  await elsewhere.fill("#api", api);
  await elsewhere.fill("#token", token);
  await elsewhere.press("#token", "Enter");
  await elsewhere.waitForSelector("#recent li .name");
  seen.elsewhere.by_form = await elsewhere.locator("#recent li").count();
  await elsewhere.close();

  // Another user opens jobs in a row until one is over the limit of 3 a minute.
  // The limit is counted per calendar minute, and under load a burst can
  // straddle a minute's end: seven choices spread over at most two minutes put
  // four in one of them, so the refusal comes by the seventh, and by the fourth
  // when the burst stays in one minute.
  const burst = await open();
  burst.on("console", (message) => console.error(`[burst page] ${message.text()}`));
  burst.on("pageerror", (error) => console.error(`[burst page error] ${error.message}`));
  await burst.goto(new URL(`/#token=${otherToken}`, pageUrl).href);
  const second = new Date().getSeconds();
  if (second > 45) await new Promise((resolve) => setTimeout(resolve, (61 - second) * 1000));
  const receipt = await readFile(documentPath);
  const minutes = new Set();
  let chosen = 0;
  while (chosen < 7) {
    // Each choice's creation answered before the next choice: every one is
    // known to have reached the API, in order.
    const created = burst.waitForResponse((r) => r.url().endsWith("/v1/jobs") && r.request().method() === "POST");
    await burst.setInputFiles("#file", { name: `receipt-${chosen}.png`, mimeType: "image/png", buffer: receipt });
    const response = await created;
    minutes.add(new Date().getUTCMinutes());
    chosen++;
    if (response.status() === 429) break;
  }
  await burst.waitForFunction(() => document.getElementById("error").dataset.code === "rate_limited")
    .catch(async (error) => {
      await burst.screenshot({ path: join(outDir, "rate-limited-failed.png"), fullPage: true });
      console.error(`burst page: error=${await burst.textContent("#error")} recent=${await burst.textContent("#recent")}`);
      throw error;
    });
  seen.burst = { chosen, minutes: minutes.size };
  seen.rate_limited = { code: await burst.getAttribute("#error", "data-code"), text: await burst.textContent("#error") };
  await burst.screenshot({ path: join(outDir, "rate-limited.png"), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
