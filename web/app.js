// lambda-ocr demo page: SHA-256 in the browser, create a job, upload to the
// presigned URL with progress, poll with backoff, show text and word boxes.
// Plain JavaScript, no build step: copy what you need.
"use strict";

// The API: the page's own origin (ocr dev serves both), or the one saved with
// the token (#api=https://…execute-api…amazonaws.com&token=…, or the form).
function apiBase() {
  return new URL("/v1/", saved().api || location.href).href;
}
const FINAL = ["completed", "failed", "rejected", "expired"];

const LABELS = {
  // What a page's image showed wrong, as the service names it.
  quality: {
    blurry: "흐립니다 · blurry",
    skewed: "기울어졌습니다 · skewed",
    text_too_small: "글자가 너무 작습니다 · text too small",
    too_dark: "너무 어둡습니다 · too dark",
    glare: "빛이 반사됩니다 · glare",
    cut_off: "잘렸습니다 · cut off",
  },
  status: {
    awaiting_upload: "업로드 대기 · awaiting upload",
    queued: "대기 중 · queued",
    processing: "읽는 중 · reading",
    completed: "완료 · completed",
    failed: "실패 · failed",
    rejected: "거부됨 · rejected",
    expired: "만료 · expired",
  },
  documentType: {
    receipt: "영수증 · receipt",
    business_registration: "사업자등록증 · business registration",
    id_card: "신분증 · ID card",
    contract: "계약서 · contract",
    invoice: "세금계산서 · invoice",
    general: "일반 문서 · general",
  },
  // Readable sentences for every job error code and the API codes the page meets; the API's own
  // message follows. Checked against the service's codes by the test suite.
  error: {
    unsupported_type: "지원하지 않는 파일 형식입니다 · This file type is not supported",
    type_mismatch: "파일 내용이 형식과 다릅니다 · The file's content does not match its type",
    file_too_large: "파일이 너무 큽니다 · The file is too large",
    empty_file: "빈 파일입니다 · The file is empty",
    truncated_file: "파일이 잘렸습니다 · The file is incomplete",
    size_mismatch: "업로드 크기가 다릅니다 · The upload's size differs from the declared size",
    checksum_mismatch: "파일이 전송 중 바뀌었습니다 · The file changed on the way (checksum)",
    image_too_large: "이미지의 픽셀 수가 너무 많습니다 · The image has too many pixels",
    too_many_pages: "PDF의 쪽수가 너무 많습니다 · The PDF has too many pages",
    encrypted_document: "암호로 보호된 PDF입니다 · The PDF is protected by a password",
    rate_limited: "요청이 너무 많습니다 · Too many requests",
    unauthorized: "토큰이 없거나 잘못되었습니다 · Missing or invalid token",
    unsupported_document: "읽을 수 없는 문서 형식입니다 · The OCR engine cannot read this kind of document",
    document_too_large: "문서가 너무 큽니다 · The document is too large for the OCR engine",
    unreadable_document: "문서의 글자를 읽지 못했습니다 · The document could not be read",
    document_too_complex: "문서 구조가 너무 복잡합니다 · The document's structure is too complex to read",
    ocr_unavailable: "OCR 서비스가 응답하지 않았습니다 · The OCR service did not answer",
    ocr_unauthorized: "OCR 서비스가 인증을 거부했습니다 · The OCR service refused our credentials",
    retake_photo: "사진을 읽을 수 없습니다. 다시 찍어 주세요 · The photo cannot be read; please take it again",
    storage_unavailable: "저장소가 응답하지 않았습니다 · Storage did not answer",
    upload_missing: "업로드한 파일이 더 이상 없습니다 · The uploaded file is no longer stored",
    upload_changed: "확인 후 파일이 바뀌었습니다 · The file was replaced after it was checked",
    result_too_large: "읽은 글이 너무 커서 저장할 수 없습니다 · The text read is too large to store",
    upload_expired: "업로드 시간이 지났습니다 · No file arrived before the upload link expired",
  },
};

const $ = (id) => document.getElementById(id);

