// Theater MSA web UI: plain JavaScript, no build step, no CDN.
// Talks only to the api-gateway that served this page (same origin).
"use strict";

const STATUS_EVERY_MS = 5000;
const LISTS_EVERY_MS = 5000; // the three lists, refreshed like the status panel
const SETTLE_EVERY_MS = 1000; // while bookings of a deleted user or movie are being cancelled
const SETTLE_TRIES = 30;
const LIST_LIMIT = 200; // users and movies
const BOOKING_PAGE = 20; // bookings per page, newest first
const SCAN_ROUNDS = 10; // calls at most to fill a page when demo traffic is hidden
const COUNT_LIMIT = 500; // confirmed bookings counted for a delete dialog

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

// One call to the gateway. Never throws: network failures come back as status 0.
// One key per booking click: when the mesh retries the request (Envoy
// retries on gateway errors), booking-service books it once.
// crypto.randomUUID needs a secure context; http://theater.<domain> is not.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const res = await fetch(path, init);
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = { raw: text }; }
    }
    return { ok: res.ok, status: res.status, data, servedBy: res.headers.get("x-served-by") };
  } catch (err) {
    return { ok: false, status: 0, data: null, servedBy: null, networkError: String(err) };
  }
}

// "movie-service@ctx2/pod-a, api-gateway@ctx1/pod-b": the backend first, then the gateway.
function backendOf(servedBy) {
  if (!servedBy) return "–";
  const [backend, ...via] = servedBy.split(",").map((s) => s.trim());
  return via.length ? `${backend}  (경유: ${via.join(", ")})` : backend;
}

// One X-Served-By value: "movie-service@ctx2/pod-a (v1)" -> its parts (version "" when absent).
function parseServedBy(value) {
  const m = /^([a-z0-9-]+)@([^/\s,]+)\/(\S+?)(?:\s+\(([^)]*)\))?$/.exec(String(value || "").trim());
  return m ? { service: m[1], cluster: m[2], pod: m[3], version: m[4] || "" } : null;
}

function showServedBy(id, res) {
  if (res && res.servedBy) $(id).textContent = backendOf(res.servedBy);
}

function clusterClass(name) {
  return name === "ctx1" || name === "ctx2" ? name : "local";
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds}초`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}분 ${seconds % 60}초`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `${hrs}시간 ${m % 60}분`;
  return `${Math.floor(hrs / 24)}일 ${hrs % 24}시간`;
}

// ------------------------------------------------------------------ messages (Korean)
// Every sentence the page shows for an API error is here, in MESSAGES.
// The API speaks English; the page says the same in Korean from the error's
// `code` (and HTTP status), and for each bad field from its `reason` code
// and `limit` (see services/common/body.py). The server's English
// original stays one click away, under "서버 원문".

const MESSAGES = {
  // Field names as the forms label them; `pick` fields are chosen from a list.
  fields: {
    name: { label: "이름" },
    email: { label: "이메일", format: "name@example.com 같은 형식으로 입력하세요." },
    title: { label: "제목" },
    genre: { label: "장르" },
    year: { label: "개봉 연도" },
    capacity: { label: "좌석 수" },
    userId: { label: "사용자", pick: true },
    movieId: { label: "영화", pick: true },
    seats: { label: "좌석 수" },
    "(body)": { label: "요청 본문" },
  },
  // One sentence per field `reason` (f: the field above, e: the API's field
  // error; e.limit is the bound the value crossed, when there is one).
  reasons: {
    required: (f) => `${withJosa(f.label, "을/를")} ${f.pick ? "고르세요" : "입력하세요"}.`,
    empty: (f) => `${withJosa(f.label, "을/를")} ${f.pick ? "고르세요" : "입력하세요"}.`,
    too_short: (f, e) => limited(f, e, "자 이상으로", "글자 수"),
    too_long: (f, e) => limited(f, e, "자 이하로", "글자 수"),
    too_small: (f, e) => limited(f, e, " 이상으로", "범위"),
    too_large: (f, e) => limited(f, e, " 이하로", "범위"),
    not_integer: (f) => `${withJosa(f.label, "은/는")} 정수로 입력하세요.`,
    not_text: (f) => `${withJosa(f.label, "은/는")} 글자로 입력하세요.`,
    bad_format: (f) => (f.pick ? `${withJosa(f.label, "을/를")} 목록에서 고르세요.`
      : `${withJosa(f.label, "은/는")} ${f.format || "올바른 형식으로 입력하세요."}`),
    unknown_field: (f) => `${withJosa(f.label, "은/는")} 이 요청에 없는 항목입니다.`,
    invalid: (f) => `${withJosa(f.label, "의")} 값이 올바르지 않습니다. 다시 확인하세요.`,
  },
  // Errors by the API's `code`; `field` names the form field to fix.
  codes: {
    validation_error: { text: "입력값을 확인하세요." },
    email_taken: { text: "이미 같은 이메일로 등록된 사용자가 있습니다. 다른 이메일을 입력하세요.", field: "email" },
    user_not_found: { text: "고른 사용자를 찾을 수 없습니다. 이미 삭제되었을 수 있으니 목록에서 다시 고르세요.", field: "userId" },
    movie_not_found: { text: "고른 영화를 찾을 수 없습니다. 이미 삭제되었을 수 있으니 목록에서 다시 고르세요.", field: "movieId" },
    booking_not_found: { text: "예약을 찾을 수 없습니다. 이미 삭제되었을 수 있습니다." },
    sold_out: { text: "남은 좌석이 부족합니다. 좌석 수를 줄이거나 다른 영화를 고르세요.", field: "seats" },
    idempotency_in_progress: { text: "같은 예약 요청이 아직 처리 중입니다. 잠시 후 목록을 확인하세요." },
    idempotency_key_reused: { text: "같은 요청 키가 다른 내용으로 다시 쓰였습니다. 다시 예약하세요." },
    malformed_json: { text: "요청 형식이 잘못되었습니다." },
    not_an_object: { text: "요청 형식이 잘못되었습니다." },
    payload_too_large: { text: "입력이 너무 깁니다 (64 KiB 초과)." },
    redis_unavailable: { text: "데이터 저장소(Redis)에 연결할 수 없습니다. 잠시 후 다시 시도하세요." },
    peer_unavailable: { text: "서비스에 연결할 수 없습니다. 서비스가 꺼져 있거나 아직 준비되지 않았습니다." },
    peer_timeout: { text: "서비스가 제시간에 응답하지 않았습니다. 잠시 후 다시 시도하세요." },
    not_ready: { text: "서비스가 아직 준비되지 않았습니다. 잠시 후 다시 시도하세요." },
    request_timeout: { text: "요청을 제시간에 다 받지 못했습니다. 다시 시도하세요." },
    headers_too_large: { text: "요청 헤더가 너무 큽니다." },
    bad_gateway: { text: "서비스가 잘못된 응답을 보냈습니다. 잠시 후 다시 시도하세요." },
  },
  // A refused deletion (409): whatever its code, say why in Korean.
  deleteRefused: {
    users: "이 사용자에게 확정된 예약이 있어 삭제할 수 없습니다. 예약을 먼저 취소하세요.",
    movies: "이 영화에 확정된 예약이 있어 삭제할 수 없습니다. 예약을 먼저 취소하세요.",
    bookings: "예약을 취소할 수 없습니다.",
  },
  status: {
    0: "게이트웨이에 연결할 수 없습니다. 네트워크나 서버 상태를 확인하세요.",
    400: "요청 형식이 잘못되었습니다.",
    404: "대상을 찾을 수 없습니다. 이미 삭제되었을 수 있습니다.",
    405: "허용되지 않는 요청입니다.",
    408: "요청을 제시간에 다 받지 못했습니다. 다시 시도하세요.",
    409: "지금은 요청을 처리할 수 없습니다 (다른 데이터와 충돌).",
    413: "입력이 너무 깁니다.",
    431: "요청 헤더가 너무 큽니다.",
    422: "입력값을 확인하세요.",
    500: "서버 내부 오류가 발생했습니다.",
    502: "게이트웨이 오류가 발생했습니다.",
    503: "서비스를 사용할 수 없습니다. 잠시 후 다시 시도하세요.",
    504: "응답 시간이 초과되었습니다. 잠시 후 다시 시도하세요.",
  },
  failed: (status) => `요청이 실패했습니다 (HTTP ${status}).`,
  // A booking with no definite answer (504, a lost connection, another 5xx):
  // it may have been made. The page retries with the same Idempotency-Key.
  unsure: {
    headline: "결과를 알 수 없음 — 같은 요청으로 다시 시도",
    text: "예약이 되었는지 아직 알 수 없습니다. '같은 요청으로 다시 시도' 를 누르면 같은 요청 키로 다시 보내므로, 이미 예약되었다면 그 예약을 돌려받고 두 번 예약되지 않습니다.",
    retry: "같은 요청 키로 다시 보내면 두 번 예약되지 않습니다.",
  },
  // Why a /info call in the "누가 응답했나?" panel failed (api_gateway._one_info).
  whoami: {
    timeout: "제시간에 응답하지 않음",
    unreachable: "연결할 수 없음",
    http: (status) => `HTTP ${status} 오류`,
    "answer was not JSON": "응답 형식이 잘못됨",
  },
  serverOriginal: "서버 원문",
};

