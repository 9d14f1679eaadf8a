// The page only shows the server's state and sends intents; the server checks every one against the rules.
// A participant's secret (the "resume code") is kept for this tab only (sessionStorage) and sent with every
// request; another tab, or a browser that forgot it, continues only with the code typed in.
"use strict";

const $ = (id) => document.getElementById(id);
const secretKey = (id) => `bpjax-secret:${id}`;
let participant = null;
let secret = null;
let view = null;
let selectedSlot = null;
let busy = false;
let refreshTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

async function call(path, body) {
  const headers = secret ? { Authorization: `Bearer ${secret}` } : {};
  const options = body === undefined ? { headers } : {
    method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `server answered ${response.status}` }));
  if (!response.ok) {
    const error = new Error(data.error || `server answered ${response.status}`);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("Retry-After")) || 0;
    throw error;
  }
  return data;
}

// One request at a time; on a refusal show why and reload the server's state.
async function act(path, body) {
  if (busy) return;
  busy = true;
  try {
    render(await call(path, { participant_id: participant, ...body }));
  } catch (error) {
    if (error.status === 404) { // the server restarted: join again with this tab's secret
      busy = false;
      return start(participant, secret);
    }
    $("message").textContent = error.message;
    try { render(await call(`/api/state?participant_id=${encodeURIComponent(participant)}`), true); } catch (_) { }
  } finally {
    busy = false;
  }
}

// Between rounds, while the next tip is being chosen: reload the state (unless a request is under way).
async function refresh() {
  if (busy || !view || view.phase !== "between") return;
  const version = document.body.dataset.version;
  try {
    const next = await call(`/api/state?participant_id=${encodeURIComponent(participant)}`);
    if (document.body.dataset.version === version) render(next, true); // nothing newer came meanwhile
  } catch (_) { }
}

function roundName(stage, round, of) {
  return `${stage === "practice" ? "Practice round" : "Round"} ${round}${of ? ` of ${of}` : ""}`;
}

function summaryText(summary) {
  if (!summary) return "";
  const name = roundName(summary.stage, summary.round, summary.of);
  if (summary.status === "incomplete") return `${name} was left unfinished.`;
  if (!summary.finished) return `${name}: the time limit of ${summary.max_ticks} ticks was reached before all orders were done.`;
  return `${name} done: all orders finished in ${summary.ticks} ticks.`;
}

function render(next, keepMessage = false) {
  view = next;
  document.body.dataset.version = String(Number(document.body.dataset.version) + 1);
  document.body.dataset.phase = view.phase;
  if (!keepMessage) $("message").textContent = view.event || "";
  $("join").hidden = true;
  $("how").hidden = view.phase !== "between";
  $("between").hidden = view.phase !== "between";
  $("finished").hidden = view.phase !== "finished";
  $("board").hidden = view.phase !== "playing";
  $("next-tick").disabled = view.phase !== "playing";
  const tip = view.phase === "playing" ? view.tip : view.phase === "between" ? view.next.tip : null;
  const choosing = view.phase === "between" && view.next.tip_pending;
  $("tip").hidden = !tip && !choosing;
  $("tip").textContent = tip ? `Tip: ${tip}` : choosing ? "Choosing a tip for your next round …" : "";
  clearTimeout(refreshTimer);
  if (choosing) refreshTimer = setTimeout(refresh, 1500); // show the tip once it is chosen
  if (view.phase === "playing") renderBoard();
  else {
    selectedSlot = null;
    $("tick").textContent = "";
    $("round-label").textContent = "";
  }
  $("secret-note").hidden = view.phase !== "between" || !secret;
  $("secret-code").textContent = secret || "";
  if (view.phase === "between") {
    $("summary").textContent = summaryText(view.summary);
    const next = view.next;
    $("next-label").textContent = next.stage === "practice"
      ? `Next: a practice round (${next.round} of ${next.of}) in a practice kitchen. It is not scored.`
      : `Next: ${roundName(next.stage, next.round, next.of)}.`;
    $("continue").textContent = `Start ${roundName(next.stage, next.round, next.of).toLowerCase()}`;
  }
  if (view.phase === "finished") {
    const rows = view.rounds.map((r) => el("tr", {}, el("td", {}, roundName(r.stage, r.round)),
      el("td", {}, r.status === "complete" ? `${r.ticks} ticks` : r.status)));
    $("final-summary").replaceChildren(el("p", {}, summaryText(view.summary)),
      el("table", { class: "rounds" }, el("tr", {}, el("th", {}, "round"), el("th", {}, "result")), ...rows));
  }
}

