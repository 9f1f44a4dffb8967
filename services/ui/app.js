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

// ------------------------------------------------------------------ errors in Korean

const FIELD_NAMES = {
  name: "이름", email: "이메일", title: "제목", genre: "장르", year: "개봉 연도", capacity: "좌석 수",
  userId: "사용자", movieId: "영화", seats: "좌석 수", "(body)": "요청 본문",
};

const CODE_MESSAGES = {
  email_taken: "이미 같은 이메일로 등록된 사용자가 있습니다.",
  user_not_found: "사용자를 찾을 수 없습니다. (이미 삭제되었을 수 있습니다)",
  movie_not_found: "영화를 찾을 수 없습니다. (이미 삭제되었을 수 있습니다)",
  booking_not_found: "예약을 찾을 수 없습니다.",
  sold_out: "남은 좌석이 부족합니다.",
  malformed_json: "요청 형식이 잘못되었습니다.",
  not_an_object: "요청 형식이 잘못되었습니다.",
  payload_too_large: "입력이 너무 깁니다 (64 KiB 초과).",
  redis_unavailable: "데이터 저장소(Redis)에 연결할 수 없습니다. 잠시 후 다시 시도하세요.",
  peer_unavailable: "다른 서비스에 연결할 수 없습니다. 잠시 후 다시 시도하세요.",
  peer_timeout: "다른 서비스가 제시간에 응답하지 않았습니다.",
  backend_unavailable: "서비스에 연결할 수 없습니다 (서비스가 꺼져 있거나 준비되지 않았습니다).",
  backend_timeout: "서비스가 제시간에 응답하지 않았습니다.",
  request_timeout: "요청을 제시간에 다 받지 못했습니다. 다시 시도하세요.",
  headers_too_large: "요청 헤더가 너무 큽니다.",
  bad_gateway: "서비스가 잘못된 응답을 보냈습니다.",
};

// The services name each bad field's rule with a `reason` code (and its
// `limit` when there is one): services/common/body.py.
const REASON_MESSAGES = {
  required: () => "필수 항목입니다.",
  unknown_field: () => "알 수 없는 항목입니다.",
  not_text: () => "문자열이어야 합니다.",
  not_integer: () => "정수를 입력하세요.",
  empty: () => "비워 둘 수 없습니다.",
  too_short: (n) => `${n}자 이상이어야 합니다.`,
  too_long: (n) => `${n}자 이하여야 합니다.`,
  too_small: (n) => `${n} 이상이어야 합니다.`,
  too_large: (n) => `${n} 이하여야 합니다.`,
  invalid: () => "올바르지 않은 값입니다.",
};

function fieldRule(f) {
  if (f.reason === "bad_format") {
    if (f.field === "email") return "이메일 형식이 아닙니다 (예: name@example.com).";
    if (f.field === "userId" || f.field === "movieId") return "영문자·숫자·'_'·'-' 1–64자여야 합니다.";
    return "형식이 올바르지 않습니다.";
  }
  const rule = REASON_MESSAGES[f.reason];
  return rule ? rule(f.limit) : fieldMessage(f.field, f.message);
}

const STATUS_MESSAGES = {
  400: "요청 형식이 잘못되었습니다.",
  404: "대상을 찾을 수 없습니다.",
  408: "요청을 제시간에 다 받지 못했습니다.",
  409: "요청을 처리할 수 없습니다 (충돌).",
  413: "입력이 너무 깁니다.",
  422: "입력값을 확인하세요.",
  500: "서버 내부 오류가 발생했습니다.",
  502: "게이트웨이 오류가 발생했습니다.",
  503: "서비스를 사용할 수 없습니다. 잠시 후 다시 시도하세요.",
  504: "응답 시간이 초과되었습니다.",
};

function fieldMessage(field, msg) {
  const m = String(msg || "").toLowerCase();
  if (m.includes("field required") || m.includes("missing")) return "필수 항목입니다.";
  if (m.includes("unknown field")) return "알 수 없는 항목입니다.";
  if (m.includes("email") || (field === "email" && m.includes("pattern"))) return "이메일 형식이 아닙니다 (예: name@example.com).";
  if (m.includes("pattern")) return "형식이 올바르지 않습니다.";
  if (m.includes("blank") || m.includes("empty") || m.includes("at least 1 character")) return "비워 둘 수 없습니다.";
  if (m.includes("at most") || m.includes("too long")) return "너무 깁니다.";
  if (m.includes("greater than") || m.includes("at least")) return "값이 너무 작습니다.";
  if (m.includes("less than")) return "값이 너무 큽니다.";
  if (m.includes("valid integer") || m.includes("int")) return "정수를 입력하세요.";
  if (m.includes("string")) return "문자열이어야 합니다.";
  return "올바르지 않은 값입니다.";
}