function whoamiError(text) {
  const w = MESSAGES.whoami;
  if (w[text]) return w[text];
  if (text.startsWith("unreachable")) return w.unreachable;
  const http = /^HTTP (\d+)$/.exec(text);
  return http ? w.http(http[1]) : text;
}

// Korean particles follow the last syllable: 이메일을 / 좌석 수를, 이름은 / 장르는.
function withJosa(word, pair) {
  if (!pair.includes("/")) return word + pair; // 의: the same after any syllable
  const [afterConsonant, afterVowel] = pair.split("/");
  const code = word.charCodeAt(word.length - 1);
  if (code < 0xac00 || code > 0xd7a3) return `${word}${afterConsonant}(${afterVowel})`;
  return word + ((code - 0xac00) % 28 ? afterConsonant : afterVowel);
}

// "좌석 수는 10 이하로 입력하세요."; without a limit (an older API), still a whole sentence.
function limited(f, e, bound, what) {
  if (e.limit !== undefined && e.limit !== null) return `${withJosa(f.label, "은/는")} ${e.limit}${bound} 입력하세요.`;
  return `${withJosa(f.label, "의")} ${what}를 확인하세요.`;
}

// An API that does not send `reason` (or an older one): guess it from the words.
function guessReason(message) {
  const m = String(message || "").toLowerCase();
  if (/required|missing/.test(m)) return "required";
  if (/empty|blank/.test(m)) return "empty";
  if (/unknown field|not a field/.test(m)) return "unknown_field";
  if (/character/.test(m)) return /at most|long/.test(m) ? "too_long" : "too_short";
  if (/integer|whole number/.test(m)) return "not_integer";
  if (/greater|at least/.test(m)) return "too_small";
  if (/less|at most/.test(m)) return "too_large";
  if (/pattern|format|email|letters/.test(m)) return "bad_format";
  if (/string|text/.test(m)) return "not_text";
  return "invalid";
}

function fieldText(e) {
  const f = MESSAGES.fields[e.field] || { label: e.field };
  const reason = MESSAGES.reasons[e.reason] ? e.reason : guessReason(e.message);
  return { field: e.field, reason, text: MESSAGES.reasons[reason](f, e) };
}

// A Korean headline, the fields to fix with one sentence each, and the
// server's own words for the curious: never raw JSON.
// `context` is the collection ("users", "movies", "bookings") and, for a
// delete or cancel, the action: "users:delete".
function describeError(res, context = "") {
  const [kind, action] = context.split(":");
  if (res.status === 0) {
    const unsure = kind === "bookings" && !action;
    return { headline: unsure ? MESSAGES.unsure.headline : MESSAGES.status[0], note: unsure ? MESSAGES.unsure.text : "",
      fields: [], flagged: [], server: res.networkError || "" };
  }
  const err = (res.data && res.data.error) || {};
  const known = MESSAGES.codes[err.code];
  let headline = known && known.text;
  const flagged = known && known.field ? [known.field] : [];
  if (action === "delete" && res.status === 409) headline = MESSAGES.deleteRefused[kind] || headline;
  if (!headline && res.status === 409 && kind === "users") headline = MESSAGES.codes.email_taken.text;
  if (!headline && res.status === 409 && kind === "bookings") headline = MESSAGES.codes.sold_out.text;
  if (!headline && res.status === 404 && kind === "bookings" && !action) {
    const msg = String(err.message || "");
    headline = msg.startsWith("user") ? MESSAGES.codes.user_not_found.text
      : msg.startsWith("movie") ? MESSAGES.codes.movie_not_found.text : MESSAGES.status[404];
  }
  let note = "";
  if (kind === "bookings" && !action && (res.status === 0 || res.status >= 500)) {
    if (res.status === 0 || res.status === 504) {
      headline = MESSAGES.unsure.headline;
      note = MESSAGES.unsure.text;
    } else note = MESSAGES.unsure.retry;
  }
  if (!headline) headline = MESSAGES.status[res.status] || MESSAGES.failed(res.status);
  const fields = (err.fields || []).map(fieldText);
  for (const f of fields) flagged.push(f.field);
  const server = err.message ? err.message : `HTTP ${res.status}`;
  return { headline, note, fields, flagged, server };
}

// ------------------------------------------------------------------ form errors
// A form's error box lists what to fix. Each field's line goes away once
// that field is edited (a required one once it is filled in), and the box
// closes when nothing is left; an error about no field in particular closes
// on the next edit.

const formErrors = new WeakMap(); // form -> Map(field name -> reason)