// ---- the API and the token, kept together in localStorage: a token is only
// ever sent to the API it was given for. They come from the address
// (#token=… for this page's own origin, as ocr dev prints it; #api=…&token=…
// for a deployed stack) or from the form. An address that names an API
// without a token stores nothing: the form opens with that API filled in, and
// the token for it must be given there, so that a link cannot send the token
// kept here to an API of its choosing.
const AUTH = "lambda-ocr-auth";

function saved() {
  try {
    const { api, token } = JSON.parse(localStorage.getItem(AUTH)) ?? {};
    return { api: typeof api === "string" ? api : "", token: typeof token === "string" ? token : "" };
  } catch {
    return { api: "", token: "" };
  }
}

function save(api, token) {
  localStorage.setItem(AUTH, JSON.stringify({ api, token }));
}

let proposedApi = null;
function readAddress() {
  const given = new URLSearchParams(location.hash.slice(1));
  // Keys of earlier versions, which kept the two apart.
  localStorage.removeItem("lambda-ocr-api");
  localStorage.removeItem("lambda-ocr-token");
  if (given.has("token")) save(given.get("api") ?? "", given.get("token"));
  else if (given.has("api")) proposedApi = given.get("api");
  if (given.has("api") || given.has("token")) history.replaceState(null, "", location.pathname);
}
readAddress();

function token() {
  return saved().token;
}