// Korean headline, field list and the server's own message: never raw JSON.
function describeError(res, context) {
  if (res.status === 0) {
    return { headline: "게이트웨이에 연결할 수 없습니다. 네트워크나 서버 상태를 확인하세요.", fields: [], server: res.networkError };
  }
  const err = (res.data && res.data.error) || {};
  let headline = CODE_MESSAGES[err.code];
  if (!headline && res.status === 409 && context === "users") headline = CODE_MESSAGES.email_taken;
  if (!headline && res.status === 409 && context === "bookings") headline = CODE_MESSAGES.sold_out;
  if (!headline && res.status === 404 && context === "bookings") {
    const msg = String(err.message || "");
    headline = msg.startsWith("user") ? CODE_MESSAGES.user_not_found
      : msg.startsWith("movie") ? CODE_MESSAGES.movie_not_found : STATUS_MESSAGES[404];
  }
  if (!headline) headline = STATUS_MESSAGES[res.status] || `요청이 실패했습니다 (HTTP ${res.status}).`;
  const fields = (err.fields || []).map((f) => ({
    field: f.field,
    text: `${FIELD_NAMES[f.field] || f.field}: ${fieldRule(f)}`,
  }));
  const server = err.message ? `서버 메시지: ${err.message}` : `HTTP ${res.status}`;
  return { headline, fields, server };
}

function showFormError(form, box, res, context) {
  const d = describeError(res, context);
  const parts = [h("strong", { text: d.headline })];
  if (d.fields.length) parts.push(h("ul", {}, d.fields.map((f) => h("li", { text: f.text }))));
  parts.push(h("div", { class: "server", text: d.server }));
  box.replaceChildren(...parts);
  box.hidden = false;
  for (const el of form.querySelectorAll("input, select")) {
    el.classList.toggle("invalid", d.fields.some((f) => f.field === el.name));
  }
}

function clearFormError(form, box) {
  box.hidden = true;
  box.replaceChildren();
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
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
        h("div", { class: "meta", text: `${m.genre} · ${m.year}년` }),
        seatBar(m)),
      h("div", { class: "seats", title: "남은 좌석 / 전체 좌석" },
        h("span", { "data-testid": "movie-seats", text: `${m.availableSeats} / ${m.capacity}` }), " 석"),
      h("button", { class: "small danger", type: "button", "data-testid": "movie-delete", onclick: () => removeMovie(m) }, "삭제")))
    : [h("li", { class: "empty", text: "아직 영화가 없습니다." })]));
  fillSelect($("booking-movie"), state.movies, (m) => `${m.title} (잔여 ${m.availableSeats}석)`, "영화를 고르세요");
}