function showFormError(form, box, res, context) {
  const d = describeError(res, context);
  const parts = [h("strong", { "data-testid": "error-headline", text: d.headline })];
  if (d.note) parts.push(h("p", { class: "note", "data-testid": "error-note", text: d.note }));
  if (d.fields.length) {
    parts.push(h("ul", {}, d.fields.map((f) => h("li", { "data-field": f.field, "data-reason": f.reason, text: f.text }))));
  }
  parts.push(h("details", { class: "server" }, h("summary", { text: MESSAGES.serverOriginal }), h("div", { text: d.server })));
  box.replaceChildren(...parts);
  box.hidden = false;
  const flagged = new Map(d.flagged.map((name) => [name, (d.fields.find((f) => f.field === name) || {}).reason || "other"]));
  formErrors.set(form, flagged);
  for (const el of form.querySelectorAll("input, select")) el.classList.toggle("invalid", flagged.has(el.name));
}

function clearFormError(form, box) {
  box.hidden = true;
  box.replaceChildren();
  formErrors.delete(form);
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
}

function watchFormError(form, box) {
  const edited = (ev) => {
    const flagged = formErrors.get(form);
    if (box.hidden || !flagged) return;
    const el = ev.target;
    if (flagged.size === 0) { clearFormError(form, box); return; }
    if (!flagged.has(el.name)) return;
    if (["required", "empty"].includes(flagged.get(el.name)) && !String(el.value).trim()) return;
    flagged.delete(el.name);
    el.classList.remove("invalid");
    for (const li of box.querySelectorAll("li[data-field]")) if (li.dataset.field === el.name) li.remove();
    if (flagged.size === 0) clearFormError(form, box);
  };
  form.addEventListener("input", edited);
  form.addEventListener("change", edited);
}