function askForToken() {
  const kept = saved();
  $("api").value = proposedApi ?? kept.api;
  $("token").value = "";
  $("auth").hidden = false;
  $("token").focus();
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  save($("api").value.trim(), $("token").value.trim());
  proposedApi = null;
  $("auth").hidden = true;
  loadRecent();
});

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body) {
  const response = await fetch(apiBase() + path, {
    method,
    headers: {
      authorization: `Bearer ${token() ?? ""}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) askForToken();
    const code = data.error?.code ?? (response.status === 401 ? "unauthorized" : String(response.status));
    const message = data.error?.message ?? data.message ?? response.statusText;
    throw new ApiError(response.status, code, message, response.headers.get("retry-after"));
  }
  return data;
}

// ---- the steps
async function sha256Hex(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function upload(instructions, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(instructions.method ?? "PUT", instructions.url);
    for (const [name, value] of Object.entries(instructions.headers ?? {})) {
      // The browser sets content-length itself (and refuses to be told).
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        reject(new ApiError(xhr.status, "upload_failed", `storage answered ${xhr.status}: ${xhr.responseText.slice(0, 300)}`));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "upload_failed", "the upload could not reach storage"));
    xhr.send(file);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function poll(jobId, onStatus) {
  let delay = 500;
  for (;;) {
    const job = await api("GET", `jobs/${jobId}`);
    onStatus(job);
    if (FINAL.includes(job.status)) return job;
    await sleep(delay);
    delay = Math.min(delay * 1.5, 4000);
  }
}

// ---- showing things
function setProgress(fraction) {
  const percent = Math.round(fraction * 100);
  $("progress").value = percent;
  $("progress-label").textContent = `${percent}%`;
}

function setStatus(status) {
  $("status").textContent = LABELS.status[status] ?? status;
  $("status").dataset.status = status;
}

// A job's status, with the pages read so far while a long PDF is read in chunks.
function setJobStatus(job) {
  setStatus(job.status);
  if (job.pages != null && job.pages_done != null) {
    $("status").textContent += ` · ${job.pages_done}/${job.pages} 쪽 · pages`;
  }
}

function showError(error) {
  const box = $("error");
  const code = error.code ?? "";
  const readable = LABELS.error[code];
  let text = readable ? `${readable}\n${error.message}` : error.message;
  if (error.retryAfter) text += `\n${error.retryAfter}초 후 다시 시도하세요`;
  box.textContent = text;
  box.dataset.code = code;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function shade(confidence) {
  const hue = Math.round(Math.max(0, Math.min(1, confidence)) * 120); // red → green
  return { fill: `hsl(${hue} 75% 45% / 28%)`, edge: `hsl(${hue} 75% 35% / 85%)` };
}

function drawBoxes(page) {
  const layer = $("boxes");
  layer.replaceChildren();
  if (!page || !page.width || !page.height) return;
  for (const word of page.words ?? []) {
    const xs = word.vertices.map((v) => v.x);
    const ys = word.vertices.map((v) => v.y);
    const left = Math.min(...xs), top = Math.min(...ys);
    const box = document.createElement("div");
    const colors = shade(word.confidence);
    box.className = "box";
    box.title = `${word.text} (${Math.round(word.confidence * 100)}%)`;
    box.style.left = `${(left / page.width) * 100}%`;
    box.style.top = `${(top / page.height) * 100}%`;
    box.style.width = `${((Math.max(...xs) - left) / page.width) * 100}%`;
    box.style.height = `${((Math.max(...ys) - top) / page.height) * 100}%`;
    box.style.setProperty("--fill", colors.fill);
    box.style.setProperty("--edge", colors.edge);
    layer.append(box);
  }
}

async function showResult(job, file) {
  $("result").hidden = false;
  $("document-type").textContent = LABELS.documentType[job.document_type] ?? job.document_type ?? "—";
  $("confidence").textContent = job.confidence != null ? `${(job.confidence * 100).toFixed(1)}%` : "—";
  $("pages").textContent = job.pages ?? "—";
  $("engine").textContent = job.engine ? `${job.engine} ${job.model_version ?? ""}` : "—";
  const review = $("review");
  const issues = (job.quality_issues ?? []).map((issue) => LABELS.quality[issue] ?? issue);
  review.hidden = !job.needs_review && !issues.length;
  const pages = job.review_pages?.length ? ` (${job.review_pages.join(", ")}쪽 · page ${job.review_pages.join(", ")})` : "";
  const quality = issues.length ? `사진 상태 · image: ${issues.join(", ")}` : "";
  review.dataset.issues = (job.quality_issues ?? []).join(" ");
  review.textContent = job.needs_review
    ? `검토 필요: 신뢰도가 낮습니다${pages} · Needs review: read with low confidence${quality ? ` — ${quality}` : ""}`
    : quality;
  $("text").textContent = job.text ?? "";
  $("boxes").replaceChildren();

  const image = $("image");
  // What the service found the bytes to be, not what the name says.
  const isImage = file && ["image/png", "image/jpeg", "image/bmp", "image/webp"].includes(job.content_type);
  const note = $("preview-note");
  if (!job.result_url) return;
  // The full result (every word with its box) is in S3, behind a short-lived link.
  const result = await fetch(job.result_url).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  const page = result?.pages?.[0];
  if (!page) {
    note.textContent = "단어 위치를 불러오지 못했습니다 · Word positions could not be loaded";
    return;
  }
  const frame = $("page");
  if (isImage) {
    image.hidden = false;
    image.src = URL.createObjectURL(file);
    await image.decode().catch(() => {});
    frame.style.aspectRatio = "";
    frame.style.width = "";
    note.textContent = "";
  } else {
    // No picture of this page here (PDF, or a job from the list): the boxes on a blank page.
    image.hidden = true;
    image.removeAttribute("src");
    frame.style.width = "100%";
    frame.style.aspectRatio = `${page.width} / ${page.height}`;
    note.textContent = "첫 페이지의 단어 위치 · word positions on the first page";
  }
  drawBoxes(page);
}

// ---- the flow
// The type the file's first bytes show, as the service reads it: a browser
// names the type from the file's name, and a PNG named .jpg is still a PNG.
// Bytes of no accepted type keep the browser's guess, which the API refuses.
const SIGNATURES = [
  ["image/png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ["image/jpeg", [0xff, 0xd8, 0xff]],
  ["application/pdf", [0x25, 0x50, 0x44, 0x46, 0x2d]],
  ["image/tiff", [0x49, 0x49, 0x2a, 0x00]],
  ["image/tiff", [0x4d, 0x4d, 0x00, 0x2a]],
  ["image/bmp", [0x42, 0x4d]],
  ["image/webp", [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50]],
  ["image/heic", [null, null, null, null, 0x66, 0x74, 0x79, 0x70, 0x68, 0x65, 0x69, 0x63]],
];

async function sniffType(file) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const found = SIGNATURES.find(([, bytes]) => bytes.every((byte, i) => byte === null || head[i] === byte));
  return found ? found[0] : file.type || "application/octet-stream";
}

async function process(file) {
  clearError();
  $("result").hidden = true;
  $("job").hidden = false;
  $("file-name").textContent = `${file.name} · ${(file.size / 1024).toFixed(1)} KiB`;
  setProgress(0);
  setStatus("—");
  try {
    const sha256 = await sha256Hex(file);
    const contentType = await sniffType(file);
    const created = await api("POST", "jobs", {
      filename: file.name,
      content_type: contentType,
      size: file.size,
      sha256,
    });
    let job;
    if (created.deduplicated) {
      setProgress(1);
      job = created; // read before: the answer is already there
    } else {
      setStatus(created.status);
      await upload(created.upload, file, setProgress);
      job = await poll(created.job_id, setJobStatus);
    }
    setStatus(job.status);
    if (job.status === "completed") {
      await showResult(job, file);
    } else {
      const error = job.error ?? { code: job.status, message: LABELS.status[job.status] };
      showError({ code: error.code, message: error.message });
    }
  } catch (error) {
    showError(error);
  } finally {
    loadRecent();
  }
}

// Pages a search follows at most: a rare phrase may leave pages empty.
const SEARCH_PAGES = 10;

// The newest jobs, or with a query those whose text holds it (each with the
// passage around the match), following the cursor past pages the search emptied.
async function loadRecent() {
  if (!token() || proposedApi !== null) return askForToken();
  const query = $("query").value.trim();
  try {
    let jobs = [];
    let cursor = null;
    for (let page = 0; page < (query ? SEARCH_PAGES : 1); page++) {
      const params = new URLSearchParams({ limit: "10" });
      if (query) params.set("q", query);
      if (cursor) params.set("cursor", cursor);
      const listing = await api("GET", `jobs?${params}`);
      jobs = jobs.concat(listing.jobs);
      cursor = listing.next_cursor;
      if (!cursor || jobs.length >= 10) break;
    }
    const list = $("recent");
    list.replaceChildren();
    for (const job of jobs) {
      const item = document.createElement("li");
      item.tabIndex = 0;
      item.setAttribute("role", "button");
      item.innerHTML = `<span class="status"></span><span class="name"></span><span class="when"></span>`;
      item.querySelector(".status").textContent = LABELS.status[job.status] ?? job.status;
      item.querySelector(".name").textContent = job.filename;
      item.querySelector(".when").textContent = new Date(job.created_at).toLocaleString();
      if (job.needs_review) {
        const flag = document.createElement("span");
        flag.className = "flag";
        flag.textContent = "검토 필요 · needs review";
        item.querySelector(".name").after(flag);
      }
      if (job.snippet) {
        const snippet = document.createElement("span");
        snippet.className = "snippet";
        snippet.textContent = job.snippet;
        item.append(snippet);
      }
      const open = async () => {
        clearError();
        const full = await api("GET", `jobs/${job.job_id}`).catch((e) => (showError(e), null));
        if (full?.status === "completed") showResult(full, null);
        else if (full?.error) showError(full.error);
      };
      item.addEventListener("click", open);
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          open();
        }
      });
      list.append(item);
    }
    $("recent-note").textContent = query
      ? `"${query}": ${jobs.length}건 · ${jobs.length} found`
      : "";
    if (!jobs.length) {
      list.innerHTML = query ? "<li>찾지 못했습니다 · nothing found</li>" : "<li>아직 없습니다 · none yet</li>";
    }
  } catch (error) {
    showError(error);
  }
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  loadRecent();
});

const drop = $("drop");
$("file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) process(file);
});
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
// From the keyboard: the focused drop zone opens the file chooser.
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("file").click();
  }
});
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const [file] = event.dataTransfer.files;
  if (file) process(file);
});

token();
loadRecent();