function renderBoard() {
  $("round-label").textContent = roundName(view.stage, view.round, view.of);
  $("tick").textContent = `Tick #${view.counter}/${view.max_ticks}`;
  const legal = new Set(view.legal.map((p) => `${p.worker}/${p.slot}`));
  const open = new Set(view.legal.map((p) => p.slot));
  if (!open.has(selectedSlot)) selectedSlot = null;

  $("orders").replaceChildren(...view.orders.map((order) => el("div", { class: `order${order.done ? " done" : ""}` },
    el("h3", {}, `${order.dish} #${order.order}`),
    ...order.subtasks.map((task) => {
      const label = task.state === "in_progress" ? task.worker.replace("_", "-")
        : task.state === "waiting" ? "waiting" : task.state === "available" ? "open" : "done";
      const button = el("button", {
        type: "button", class: `subtask ${task.state}${task.slot === selectedSlot ? " selected" : ""}`,
        "data-slot": String(task.slot), "data-state": task.state,
        title: task.after.length ? `after ${task.after.join(", ")}` : "",
      }, task.name, el("span", { class: "state" }, label));
      if (open.has(task.slot)) {
        button.draggable = true;
        button.addEventListener("click", () => { selectedSlot = selectedSlot === task.slot ? null : task.slot; renderBoard(); });
        button.addEventListener("dragstart", (event) => { event.dataTransfer.setData("text/plain", String(task.slot)); });
      } else button.disabled = task.state !== "available";
      return button;
    }))));

  $("workers").replaceChildren(...view.workers.map((worker) => {
    const canTake = selectedSlot !== null && legal.has(`${worker.name}/${selectedSlot}`);
    const card = el("div", {
      class: `worker${worker.idle ? " idle" : ""}${canTake ? " can-take" : ""}`, "data-worker": worker.name,
    }, el("h3", {}, worker.name.replace("_", "-")), el("div", { class: "status" }, worker.status),
    el("div", { class: "speeds" }, ...view.task_types.map((type) => {
      const speed = worker.speeds[type];
      const text = speed === null ? "?" : speed === "cannot" ? "cannot" : `${speed} tick${speed === 1 ? "" : "s"}`;
      return el("span", {}, `${type}: ${text}`);
    })));
    card.addEventListener("click", () => {
      if (selectedSlot !== null) act("/api/assign", { worker: worker.name, slot: selectedSlot, tick: view.tick });
    });
    card.addEventListener("dragover", (event) => { if (worker.idle) { event.preventDefault(); card.classList.add("drop-over"); } });
    card.addEventListener("dragleave", () => card.classList.remove("drop-over"));
    card.addEventListener("drop", (event) => {
      event.preventDefault();
      act("/api/assign", { worker: worker.name, slot: Number(event.dataTransfer.getData("text/plain")), tick: view.tick });
    });
    return card;
  }));
}

$("next-tick").addEventListener("click", () => { if (view && view.phase === "playing") act("/api/next_tick", { tick: view.tick }); });
$("continue").addEventListener("click", () => act("/api/start", {}));
$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start($("participant").value.trim(), $("secret").value.trim() || null);
});

// Join as `id`: a new participant gets its secret from the server; one who has joined before needs it
// (this tab's copy, or `code` typed into the form).
async function start(id, code) {
  participant = id;
  secret = (code && code.toLowerCase()) || sessionStorage.getItem(secretKey(id));
  try {
    const data = await call("/api/join", { participant_id: id });
    if (data.secret) secret = data.secret;
    sessionStorage.setItem(secretKey(id), secret);
    localStorage.setItem("bpjax-participant", id);
    render(data);
  } catch (error) {
    if (error.status === 429 && error.retryAfter) {
      $("message").textContent = `Many people are joining right now; trying again in ${error.retryAfter} s …`;
      setTimeout(() => start(id, code), error.retryAfter * 1000);
      return;
    }
    const typed = Boolean(code);
    secret = null;
    sessionStorage.removeItem(secretKey(id));
    askToJoin(id, error, typed);
  }
}

function askToJoin(id, error, typed) {
  const needsCode = error.status === 401 || (error.status === 403 && error.message.startsWith("Authorization"));
  $("participant").value = id;
  $("secret").value = "";
  $("secret-field").hidden = !needsCode;
  $("message").textContent = !needsCode ? error.message : typed
    ? `That resume code is not ${id}'s. Check it and try again, or ask the experimenter.`
    : `${id} has already joined this game. To continue, enter the resume code you were shown when you joined.`;
  $("join").hidden = $("how").hidden = false;
  $("board").hidden = $("between").hidden = $("finished").hidden = true;
  document.body.dataset.phase = "join";
}

const fromUrl = new URLSearchParams(location.search).get("participant");
if (fromUrl) start(fromUrl);
else {
  $("participant").value = localStorage.getItem("bpjax-participant") || "";
  $("join").hidden = $("how").hidden = false;
}