// A number field: integers become numbers, empty is left out (the server
// then says the field is required or applies its default), anything else is
// sent as typed so the server's validation explains what is wrong.
function numberField(value) {
  const v = value.trim();
  if (v === "") return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

// ------------------------------------------------------------------ data

// Users and movies: the newest LIST_LIMIT of each. Bookings: newest first,
// BOOKING_PAGE at a time, paged through the API's cursor (?order=newest),
// optionally of one user.
const state = {
  users: [], movies: [], bookings: [], more: {},
  failed: {}, // kind -> the failed answer of its last load (null when it loaded)
  refs: { users: new Map(), movies: new Map() }, // id -> "here" | "gone", from GET /users/{id}, /movies/{id}
  view: { cursor: "", history: [], next: null, hidden: 0, user: "" },
  justBooked: null, // the booking this page just made: shown first, highlighted
  scrollToNew: false,
  shown: {}, // kind -> what was last rendered (a refresh that changed nothing leaves the DOM alone)
};

// `theater load` and `theater verify` name what they make with these
// prefixes (services/catalog.py DEMO_NAME_PREFIXES), so the page can hide it.
const DEMO_PREFIXES = ["부하 테스트 ", "점검 테스트 "];
const isDemoName = (text) => DEMO_PREFIXES.some((p) => String(text || "").startsWith(p));
const hideDemo = () => $("hide-demo").checked;
const isDemoUser = (u) => isDemoName(u.name);
const isDemoMovie = (m) => isDemoName(m.title);
const isDemoBooking = (b) => isDemoName(b.userName) || isDemoName(b.movieTitle);

async function loadList(kind) {
  const res = await api("GET", `/${kind}/?order=newest&limit=${LIST_LIMIT}`);
  showServedBy(`${kind.slice(0, -1)}-served-by`, res);
  if (res.ok && res.data && Array.isArray(res.data.items)) {
    state[kind] = res.data.items;
    state.more[kind] = Boolean(res.data.next);
    state.failed[kind] = null;
    return null;
  }
  state.failed[kind] = res;
  return res;
}

// One page of bookings, newest first, after state.view.cursor. With demo
// traffic hidden, the hidden ones do not count towards the page: up to
// SCAN_ROUNDS calls fill it, each asking only for the rows still missing,
// so the API's `next` is exactly where the page stops.
async function loadBookings() {
  const v = state.view;
  const items = [];
  let hidden = 0;
  let cursor = v.cursor;
  let next = null;
  const hiding = hideDemo() && !v.user;
  for (let round = 0; round < SCAN_ROUNDS; round++) {
    const q = new URLSearchParams({ order: "newest", limit: String(BOOKING_PAGE - items.length) });
    if (v.user) q.set("userId", v.user);
    if (cursor) q.set("cursor", cursor);
    const res = await api("GET", `/bookings/?${q}`);
    showServedBy("booking-served-by", res);
    if (!(res.ok && res.data && Array.isArray(res.data.items))) {
      state.failed.bookings = res;
      return res;
    }
    for (const b of res.data.items) {
      if (hiding && isDemoBooking(b)) hidden += 1;
      else items.push(b);
    }
    next = res.data.next;
    cursor = next;
    if (!next || items.length >= BOOKING_PAGE) break;
  }
  // The booking just made stays first on the first page even if newer ones
  // (a `theater load` running) pushed it further down.
  const made = state.justBooked;
  if (made && !v.cursor && !items.some((b) => b.id === made.id) && (!v.user || v.user === made.userId)) {
    const fresh = await api("GET", `/bookings/${encodeURIComponent(made.id)}`);
    items.unshift(fresh.ok && fresh.data ? fresh.data : made);
  }
  state.bookings = items;
  v.next = next;
  v.hidden = hidden;
  state.failed.bookings = null;
  return null;
}

// Whether the user or movie a booking names still exists: "here", "gone"
// (deleted: the API said 404, or the whole list loaded without it) or
// "unknown" (its service does not answer, so the page cannot tell).
function refState(kind, id) {
  if (state[kind].some((x) => x.id === id)) return "here";
  if (state.failed[kind]) return "unknown";
  const known = state.refs[kind].get(id);
  if (known) return known;
  return state.more[kind] ? "unknown" : "gone";
}

// Ids the bookings on screen name that the (first LIST_LIMIT of the) lists
// do not hold: asked one by one, at most 2 x BOOKING_PAGE calls.
async function resolveRefs() {
  const asks = [];
  for (const [kind, key] of [["users", "userId"], ["movies", "movieId"]]) {
    if (state.failed[kind] || !state.more[kind]) continue;
    const ids = new Set(state.bookings.map((b) => b[key]).filter((id) => !state[kind].some((x) => x.id === id)));
    for (const id of ids) {
      if (state.refs[kind].get(id) === "gone") continue;
      asks.push(api("GET", `/${kind}/${encodeURIComponent(id)}`).then((res) => {
        if (res.ok) state.refs[kind].set(id, "here");
        else if (res.status === 404) state.refs[kind].set(id, "gone");
        else state.refs[kind].delete(id);
      }));
    }
  }
  await Promise.all(asks);
}

function listError(ul, kind, res) {
  const d = describeError(res, kind);
  ul.replaceChildren(h("li", { class: "empty" }, `목록을 불러오지 못했습니다: ${d.headline}`));
  // The booking form's choice says so too, rather than an empty list.
  const select = { users: ["booking-user", "사용자"], movies: ["booking-movie", "영화"] }[kind];
  if (select) $(select[0]).replaceChildren(h("option", { value: "", text: `${select[1]} 목록을 불러오지 못했습니다` }));
}

function countText(kind) {
  const n = state[kind].length;
  return state.more[kind] ? `(${n}+)` : `(${n})`;
}

// Long e-mails and titles wrap at spaces and after "@" ("minsu.kim@" /
// "example.com"), never in the middle of a word (style.css: no `anywhere`).
function breakable(text) {
  const parts = String(text).split(/(?<=@)/);
  return parts.length < 2 ? String(text) : parts.flatMap((p, i) => (i ? [h("wbr"), p] : [p]));
}

// Render `kind` only when what it shows changed: a refresh every few
// seconds must not rebuild a list under the pointer.
// A Kubernetes or service name in unbreakable pieces: the name proper, then
// each generated suffix ("booking-service" | "-7d9f8c6b5" | "-klmno"), so a
// narrow cell wraps between them and never inside "booking-service".
function namePieces(name) {
  const segments = String(name).split("-");
  let base = 1;
  while (base < segments.length && !/\d/.test(segments[base])) base += 1;
  const pieces = [segments.slice(0, base).join("-"), ...segments.slice(base).map((x) => `-${x}`)];
  return pieces.flatMap((p, i) => [i ? h("wbr") : null, h("span", { class: "nobr", text: p })]).filter(Boolean);
}

// A URL in pieces that do not break: "http://127.0.0.1:28083" | "/path".
function urlPieces(url) {
  const m = /^([a-z]+:\/\/[^/]*)(.*)$/.exec(String(url));
  if (!m) return namePieces(url);
  return [m[1], m[2]].filter(Boolean).flatMap((p, i) => [i ? h("wbr") : null, h("span", { class: "nobr", text: p })]).filter(Boolean);
}

function changed(kind, value) {
  const key = JSON.stringify(value);
  if (state.shown[kind] === key) return false;
  state.shown[kind] = key;
  return true;
}

function visibleUsers() {
  return hideDemo() ? state.users.filter((u) => !isDemoUser(u)) : state.users;
}

function visibleMovies() {
  return hideDemo() ? state.movies.filter((m) => !isDemoMovie(m)) : state.movies;
}

function renderUsers() {
  const users = visibleUsers();
  if (!changed("users", [users, state.more.users])) return;
  const ul = $("user-list");
  $("user-count").textContent = countText("users");
  ul.replaceChildren(...(users.length ? users.map((u) =>
    h("li", { "data-testid": "user-item", "data-id": u.id },
      h("div", { class: "main" },
        h("div", { class: "title", "data-testid": "user-item-name", text: u.name }),
        h("div", { class: "meta", "data-testid": "user-item-email" }, breakable(u.email))),
      h("button", { class: "small danger", type: "button", "data-testid": "user-delete", onclick: () => removeUser(u) }, "삭제")))
    : [h("li", { class: "empty", text: "아직 사용자가 없습니다." })]));
  fillSelect($("booking-user"), users, (u) => `${u.name} (${u.email})`, "사용자를 고르세요");
  fillSelect($("booking-filter"), users, (u) => `${u.name} (${u.email})`, "모든 사용자의 예약");
  if (state.view.user && $("booking-filter").value !== state.view.user) {
    // The filtered user is no longer listed (deleted, or hidden): keep the filter, say who.
    $("booking-filter").append(h("option", { value: state.view.user, text: `(목록에 없는 사용자 ${state.view.user})` }));
    $("booking-filter").value = state.view.user;
  }
}

function seatBar(m) {
  const ratio = m.capacity ? m.availableSeats / m.capacity : 0;
  const cls = m.availableSeats === 0 ? "none" : ratio < 0.2 ? "low" : "";
  return h("div", { class: "seatbar" }, h("div", { class: cls, style: `width:${Math.round(ratio * 100)}%` }));
}

function renderMovies() {
  const movies = visibleMovies();
  if (!changed("movies", [movies, state.more.movies])) return;
  const ul = $("movie-list");
  $("movie-count").textContent = countText("movies");
  ul.replaceChildren(...(movies.length ? movies.map((m) =>
    h("li", { "data-testid": "movie-item", "data-id": m.id },
      h("div", { class: "main" },
        h("div", { class: "title", "data-testid": "movie-item-title" }, breakable(m.title)),
        h("div", { class: "meta" }, `${m.genre} · ${m.year}년`,
          // movie-service v2 adds bookingRate (예매율); v1 answers have none.
          m.bookingRate === undefined || m.bookingRate === null ? null
            : h("span", { class: "badge v2", "data-testid": "movie-rate", title: "movie-service v2 가 알려 주는 예매율", text: `예매율 ${m.bookingRate}%` })),
        seatBar(m)),
      h("div", { class: "seats", title: "남은 좌석 / 전체 좌석" },
        h("span", { "data-testid": "movie-seats", text: `${m.availableSeats} / ${m.capacity}` }), " 석"),
      h("button", { class: "small danger", type: "button", "data-testid": "movie-delete", onclick: () => removeMovie(m) }, "삭제")))
    : [h("li", { class: "empty", text: "아직 영화가 없습니다." })]));
  fillSelect($("booking-movie"), movies, (m) => `${m.title} (잔여 ${m.availableSeats}석)`, "영화를 고르세요");
}

// Bookings carry the user's name and the movie's title as they were when
// booked (userName, movieTitle); older bookings fall back to the lists.
function bookingNames(b) {
  const user = state.users.find((u) => u.id === b.userId);
  const movie = state.movies.find((m) => m.id === b.movieId);
  return {
    user: b.userName || (user && user.name) || "(알 수 없는 사용자)",
    movie: b.movieTitle || (movie && movie.title) || "(알 수 없는 영화)",
    userState: refState("users", b.userId),
    movieState: refState("movies", b.movieId),
  };
}

// Why a service is not answering, for the "unknown" note of a booking.
const SERVICE_OF = { users: "user-service", movies: "movie-service" };

function renderBookings() {
  const v = state.view;
  const rows = state.bookings.map((b) => [b, bookingNames(b)]);
  const newId = state.justBooked && state.justBooked.id;
  if (!changed("bookings", [rows, v, newId, state.failed.users && 1, state.failed.movies && 1])) return;
  const ul = $("booking-list");
  const pageNo = v.history.length + 1;
  $("booking-count").textContent = `(최신순${pageNo > 1 ? ` ${pageNo}쪽` : ""})`;
  ul.replaceChildren(...(rows.length ? rows.map(([b, names]) => {
    const confirmed = b.status === "confirmed";
    const gone = [names.userState === "gone" ? "사용자 삭제됨" : null, names.movieState === "gone" ? "영화 삭제됨" : null].filter(Boolean);
    const unknown = [["users", names.userState, "사용자"], ["movies", names.movieState, "영화"]]
      .filter(([, s]) => s === "unknown").map(([kind, , word]) => `${word} 확인 불가 (${SERVICE_OF[kind]} 응답 없음)`);
    // A confirmed booking whose user or movie is gone is being cancelled by
    // booking-service (it follows the deletions): no button, the list
    // refreshes until the API says so.
    const closing = confirmed && gone.length > 0;
    const isNew = b.id === newId;
    return h("li", { "data-testid": "booking-item", "data-id": b.id, class: [confirmed ? "" : "cancelled", isNew ? "just-made" : ""].join(" ").trim() || null },
      h("div", { class: "main" },
        h("div", { class: "title" }, breakable(`${names.user} → ${names.movie}`)),
        h("div", { class: "meta" }, `${b.seats}석 · `,
          h("span", { class: `badge ${confirmed ? "ok" : "gray"}`, "data-testid": "booking-status", text: confirmed ? "확정" : "취소됨" }),
          isNew ? h("span", { class: "badge new", "data-testid": "booking-new", text: "방금 예약" }) : null,
          closing ? h("span", { class: "badge warn", "data-testid": "booking-closing", text: "자동 취소 중" }) : null,
          gone.length ? h("span", { class: "gone", "data-testid": "booking-gone", text: ` · ${gone.join(", ")}` }) : null,
          unknown.length ? h("span", { class: "unknown", "data-testid": "booking-unknown", text: ` · ⚠ ${unknown.join(", ")}` }) : null)),
      confirmed && !closing ? h("button", { class: "small danger", type: "button", "data-testid": "booking-cancel", onclick: () => cancelBooking(b) }, "취소") : null);
  }) : [h("li", { class: "empty", text: v.user ? "이 사용자의 예약이 없습니다." : "아직 예약이 없습니다." })]));
  $("booking-hidden").textContent = v.hidden ? `부하·점검 예약 ${v.hidden}건 숨김` : "";
  $("booking-page").textContent = `${pageNo}쪽`;
  $("booking-newest").disabled = pageNo === 1;
  $("booking-newer").disabled = pageNo === 1;
  $("booking-older").disabled = !v.next;
  if (state.scrollToNew) {
    state.scrollToNew = false;
    const item = ul.querySelector("li.just-made");
    if (item) item.scrollIntoView({ block: "nearest" });
  }
}

function fillSelect(select, items, label, placeholder) {
  const keep = select.value;
  select.replaceChildren(h("option", { value: "", text: placeholder }),
    ...items.map((it) => h("option", { value: it.id, text: label(it) })));
  if (items.some((it) => it.id === keep)) select.value = keep;
}

let refreshing = null; // one refresh at a time; a request made meanwhile runs after it
let refreshes = 0; // started and not yet done

async function refresh(...kinds) {
  const wanted = kinds.length ? kinds : ["users", "movies", "bookings"];
  const run = async () => {
    const failures = await Promise.all(wanted.map((k) => (k === "bookings" ? loadBookings() : loadList(k))));
    if (wanted.includes("bookings")) await resolveRefs();
    // Bookings show user names and movie titles, so they render after all loads.
    const render = { users: renderUsers, movies: renderMovies, bookings: renderBookings };
    for (const kind of ["users", "movies", "bookings"]) {
      const i = wanted.indexOf(kind);
      if (i < 0) continue;
      if (failures[i]) {
        state.shown[kind] = null;
        listError($(`${kind.slice(0, -1)}-list`), kind, failures[i]);
      } else render[kind]();
    }
    // Bookings of a just-deleted user or movie are still being cancelled:
    // look again shortly, until the API says so.
    const closing = state.bookings.some((b) => b.status === "confirmed"
      && (refState("users", b.userId) === "gone" || refState("movies", b.movieId) === "gone"));
    // At most SETTLE_TRIES quick looks in a row; the 5 s refresh goes on after that.
    clearTimeout(refresh.soon);
    refresh.tries = closing ? (refresh.tries || 0) + 1 : 0;
    if (closing && refresh.tries <= SETTLE_TRIES) refresh.soon = setTimeout(() => refresh("bookings"), SETTLE_EVERY_MS);
  };
  refreshes += 1;
  const done = () => { refreshes -= 1; };
  refreshing = (refreshing || Promise.resolve()).then(run, run).then(done, done);
  return refreshing;
}

// Every few seconds, as the status panel does: seats change and other
// people (or `theater load`) book meanwhile. Not while a dialog is open.
function refreshQuietly() {
  if ($("confirm-dialog").open || document.hidden || refreshes > 0) return;
  refresh();
}

function goToPage(cursor, history) {
  state.view.cursor = cursor;
  state.view.history = history;
  refresh("bookings");
}

$("booking-older").addEventListener("click", () => {
  const v = state.view;
  if (v.next) goToPage(v.next, [...v.history, v.cursor]);
});
$("booking-newer").addEventListener("click", () => {
  const v = state.view;
  if (v.history.length) goToPage(v.history[v.history.length - 1], v.history.slice(0, -1));
});
$("booking-newest").addEventListener("click", () => goToPage("", []));
$("booking-filter").addEventListener("change", () => {
  state.view.user = $("booking-filter").value;
  goToPage("", []);
});
$("hide-demo").addEventListener("change", () => {
  state.view.cursor = "";
  state.view.history = [];
  refresh();
});

// ------------------------------------------------------------------ actions

// A booking whose answer never came (a 504 from the gateway, a lost
// connection, any 5xx) may still have been made. Its Idempotency-Key is kept
// and sent again with the same request until a definite answer (2xx or
// 4xx) comes; only then does the next booking get a new key.
let unsure = null; // {key, body} of the booking whose outcome is unknown

const definite = (res) => res.status >= 200 && res.status < 500;

function sameBody(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function setUnsure(value) {
  unsure = value;
  $("booking-form").querySelector("button[type=submit]").textContent = value ? "같은 요청으로 다시 시도" : "예약하기";
  $("booking-form").dataset.unsure = value ? "true" : "false";
}

function wireForm(formId, errorId, kind, buildBody, after) {
  const form = $(formId);
  const box = $(errorId);
  watchFormError(form, box);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = buildBody();
      let headers = {};
      if (kind === "bookings") {
        if (unsure && !sameBody(unsure.body, body)) setUnsure(null); // another request: a new key
        headers = { "Idempotency-Key": unsure ? unsure.key : idempotencyKey() };
      }
      const res = await api("POST", `/${kind}/`, body, headers);
      showServedBy(`${kind.slice(0, -1)}-served-by`, res);
      if (kind === "bookings") setUnsure(definite(res) ? null : { key: headers["Idempotency-Key"], body });
      if (res.ok) {
        clearFormError(form, box);
        after(form);
        if (kind === "bookings" && res.data && res.data.id) {
          // The new booking: first on the first page, highlighted, in view.
          state.justBooked = res.data;
          state.scrollToNew = true;
          if (state.view.user && state.view.user !== res.data.userId) {
            state.view.user = "";
            $("booking-filter").value = "";
          }
          state.view.cursor = "";
          state.view.history = [];
        }
        await refresh(...(kind === "bookings" ? ["movies", "bookings"] : [kind, "bookings"]));
      } else {
        showFormError(form, box, res, kind);
        if (kind === "bookings" && unsure) formErrors.set(form, new Map([["(unsure)", "other"]])); // edits keep the box
        if (kind === "bookings" && !definite(res)) refresh("movies", "bookings"); // it may have been booked
      }
    } finally {
      button.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ confirm, then delete or cancel

// The page's own Korean dialog (not window.confirm): resolves true only when
// the red button is pressed; Esc, the backdrop and "그대로 두기" keep things.
function confirmAction({ title, text, yes }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
    $("confirm-no").focus();
  });
}

$("confirm-dialog").addEventListener("click", (ev) => {
  if (ev.target === ev.currentTarget) ev.currentTarget.close("keep"); // a click on the backdrop
});

// The confirmed bookings a deletion would cancel, asked from the API (the
// page shows only one page of bookings): those of the user (or movie) whose
// other side still exists, as far as the page knows. null when the API does
// not answer.
async function confirmedBookingsOf(key, id) {
  const res = await api("GET", `/bookings/?${key}=${encodeURIComponent(id)}&order=newest&limit=${COUNT_LIMIT}`);
  if (!(res.ok && res.data && Array.isArray(res.data.items))) return null;
  const other = key === "userId" ? ["movies", "movieId"] : ["users", "userId"];
  const list = res.data.items.filter((b) => b.status === "confirmed" && refState(other[0], b[other[1]]) !== "gone");
  return { list, more: Boolean(res.data.next) };
}

function bookingNote(found) {
  if (found === null) return " 확정된 예약이 있는지 확인하지 못했습니다 (booking-service 응답 없음). 있다면 함께 취소됩니다.";
  if (!found.list.length) return "";
  const seats = found.list.reduce((n, b) => n + b.seats, 0);
  const count = found.more ? `${COUNT_LIMIT}건 이상` : `${found.list.length}건(${seats}석)`;
  return ` 확정된 예약이 ${count} 있으며, 삭제하면 함께 취소되고 좌석이 돌아갑니다.`;
}

async function act(method, path, kind, reload) {
  const res = await api(method, path);
  showServedBy(`${kind.slice(0, -1)}-served-by`, res);
  const form = $(`${kind.slice(0, -1)}-form`);
  const box = $(`${kind.slice(0, -1)}-error`);
  // 404: someone else deleted it first; the refreshed list shows that.
  if (!res.ok && res.status !== 404) showFormError(form, box, res, `${kind}:delete`);
  else clearFormError(form, box);
  await refresh(...reload);
}

async function removeUser(u) {
  const note = bookingNote(await confirmedBookingsOf("userId", u.id));
  const ok = await confirmAction({
    title: "사용자를 삭제할까요?",
    text: `${u.name} (${u.email}) 사용자를 삭제합니다. 삭제하면 되돌릴 수 없습니다.${note}`,
    yes: "사용자 삭제",
  });
  if (!ok) return;
  await act("DELETE", `/users/${encodeURIComponent(u.id)}`, "users", ["users", "movies", "bookings"]);
}

async function removeMovie(m) {
  const note = bookingNote(await confirmedBookingsOf("movieId", m.id));
  const ok = await confirmAction({
    title: "영화를 삭제할까요?",
    text: `${m.title} (${m.year}년) 영화를 삭제합니다. 삭제하면 되돌릴 수 없습니다.${note}`,
    yes: "영화 삭제",
  });
  if (ok) await act("DELETE", `/movies/${encodeURIComponent(m.id)}`, "movies", ["movies", "bookings"]);
}

async function cancelBooking(b) {
  const names = bookingNames(b);
  const ok = await confirmAction({
    title: "예약을 취소할까요?",
    text: `${names.user} → ${names.movie}, ${b.seats}석 예약을 취소합니다. 좌석은 영화로 돌아가고, 예약은 '취소됨'으로 남습니다.`,
    yes: "예약 취소",
  });
  if (ok) await act("DELETE", `/bookings/${encodeURIComponent(b.id)}`, "bookings", ["movies", "bookings"]);
}

wireForm("user-form", "user-error", "users",
  () => ({ name: $("user-name").value, email: $("user-email").value.trim() }),
  () => { $("user-name").value = ""; $("user-email").value = ""; });

wireForm("movie-form", "movie-error", "movies", () => {
  const body = { title: $("movie-title").value, genre: $("movie-genre").value, year: numberField($("movie-year").value) };
  const capacity = numberField($("movie-capacity").value);
  if (capacity !== undefined) body.capacity = capacity;
  return body;
}, () => { for (const id of ["movie-title", "movie-genre", "movie-year", "movie-capacity"]) $(id).value = ""; });

function bookingBody() {
  const body = { seats: numberField($("booking-seats").value) };
  if ($("booking-user").value) body.userId = $("booking-user").value;
  if ($("booking-movie").value) body.movieId = $("booking-movie").value;
  return body;
}

wireForm("booking-form", "booking-error", "bookings", bookingBody, () => { $("booking-seats").value = "1"; });

// Changing the booking while its outcome is unknown makes it another
// request: a new key, and the "unknown" box closes.
for (const type of ["input", "change"]) {
  $("booking-form").addEventListener(type, () => {
    if (unsure && !sameBody(unsure.body, bookingBody())) {
      setUnsure(null);
      clearFormError($("booking-form"), $("booking-error"));
    }
  });
}

// ------------------------------------------------------------------ who answered

async function runWhoami() {
  const button = $("whoami-run");
  const n = Number($("whoami-n").value) || 6;
  button.disabled = true;
  try {
    const res = await api("GET", `/api/whoami?n=${n}`);
    const box = $("whoami-result");
    if (!res.ok || !res.data) {
      box.replaceChildren(h("p", { class: "muted", text: `호출 실패: ${describeError(res, "whoami").headline}` }));
      return;
    }
    if (res.data.gateway) {
      const g = res.data.gateway;
      $("gateway-served-by").textContent = `${g.service}@${g.cluster}/${g.pod} ${g.version} (노드 ${g.node})`;
    }
    box.replaceChildren(...res.data.services.map((svc) => {
      const total = svc.answers.length || 1;
      // Rows by cluster/pod as the gateway counted them; each with the version that pod said.
      const versionOf = {};
      for (const a of svc.answers) if (!a.error) versionOf[`${a.cluster}/${a.pod}`] = a.version;
      const rows = Object.entries(svc.counts).map(([key, count]) => {
        const isErr = key.startsWith("error:");
        const cluster = isErr ? "" : key.split("/")[0];
        const pod = isErr ? whoamiError(key.slice(6).trim()) : key.slice(cluster.length + 1);
        const version = isErr ? "" : versionOf[key] || "";
        return h("div", { class: "bar", "data-testid": "whoami-row", "data-cluster": cluster, "data-version": version },
          h("div", { class: "label" },
            isErr ? h("span", { class: "badge bad", text: "오류" }) : h("span", { class: `chip ${clusterClass(cluster)}`, text: cluster }),
            version ? h("span", { class: `chip version ${versionClass(version)}`, "data-testid": "whoami-version", text: version }) : null,
            pod),
          h("div", { class: "n", text: `${count}회` }),
          h("div", { class: "track" }, h("div", { class: `fill ${isErr ? "err" : clusterClass(cluster)}`, style: `width:${(100 * count) / total}%` })));
      });
      const versions = Object.entries(svc.versions || {});
      const summary = versions.length > 1 || (versions.length === 1 && versions[0][0] !== "v1")
        ? h("div", { class: "muted versions", "data-testid": "whoami-versions", text: `버전: ${versions.map(([v, n]) => `${v} ${n}회`).join(" · ")}` })
        : null;
      return h("div", { class: "who", "data-testid": "whoami-service", "data-service": svc.service },
        h("h3", { text: svc.service }), summary, rows);
    }));
  } finally {
    button.disabled = false;
  }
}

$("whoami-run").addEventListener("click", runWhoami);

// ------------------------------------------------------------------ canary / A-B split

function versionClass(version) {
  return version === "v1" || version === "v2" ? version : "vx";
}

// "x-theater-group: beta" -> ["x-theater-group", "beta"]; null when empty or malformed.
function headerPair(text) {
  const m = /^\s*([A-Za-z0-9-]+)\s*:\s*(\S.*?)\s*$/.exec(text || "");
  return m ? [m[1].toLowerCase(), m[2]] : null;
}

// "theater-group=beta" -> ["theater-group", "beta"]; null when empty or malformed.
function cookiePair(text) {
  const m = /^\s*([A-Za-z0-9._-]+)\s*=\s*([A-Za-z0-9._-]+)\s*$/.exec(text || "");
  return m ? [m[1], m[2]] : null;
}

// Sends N GET /movies/?limit=1 through the same route a browser uses (the
// edge VirtualService in Kubernetes), with the A/B header or cookie when
// given, and counts who answered: version and cluster from X-Served-By.
async function runCanary() {
  const button = $("canary-run");
  const box = $("canary-result");
  const n = Number($("canary-n").value) || 20;
  const headerText = $("canary-header").value.trim();
  const cookieText = $("canary-cookie").value.trim();
  const header = headerPair(headerText);
  const cookie = cookiePair(cookieText);
  $("canary-progress").textContent = "";
  if ((headerText && !header) || (cookieText && !cookie)) {
    box.replaceChildren(h("div", { class: "form-error", "data-testid": "canary-error", role: "alert",
      text: headerText && !header ? "헤더는 이름: 값 형식으로 입력하세요. 예: x-theater-group: beta"
        : "쿠키는 이름=값 형식으로 입력하세요. 예: theater-group=beta" }));
    return;
  }
  button.disabled = true;
  if (cookie) document.cookie = `${cookie[0]}=${cookie[1]}; path=/; SameSite=Strict`;
  const counts = new Map(); // "v2@ctx1" -> {version, cluster, n}, or "error: ..." -> {error, n}
  let done = 0;
  const progress = $("canary-progress");
  try {
    for (let i = 0; i < n; i++) {
      const res = await api("GET", "/movies/?limit=1", undefined, header ? { [header[0]]: header[1] } : {});
      const who = parseServedBy((res.servedBy || "").split(",")[0]);
      let key, entry;
      if (!res.ok || !who) {
        const text = res.ok ? "응답한 서비스를 알 수 없음" : describeError(res, "movies").headline;
        key = `error:${text}`;
        entry = { error: text };
      } else {
        key = `${who.version}@${who.cluster}`;
        entry = { version: who.version || "?", cluster: who.cluster };
      }
      const seen = counts.get(key) || { ...entry, n: 0 };
      seen.n += 1;
      counts.set(key, seen);
      done += 1;
      progress.textContent = `${done} / ${n}`;
    }
  } finally {
    if (cookie) document.cookie = `${cookie[0]}=; path=/; max-age=0; SameSite=Strict`;
    button.disabled = false;
  }
  // A fixed order (v1 before v2, then by cluster, errors last) so two runs compare row by row.
  const order = (c) => [c.error ? 1 : 0, c.version || "", c.cluster || "", c.error || ""].join("\u0000");
  const rows = [...counts.values()].sort((a, b) => order(a).localeCompare(order(b))).map((c) => {
    const pct = Math.round((100 * c.n) / done);
    return h("div", { class: "bar", "data-testid": "canary-row", "data-version": c.version || "", "data-cluster": c.cluster || "",
      "data-count": String(c.n) },
      h("div", { class: "label" },
        c.error ? h("span", { class: "badge bad", text: "오류" }) : h("span", { class: `chip version ${versionClass(c.version)}`, text: c.version }),
        c.error ? c.error : h("span", { class: `chip ${clusterClass(c.cluster)}`, text: c.cluster })),
      h("div", { class: "n", "data-testid": "canary-share", text: `${c.n}회 (${pct}%)` }),
      h("div", { class: "track" }, h("div", { class: `fill ${c.error ? "err" : versionClass(c.version)}`, style: `width:${pct}%` })));
  });
  const sent = [header ? `헤더 ${header[0]}: ${header[1]}` : null, cookie ? `쿠키 ${cookie[0]}=${cookie[1]}` : null].filter(Boolean);
  box.replaceChildren(h("div", { class: "who canary" },
    h("p", { class: "muted", "data-testid": "canary-summary",
      text: `GET /movies/ ${done}회${sent.length ? ` (${sent.join(", ")})` : ""}: 버전과 클러스터별 응답 수` }),
    ...rows));
}

$("canary-run").addEventListener("click", runCanary);

// ------------------------------------------------------------------ deployment status

// Why a cluster is not (fully) shown. `calm` ones are set-up steps not yet
// taken, not failures: shown in amber, not red.
const REASONS = {
  not_configured: { text: "다른 클러스터의 kubeconfig가 아직 연결되지 않았습니다 (README 3.2 의 8단계 참고)", calm: true },
  not_in_cluster: { text: "쿠버네티스 밖에서 실행 중이라 이 클러스터를 읽지 않습니다", calm: true },
  config_error: { text: "kubeconfig를 읽을 수 없습니다" },
  unreachable: { text: "API 서버에 연결할 수 없습니다" },
  timeout: { text: "API 서버가 제시간에 응답하지 않았습니다" },
  unauthorized: { text: "인증에 실패했습니다 (토큰이 거부됨)" },
  forbidden: { text: "권한(RBAC)이 부족해 일부 목록을 볼 수 없습니다" },
  error: { text: "조회 중 오류가 발생했습니다" },
};
const SOURCES = { "in-cluster": "파드 ServiceAccount", kubeconfig: "kubeconfig", none: "설정 없음" };

// Rows become labelled cards on a phone (style.css: td::before shows data-label).
function table(headers, rows, testid) {
  for (const row of rows) {
    [...row.children].forEach((td, i) => td.setAttribute("data-label", headers[i] || ""));
  }
  return h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { text: t })))),
    h("tbody", {}, rows.length ? rows : [h("tr", {}, h("td", { colspan: headers.length, class: "muted", text: "없음" }))]));
}

