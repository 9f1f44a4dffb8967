// Theater MSA web UI: plain JavaScript, no build step, no CDN.
// Talks only to the api-gateway that served this page (same origin).
"use strict";

const STATUS_EVERY_MS = 5000;
const LIST_LIMIT = 200;

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
  for (const c of children.flat()) {
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
    peer_unavailable: { text: "다른 서비스에 연결할 수 없습니다. 잠시 후 다시 시도하세요." },
    peer_timeout: { text: "다른 서비스가 제시간에 응답하지 않았습니다. 잠시 후 다시 시도하세요." },
    backend_unavailable: { text: "서비스에 연결할 수 없습니다. 서비스가 꺼져 있거나 아직 준비되지 않았습니다." },
    backend_timeout: { text: "서비스가 제시간에 응답하지 않았습니다. 잠시 후 다시 시도하세요." },
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
    return { headline: MESSAGES.status[0], fields: [], flagged: [], server: res.networkError || "" };
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
  if (!headline) headline = MESSAGES.status[res.status] || MESSAGES.failed(res.status);
  const fields = (err.fields || []).map(fieldText);
  for (const f of fields) flagged.push(f.field);
  const server = err.message ? err.message : `HTTP ${res.status}`;
  return { headline, fields, flagged, server };
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

const state = { users: [], movies: [], bookings: [], more: {} };

async function loadList(kind) {
  const res = await api("GET", `/${kind}/?limit=${LIST_LIMIT}`);
  showServedBy(`${kind.slice(0, -1)}-served-by`, res);
  if (res.ok && res.data && Array.isArray(res.data.items)) {
    state[kind] = res.data.items;
    state.more[kind] = Boolean(res.data.next);
    return null;
  }
  return res;
}

function listError(ul, kind, res) {
  const d = describeError(res, kind);
  ul.replaceChildren(h("li", { class: "empty" }, `목록을 불러오지 못했습니다: ${d.headline}`));
}

function countText(kind) {
  const n = state[kind].length;
  return state.more[kind] ? `(${n}+)` : `(${n})`;
}

function renderUsers() {
  const ul = $("user-list");
  $("user-count").textContent = countText("users");
  ul.replaceChildren(...(state.users.length ? state.users.map((u) =>
    h("li", { "data-testid": "user-item", "data-id": u.id },
      h("div", { class: "main" },
        h("div", { class: "title", "data-testid": "user-item-name", text: u.name }),
        h("div", { class: "meta", text: u.email })),
      h("button", { class: "small danger", type: "button", "data-testid": "user-delete", onclick: () => removeUser(u) }, "삭제")))
    : [h("li", { class: "empty", text: "아직 사용자가 없습니다." })]));
  fillSelect($("booking-user"), state.users, (u) => `${u.name} (${u.email})`, "사용자를 고르세요");
}

function seatBar(m) {
  const ratio = m.capacity ? m.availableSeats / m.capacity : 0;
  const cls = m.availableSeats === 0 ? "none" : ratio < 0.2 ? "low" : "";
  return h("div", { class: "seatbar" }, h("div", { class: cls, style: `width:${Math.round(ratio * 100)}%` }));
}

function renderMovies() {
  const ul = $("movie-list");
  $("movie-count").textContent = countText("movies");
  ul.replaceChildren(...(state.movies.length ? state.movies.map((m) =>
    h("li", { "data-testid": "movie-item", "data-id": m.id },
      h("div", { class: "main" },
        h("div", { class: "title", "data-testid": "movie-item-title", text: m.title }),
        h("div", { class: "meta" }, `${m.genre} · ${m.year}년`,
          // movie-service v2 adds bookingRate (예매율); v1 answers have none.
          m.bookingRate === undefined || m.bookingRate === null ? null
            : h("span", { class: "badge v2", "data-testid": "movie-rate", title: "movie-service v2 가 알려 주는 예매율", text: `예매율 ${m.bookingRate}%` })),
        seatBar(m)),
      h("div", { class: "seats", title: "남은 좌석 / 전체 좌석" },
        h("span", { "data-testid": "movie-seats", text: `${m.availableSeats} / ${m.capacity}` }), " 석"),
      h("button", { class: "small danger", type: "button", "data-testid": "movie-delete", onclick: () => removeMovie(m) }, "삭제")))
    : [h("li", { class: "empty", text: "아직 영화가 없습니다." })]));
  fillSelect($("booking-movie"), state.movies, (m) => `${m.title} (잔여 ${m.availableSeats}석)`, "영화를 고르세요");
}

// Bookings carry the user's name and the movie's title as they were when
// booked (userName, movieTitle); older bookings fall back to the lists.
function bookingNames(b) {
  const user = state.users.find((u) => u.id === b.userId);
  const movie = state.movies.find((m) => m.id === b.movieId);
  return {
    user: b.userName || (user && user.name) || "(알 수 없는 사용자)",
    movie: b.movieTitle || (movie && movie.title) || "(알 수 없는 영화)",
    userGone: !user && !state.more.users,
    movieGone: !movie && !state.more.movies,
  };
}

function renderBookings() {
  const ul = $("booking-list");
  $("booking-count").textContent = countText("bookings");
  ul.replaceChildren(...(state.bookings.length ? state.bookings.map((b) => {
    const names = bookingNames(b);
    const confirmed = b.status === "confirmed";
    const gone = [names.userGone ? "사용자 삭제됨" : null, names.movieGone ? "영화 삭제됨" : null].filter(Boolean);
    return h("li", { "data-testid": "booking-item", "data-id": b.id, class: confirmed ? "" : "cancelled" },
      h("div", { class: "main" },
        h("div", { class: "title", text: `${names.user} → ${names.movie}` }),
        h("div", { class: "meta" }, `${b.seats}석 · `,
          h("span", { class: `badge ${confirmed ? "ok" : "gray"}`, "data-testid": "booking-status", text: confirmed ? "확정" : "취소됨" }),
          gone.length ? h("span", { class: "gone", "data-testid": "booking-gone", text: ` · ${gone.join(", ")}` }) : null)),
      confirmed ? h("button", { class: "small danger", type: "button", "data-testid": "booking-cancel", onclick: () => cancelBooking(b) }, "취소") : null);
  }) : [h("li", { class: "empty", text: "아직 예약이 없습니다." })]));
}

function fillSelect(select, items, label, placeholder) {
  const keep = select.value;
  select.replaceChildren(h("option", { value: "", text: placeholder }),
    ...items.map((it) => h("option", { value: it.id, text: label(it) })));
  if (items.some((it) => it.id === keep)) select.value = keep;
}

async function refresh(...kinds) {
  const wanted = kinds.length ? kinds : ["users", "movies", "bookings"];
  const failures = await Promise.all(wanted.map(loadList));
  // Bookings show user names and movie titles, so they render after all loads.
  const render = { users: renderUsers, movies: renderMovies, bookings: renderBookings };
  for (const kind of ["users", "movies", "bookings"]) {
    const i = wanted.indexOf(kind);
    if (i >= 0 && failures[i]) listError($(`${kind.slice(0, -1)}-list`), kind, failures[i]);
    else render[kind]();
  }
}

// ------------------------------------------------------------------ actions

function wireForm(formId, errorId, kind, buildBody, after) {
  const form = $(formId);
  const box = $(errorId);
  watchFormError(form, box);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const headers = kind === "bookings" ? { "Idempotency-Key": idempotencyKey() } : {};
      const res = await api("POST", `/${kind}/`, buildBody(), headers);
      showServedBy(`${kind.slice(0, -1)}-served-by`, res);
      if (res.ok) {
        clearFormError(form, box);
        after(form);
        await refresh(...(kind === "bookings" ? ["movies", "bookings"] : [kind, "bookings"]));
      } else {
        showFormError(form, box, res, kind);
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

function confirmedBookingsOf(key, id) {
  return state.bookings.filter((b) => b[key] === id && b.status === "confirmed");
}

function bookingNote(list) {
  if (!list.length) return "";
  const seats = list.reduce((n, b) => n + b.seats, 0);
  return ` 확정된 예약이 ${list.length}건(${seats}석) 있으며, 삭제하면 함께 취소되고 좌석이 돌아갑니다.`;
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
  const ok = await confirmAction({
    title: "사용자를 삭제할까요?",
    text: `${u.name} (${u.email}) 사용자를 삭제합니다. 삭제하면 되돌릴 수 없습니다.${bookingNote(confirmedBookingsOf("userId", u.id))}`,
    yes: "사용자 삭제",
  });
  if (ok) await act("DELETE", `/users/${encodeURIComponent(u.id)}`, "users", ["users", "movies", "bookings"]);
}

async function removeMovie(m) {
  const ok = await confirmAction({
    title: "영화를 삭제할까요?",
    text: `${m.title} (${m.year}년) 영화를 삭제합니다. 삭제하면 되돌릴 수 없습니다.${bookingNote(confirmedBookingsOf("movieId", m.id))}`,
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

wireForm("booking-form", "booking-error", "bookings", () => {
  const body = { seats: numberField($("booking-seats").value) };
  if ($("booking-user").value) body.userId = $("booking-user").value;
  if ($("booking-movie").value) body.movieId = $("booking-movie").value;
  return body;
}, () => { $("booking-seats").value = "1"; });

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
  const rows = [...counts.values()].sort((a, b) => b.n - a.n).map((c) => {
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
  not_configured: { text: "다른 클러스터의 kubeconfig가 아직 연결되지 않았습니다 (README 5.3 참고)", calm: true },
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
        h("tr", {}, h("td", { class: "mono", text: n.name }), h("td", { text: n.clusterLabel || "–" }), h("td", {}, yes(n.ready)))), "nodes-table"));
    parts.push(h("h4", { text: `Deployment (${c.deployments.length})` }),
      table(["이름", "준비 / 목표"], c.deployments.map((d) =>
        h("tr", {}, h("td", { class: "mono", text: d.name }),
          h("td", { class: "num" }, h("span", { class: `badge ${d.ready >= d.desired && d.desired > 0 ? "ok" : d.ready > 0 ? "warn" : "bad"}`, text: `${d.ready} / ${d.desired}` })))), "deployments-table"));
    parts.push(h("h4", { text: `파드 (${c.pods.length})` }),
      table(["이름", "노드", "상태", "준비", "재시작", "나이"], c.pods.map((p) =>
        h("tr", {},
          h("td", { class: "mono", text: p.name }),
          h("td", { class: "mono", text: p.node || "–" }),
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
        h("td", { class: "mono", text: s.service }),
        h("td", { class: "mono url", text: s.url || "(이 게이트웨이)" }),
        h("td", {}, yes(s.healthy, "정상", "응답 없음")),
        h("td", {}, yes(s.ready, "준비됨", "준비 안 됨")),
        h("td", { class: "mono", text: s.info ? `${s.info.cluster} / ${s.info.pod}` : "–" }),
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