function renderBookings() {
  const ul = $("booking-list");
  $("booking-count").textContent = countText("bookings");
  const users = new Map(state.users.map((u) => [u.id, u]));
  const movies = new Map(state.movies.map((m) => [m.id, m]));
  ul.replaceChildren(...(state.bookings.length ? state.bookings.map((b) => {
    const user = users.get(b.userId);
    const movie = movies.get(b.movieId);
    const confirmed = b.status === "confirmed";
    return h("li", { "data-testid": "booking-item", "data-id": b.id, class: confirmed ? "" : "cancelled" },
      h("div", { class: "main" },
        h("div", { class: "title", text: `${user ? user.name : "(삭제된 사용자)"} → ${movie ? movie.title : "(삭제된 영화)"}` }),
        h("div", { class: "meta" }, `${b.seats}석 · `,
          h("span", { class: `badge ${confirmed ? "ok" : "gray"}`, "data-testid": "booking-status", text: confirmed ? "확정" : "취소됨" }))),
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

async function act(method, path, kind, errorBoxId, reload) {
  const res = await api(method, path);
  showServedBy(`${kind.slice(0, -1)}-served-by`, res);
  const form = $(`${kind.slice(0, -1)}-form`);
  if (!res.ok && res.status !== 404) showFormError(form, $(errorBoxId), res, kind);
  else clearFormError(form, $(errorBoxId));
  await refresh(...reload);
}

const removeUser = (u) => act("DELETE", `/users/${encodeURIComponent(u.id)}`, "users", "user-error", ["users", "bookings"]);
const removeMovie = (m) => act("DELETE", `/movies/${encodeURIComponent(m.id)}`, "movies", "movie-error", ["movies", "bookings"]);
const cancelBooking = (b) => act("DELETE", `/bookings/${encodeURIComponent(b.id)}`, "bookings", "booking-error", ["movies", "bookings"]);

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
      $("gateway-served-by").textContent = `${g.service}@${g.cluster}/${g.pod} (노드 ${g.node})`;
    }
    box.replaceChildren(...res.data.services.map((svc) => {
      const total = svc.answers.length || 1;
      const rows = Object.entries(svc.counts).map(([key, count]) => {
        const isErr = key.startsWith("error:");
        const cluster = isErr ? "" : key.split("/")[0];
        const pod = isErr ? key.slice(6).trim() : key.slice(cluster.length + 1);
        return h("div", { class: "bar", "data-testid": "whoami-row" },
          h("div", { class: "label" },
            isErr ? h("span", { class: "badge bad", text: "오류" }) : h("span", { class: `chip ${clusterClass(cluster)}`, text: cluster }),
            pod),
          h("div", { class: "n", text: `${count}회` }),
          h("div", { class: "track" }, h("div", { class: `fill ${isErr ? "err" : clusterClass(cluster)}`, style: `width:${(100 * count) / total}%` })));
      });
      return h("div", { class: "who", "data-testid": "whoami-service", "data-service": svc.service },
        h("h3", { text: svc.service }), rows);
    }));
  } finally {
    button.disabled = false;
  }
}

$("whoami-run").addEventListener("click", runWhoami);

// ------------------------------------------------------------------ deployment status

const REASONS = {
  not_configured: "원격 kubeconfig가 설정되지 않았습니다",
  not_in_cluster: "쿠버네티스 밖에서 실행 중입니다 (로컬 실행: 아래에 로컬 서비스 상태를 표시합니다)",
  config_error: "kubeconfig를 읽을 수 없습니다",
  unreachable: "API 서버에 연결할 수 없습니다",
  timeout: "API 서버가 제시간에 응답하지 않았습니다",
  unauthorized: "인증에 실패했습니다 (토큰이 거부됨)",
  forbidden: "권한(RBAC)이 부족해 일부 목록을 볼 수 없습니다",
  error: "조회 중 오류가 발생했습니다",
};
const SOURCES = { "in-cluster": "파드 ServiceAccount", kubeconfig: "kubeconfig", none: "설정 없음" };

function table(headers, rows, testid) {
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

function renderCluster(c) {
  const head = h("h3", {},
    h("span", { class: `chip ${clusterClass(c.name)}`, text: c.name }),
    c.reachable ? (c.reason ? h("span", { class: "badge warn", text: "일부만 보임" }) : h("span", { class: "badge ok", text: "연결됨" }))
      : h("span", { class: "badge bad", text: "연결되지 않음" }),
    h("span", { class: "src", text: `${c.role === "local" ? "게이트웨이가 있는 클러스터" : "원격 클러스터"} · ${SOURCES[c.source] || c.source}${c.server ? " · " + c.server : ""}` }));
  const parts = [head];
  if (c.reason) {
    let text = `${c.name}: ${c.reachable ? "" : "연결되지 않음 — "}${REASONS[c.reason] || REASONS.error}`;
    if (c.reason === "forbidden" && c.forbidden.length) text += ` (${c.forbidden.join(", ")})`;
    parts.push(h("div", { class: `message ${c.reachable ? "warn" : ""}`, "data-testid": "cluster-message", text }));
    if (c.error) parts.push(h("div", { class: "detail", text: c.error }));
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

function renderLocal(local) {
  const box = $("local-services");
  if (!local) { box.hidden = true; return; }
  box.hidden = false;
  box.replaceChildren(h("h3", { text: "로컬에서 실행 중인 서비스 (/info · /healthz · /readyz)" }),
    table(["서비스", "주소", "살아있음", "준비", "클러스터 / 파드", "비고"], local.map((s) =>
      h("tr", { "data-testid": "local-service", "data-service": s.service },
        h("td", { class: "mono", text: s.service }),
        h("td", { class: "mono", text: s.url || "(이 게이트웨이)" }),
        h("td", {}, yes(s.healthy, "정상", "응답 없음")),
        h("td", {}, yes(s.ready, "준비됨", "준비 안 됨")),
        h("td", { class: "mono", text: s.info ? `${s.info.cluster} / ${s.info.pod}` : "–" }),
        h("td", { class: "detail", text: s.error || "" }))), "local-table"));
}

async function refreshStatus() {
  const res = await api("GET", "/api/status");
  const stamp = new Date().toLocaleTimeString("ko-KR");
  if (!res.ok || !res.data || !Array.isArray(res.data.clusters)) {
    $("status-updated").textContent = `${stamp} · 게이트웨이에서 상태를 가져오지 못했습니다: ${describeError(res, "status").headline}`;
    return;
  }
  $("status-namespace").textContent = res.data.namespace;
  $("status-clusters").replaceChildren(...res.data.clusters.map(renderCluster));
  renderLocal(res.data.local);
  $("status-updated").textContent = `마지막 갱신 ${stamp}`;
}

// ------------------------------------------------------------------ start

refresh();
runWhoami();
refreshStatus();
setInterval(refreshStatus, STATUS_EVERY_MS);