function yes(ok, yesText = "Ready", noText = "NotReady") {
  return h("span", { class: `badge ${ok ? "ok" : "bad"}`, text: ok ? yesText : noText });
}

function phaseBadge(phase) {
  const cls = phase === "Running" || phase === "Succeeded" ? "ok" : phase === "Pending" || phase === "Terminating" ? "warn" : "bad";
  return h("span", { class: `badge ${cls}`, text: phase });
}

// The English detail of a Kubernetes error, folded away: useful to the instructor.
function detail(text) {
  return h("details", { class: "detail" }, h("summary", { text: "자세히 (영문 원문)" }), h("div", { text }));
}

function renderCluster(c) {
  const reason = c.reason ? REASONS[c.reason] || REASONS.error : null;
  const badge = c.reachable
    ? (c.reason ? h("span", { class: "badge warn", text: "일부만 보임" }) : h("span", { class: "badge ok", text: "연결됨" }))
    : reason && reason.calm ? h("span", { class: "badge gray", text: "연결 전" })
      : h("span", { class: "badge bad", text: "연결되지 않음" });
  const head = h("h3", {},
    h("span", { class: `chip ${clusterClass(c.name)}`, text: c.name }), badge,
    h("span", { class: "src", text: `${c.role === "local" ? "게이트웨이가 있는 클러스터" : "원격 클러스터"} · ${SOURCES[c.source] || c.source}${c.server ? " · " + c.server : ""}` }));
  const parts = [head];
  if (reason) {
    let text = `${c.name}: ${c.reachable || reason.calm ? "" : "연결되지 않음 — "}${reason.text}`;
    if (c.reason === "forbidden" && c.forbidden.length) text += ` (${c.forbidden.join(", ")})`;
    parts.push(h("div", { class: `message ${c.reachable || reason.calm ? "warn" : ""}`, "data-testid": "cluster-message", text }));
    if (c.error) parts.push(detail(c.error));
  }
  if (c.reachable) {
    parts.push(h("h4", { text: `노드 (${c.nodes.length})` }),
      table(["이름", "cluster-name", "상태"], c.nodes.map((n) =>
        h("tr", {}, h("td", { class: "mono name" }, namePieces(n.name)), h("td", { text: n.clusterLabel || "–" }), h("td", {}, yes(n.ready)))), "nodes-table"));
    parts.push(h("h4", { text: `Deployment (${c.deployments.length})` }),
      table(["이름", "준비 / 목표"], c.deployments.map((d) =>
        h("tr", {}, h("td", { class: "mono name" }, namePieces(d.name)),
          h("td", { class: "num" }, h("span", { class: `badge ${d.ready >= d.desired && d.desired > 0 ? "ok" : d.ready > 0 ? "warn" : "bad"}`, text: `${d.ready} / ${d.desired}` })))), "deployments-table"));
    parts.push(h("h4", { text: `파드 (${c.pods.length})` }),
      table(["이름", "노드", "상태", "준비", "재시작", "나이"], c.pods.map((p) =>
        h("tr", {},
          h("td", { class: "mono name" }, namePieces(p.name)),
          h("td", { class: "mono name" }, p.node ? namePieces(p.node) : "–"),
          h("td", {}, phaseBadge(p.waitingReason && p.phase === "Running" ? p.waitingReason : p.phase)),
          h("td", { class: "num" }, h("span", { class: `badge ${p.ready ? "ok" : "bad"}`, text: `${p.readyContainers}/${p.containers}` })),
          h("td", { class: "num", text: p.restarts }),
          h("td", { class: "num", text: age(p.ageSeconds) }))), "pods-table"));
  }
  return h("div", { class: `cluster ${clusterClass(c.name)}`, "data-testid": "cluster-card", "data-cluster": c.name,
    "data-reachable": String(c.reachable) }, parts);
}

// `theater local`: no cluster at all, and that is how it should be.
function renderLocalMode() {
  return h("div", { class: "local-note", "data-testid": "local-note" },
    h("strong", { text: "이 컴퓨터에서 로컬로 실행 중입니다" }),
    h("p", {}, "지금은 ", h("code", { text: "theater local" }),
      " 로 실행하고 있어 쿠버네티스 클러스터가 없습니다. 정상입니다. 아래 표는 이 컴퓨터에서 돌고 있는 서비스입니다. ",
      "클러스터에 배포하면 이 자리에 ctx1 · ctx2 의 노드, Deployment, 파드가 보입니다."));
}

function localNote(s) {
  if (!s.healthy) return "응답하지 않습니다. 꺼져 있거나 아직 시작 중입니다.";
  if (!s.ready) return "아직 준비되지 않았습니다. Redis 연결을 확인하세요.";
  return "";
}

function renderLocal(local, mode) {
  const box = $("local-services");
  if (!local) { box.hidden = true; return; }
  box.hidden = false;
  const title = mode === "local" ? "이 컴퓨터에서 실행 중인 서비스" : "로컬에서 실행 중인 서비스";
  box.replaceChildren(h("h3", { text: title }),
    h("p", { class: "muted small", text: "각 서비스의 /info · /healthz · /readyz 를 5초마다 확인합니다." }),
    // The 비고 column only when some service has something to say.
    table(["서비스", "주소", "살아있음", "준비", "응답한 곳", "비고"].slice(0, local.some(localNote) ? 6 : 5), local.map((s) =>
      h("tr", { "data-testid": "local-service", "data-service": s.service },
        h("td", { class: "mono name" }, namePieces(s.service)),
        h("td", { class: "mono url" }, s.url ? urlPieces(s.url) : "(이 게이트웨이)"),
        h("td", {}, yes(s.healthy, "정상", "응답 없음")),
        h("td", {}, yes(s.ready, "준비됨", "준비 안 됨")),
        h("td", { class: "mono name" }, s.info ? [h("span", { class: "nobr", text: `${s.info.cluster} /` }), " ", namePieces(s.info.pod)] : "–"),
        local.some(localNote) ? h("td", { class: "note", title: s.error || null, text: localNote(s) }) : null)), "local-table"));
}

async function refreshStatus() {
  const res = await api("GET", "/api/status");
  const stamp = new Date().toLocaleTimeString("ko-KR");
  if (!res.ok || !res.data || !Array.isArray(res.data.clusters)) {
    $("status-updated").textContent = `${stamp} · 게이트웨이에서 상태를 가져오지 못했습니다: ${describeError(res, "status").headline}`;
    return;
  }
  const local = res.data.mode === "local";
  $("status-panel").dataset.mode = res.data.mode || "kubernetes";
  $("status-title").textContent = local ? "실행 상태" : "배포 상태";
  $("status-namespace").textContent = res.data.namespace;
  $("status-clusters").replaceChildren(...(local ? [renderLocalMode()] : res.data.clusters.map(renderCluster)));
  renderLocal(res.data.local, res.data.mode);
  $("status-updated").textContent = `마지막 갱신 ${stamp}`;
}

// ------------------------------------------------------------------ start

refresh();
runWhoami();
refreshStatus();
setInterval(refreshStatus, STATUS_EVERY_MS);
setInterval(refreshQuietly, LISTS_EVERY_MS);
