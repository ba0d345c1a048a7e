// The triage page. Messages are untrusted text from the public: they are only ever
// put in the page with textContent (never innerHTML), and the server forbids inline scripts.
"use strict";

const URGENT = 8;       // the first categories of the urgency order are shown in red
const BATCH = 100;      // pasted lines per /api/classify request, so progress shows and the page never blocks
const MAX_SHOWN = 1000; // rows drawn at once; the rest stay in the CSV download and the filter
const RELATED = ["no", "yes", "unsure"]; // `related`'s labels 0, 1, 2

const state = { model: null, columns: ["message"], items: [], decided: {}, queue: [], claimed: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Off loopback, the page's answers carry the public's messages: every request but /api/model then carries the
// operator's token (the server refuses it without one).
function auth(headers) {
  const token = $("token").value.trim();
  return token ? { ...(headers || {}), Authorization: `Bearer ${token}` } : { ...(headers || {}) };
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function errorOf(response) {
  try { return (await response.json()).error || response.statusText; } catch (e) { return response.statusText; }
}

async function loadModel() {
  const response = await fetch("/api/model");
  state.model = await response.json();
  const filter = $("filter");
  for (const c of state.model.urgency) filter.appendChild(el("option", { value: c }, c));
  drawModel();
  retrainNote();
  $("tab-review").hidden = !state.model.decisions;
  $("tab-team").hidden = !state.model.decisions;
  $("review-disputed").hidden = !state.model.reviewers.length;
  if (state.model.decisions) {
    loadSurges().catch(() => {});
    setInterval(() => loadSurges().catch(() => {}), 60_000);
  }
  $("token-label").hidden = !state.model.operators_required;
  $("name-label").hidden = !state.model.decisions || state.model.operators_required;
  $("operator-name").value = localStorage.getItem("operator-name") || "";
  $("operator-name").addEventListener("change", () => localStorage.setItem("operator-name", $("operator-name").value.trim()));
  if (state.model.operators_required) setStatus("Enter your operator token to read and decide messages.");
  else await loadDecided();
}

// With --db, operators' decisions are kept: which messages are decided, and by whom.
async function loadDecided() {
  if (!state.model.decisions) return;
  const response = await fetch("/api/decided", { headers: auth() });
  if (response.ok) state.decided = (await response.json()).decided;
}

// The server picks up a newer export under --export_dir (as TF Serving does): after each batch of answers the
// page asks which model gave them, and says so when it changed.
async function checkModel() {
  const before = state.model.about.path;
  const response = await fetch("/api/model");
  if (!response.ok) return "";
  state.model = await response.json();
  retrainNote();
  if (state.model.about.path === before) return "";
  drawModel();
  return ` Now scored by export version ${state.model.about.export_version} (${state.model.about.path}).`;
}

async function classifyPasted() {
  const lines = $("messages").value.split("\n").filter((l) => l.trim() !== "");
  if (!lines.length) { setStatus("Paste at least one message.", true); return; }
  state.columns = ["message"];
  state.items = [];
  const progress = $("progress");
  progress.hidden = false;
  progress.max = lines.length;
  progress.value = 0;
  let warning = "";  // the answers came, but something beside them failed (the review queue's file, say)
  for (let start = 0; start < lines.length; start += BATCH) {
    const response = await fetch("/api/classify", {
      method: "POST", headers: auth({ "Content-Type": "application/json" }),
      body: JSON.stringify({ messages: lines.slice(start, start + BATCH) }),
    });
    if (!response.ok) { progress.hidden = true; setStatus(await errorOf(response), true); return; }
    const answer = await response.json();
    state.items.push(...answer.results);
    if (answer.warning) warning = answer.warning;
    progress.value = state.items.length;
    setStatus(`Scored ${state.items.length} of ${lines.length} messages…`);
  }
  progress.hidden = true;
  const failed = state.items.filter((item) => item.error).length;
  setStatus(`Scored ${state.items.length - failed} messages` + (failed ? `; ${failed} could not be scored.` : ".") +
            (warning ? ` ${warning}` : "") + await checkModel(), failed > 0 || Boolean(warning));
  render();
}

async function uploadFile(file) {
  if (state.model && file.size > state.model.max_upload_bytes) {
    setStatus(`${file.name}: ${file.size} bytes is over the limit of ${state.model.max_upload_bytes} bytes; ` +
              "split it into smaller files.", true);
    return;
  }
  state.items = [];
  const progress = $("progress");
  progress.hidden = false;
  progress.removeAttribute("value");
  setStatus(`Uploading ${file.name}…`);
  const response = await fetch("/api/upload", { method: "POST", headers: auth({ "Content-Type": "text/csv" }),
                                                 body: file });
  if (!response.ok) { progress.hidden = true; setStatus(`${file.name}: ${await errorOf(response)}`, true); return; }
  // NDJSON, streamed as the server scores: show progress as lines arrive.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", last = null;  // the upload's closing line: {"report": "...", "unreadable": N}
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: !done });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = JSON.parse(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 1);
      if (line.columns) state.columns = line.columns;
      else if (line.report !== undefined) last = line;
      else state.items.push(line);
    }
    setStatus(`${file.name}: scored ${state.items.length} rows…`);
    if (done) break;
  }
  progress.hidden = true;
  setStatus((last ? `${file.name}: ${last.report}` : `${file.name}: the answer stopped early`) +
            (last && last.warning ? ` ${last.warning}` : "") + await checkModel(),
            !last || last.unreadable !== 0 || Boolean(last && last.warning));
  render();
}

// What a row shows: the standing decision where there is one (its categories, in urgency order), else the model's.
function shown(item) {
  const decided = item.second_opinion ? null : state.decided[item.message_id];  // a second opinion is blind
  if (!decided) return { predicted: item.predicted, priority: item.priority, related: item.related, decided: null };
  const predicted = state.model.urgency.filter((c) => c !== "related" && decided.labels[c] === 1);
  const rank = state.model.urgency.findIndex((c) => predicted.includes(c));
  return { predicted, priority: rank < 0 ? state.model.urgency.length + 1 : rank + 1,
           related: RELATED[decided.labels.related], decided };
}

function ordered() {
  // Most urgent first (by the decision where one stands); near-copies fold into their group's first row.
  const filter = $("filter").value;
  const rows = state.items
    .map((item, index) => ({ item, index, view: shown(item) }))
    .filter(({ view }) => !filter || view.predicted.includes(filter))
    .sort((a, b) => a.view.priority - b.view.priority || a.index - b.index);
  const first = new Map();
  const folded = [];
  for (const row of rows) {
    const leader = row.item.group && first.get(row.item.group);
    if (leader) { leader.copies.push(row.item); continue; }
    row.copies = [];
    if (row.item.group) first.set(row.item.group, row);
    folded.push(row);
  }
  return folded;
}

function render() {
  const rows = ordered();
  drawRows($("results"), rows.slice(0, MAX_SHOWN));
  $("results").hidden = false;
  $("toolbar").hidden = false;
  const copies = rows.reduce((n, r) => n + r.copies.length, 0);
  $("count").textContent = (rows.length > MAX_SHOWN
    ? `showing the ${MAX_SHOWN} most urgent of ${rows.length} rows; the CSV holds all` : `${rows.length} rows`) +
    (copies ? ` (${copies} near-copies folded into their first message's row)` : "");
}

function drawRows(table, rows) {
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  const urgent = new Set(state.model ? state.model.urgency.slice(0, URGENT) : []);
  const review = table.id === "review-results";
  rows.forEach(({ item, index, copies }, position) => {
    const view = shown(item);
    copies = review ? (item.copies || []) : (copies || []);
    const tr = el("tr", { class: view.decided ? "item decided" : "item", "data-index": String(index),
                          "data-key": item.message_id || "", tabindex: "0" });
    tr.appendChild(el("td", {}, String(review ? position + 1 : index + 1)));  // Review: rank; Classify: line
    tr.appendChild(el("td", {}, view.predicted.length ? view.predicted[0] : "—"));
    tr.appendChild(el("td", { class: "message" }, item.row.message));
    const cats = el("td", { class: "categories" });
    if (item.error) cats.appendChild(el("span", { class: "chip error" }, `not scored: ${item.error}`));
    else if (view.decided) cats.appendChild(el("span", { class: "chip decided" }, `decided by ${view.decided.operator}`));
    else if (item.unread) cats.appendChild(el("span", { class: "chip urgent" }, "model could not read it: read it yourself"));
    else if (item.not_english) {
      cats.appendChild(el("span", { class: "chip urgent" }, "not English: this model reads English only; read it yourself"));
    }
    if (!item.error && !view.predicted.length) cats.appendChild(el("span", { class: "none" }, "none"));
    if (item.claimed_by && item.claimed_by !== myName()) {
      cats.appendChild(el("span", { class: "chip claimed" }, `being read by ${item.claimed_by}`));
    }
    if (copies.length) cats.appendChild(el("span", { class: "chip copies" }, `+${copies.length} near-copies`));
    if (item.second_opinion) {
      cats.appendChild(el("span", { class: "chip second" }, "second opinion: decide it yourself (another operator has)"));
    }
    for (const o of item.opinions || []) {
      const said = state.model.urgency.filter((c) => c !== "related" && o.labels[c] === 1);
      cats.appendChild(el("span", { class: "chip opinion" }, `${o.operator}: ${said.join(", ") || "none"}`));
    }
    for (const c of view.predicted) cats.appendChild(el("span", { class: urgent.has(c) ? "chip urgent" : "chip" }, c));
    if (view.related === "unsure") cats.appendChild(el("span", { class: "chip" }, "related: unsure"));
    tr.appendChild(cats);
    const open = () => (review ? openClaimed(tr, item, copies) : toggleDetail(tr, item, copies));
    tr.addEventListener("click", open);
    tr.reopen = () => toggleDetail(tr, item, copies);  // after a save: the row again, without a new claim
    tbody.appendChild(tr);
  });
}

async function showQueue() {
  // The undecided messages, in the order the operator chose: most useful to teach, or most urgent.
  const name = state.model.operators_required ? "" : `&operator=${encodeURIComponent(myName())}`;
  const response = await fetch(`/api/queue?order=${$("review-order").value}${name}`, { headers: auth() });
  if (!response.ok) { setStatus(await errorOf(response), true); return; }
  state.queue = (await response.json()).results;
  redraw();
  $("review-results").hidden = false;
  const changed = await checkModel();  // the queue was ranked by the version serving now
  if (changed) setStatus(changed.trim());
}

// Claims (a shift shares the queue): opening a message in the Review tab claims it, closing it releases it;
// a message another operator reads is not opened, and Next gives the first one nobody reads.
function myName() {
  return state.model.operators_required ? null : ($("operator-name").value.trim() || "local");
}

async function openClaimed(tr, item, copies) {
  const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains("detail");
  if (open) {
    toggleDetail(tr, item, copies);
    await send("/api/release", { message_id: item.message_id }).catch(() => {});
    state.claimed = null;
    return;
  }
  try {
    await send("/api/claim", { message_id: item.message_id });
  } catch (e) {
    setStatus(String(e.message || e), true);
    if (e.status === 409) await showQueue();
    return;
  }
  state.claimed = item.message_id;
  setStatus("");
  toggleDetail(tr, item, copies);
}

async function nextMessage() {
  if (state.claimed) await send("/api/release", { message_id: state.claimed }).catch(() => {});
  state.claimed = null;
  let answer;
  try {
    answer = await send("/api/claim", { next: $("review-order").value });
  } catch (e) { setStatus(String(e.message || e), true); return; }
  if (!answer.claim) { setStatus("Every undecided message is being read by another operator, or decided."); return; }
  await showQueue();
  state.claimed = answer.claim.message_id;
  const index = state.queue.findIndex((q) => q.message_id === answer.claim.message_id);
  const row = $("review-results").querySelector(`tr.item[data-index="${index}"]`);
  if (row) toggleDetail(row, state.queue[index], state.queue[index].copies || []);
  setStatus(`You are reading message ${index + 1}; others are given the next one.`);
}

function retrainNote() {
  const r = state.model.retrain;
  $("review-retrain").textContent = r
    ? `This page trains and serves a new version after every ${r.every} new decisions ` +
      `(${Math.max(r.decisions - r.trained_on, 0)} so far; the Model tab shows the retrains).`
    : "Retraining is by hand: disaster-train --decisions=THE_DB, then disaster-export.";
}

function redraw(keep) {
  // After a decision: both lists show who decided what; the row `keep` (a message key) is opened again, so the
  // operator sees what was saved.
  if (state.items.length) render();
  if (state.queue.length) drawRows($("review-results"), state.queue.map((item, index) => ({ item, index })));
  if (!keep) return;
  for (const table of ["results", "review-results"]) {
    const tr = $(table).querySelector(`tr.item[data-key="${CSS.escape(keep)}"]`);
    if (tr) tr.reopen();
  }
}

function scoreBars(scores, thresholds, predicted) {
  const grid = el("div", { class: "bars" });
  for (const c of state.model.urgency) {
    grid.appendChild(el("span", {}, c));
    const bar = el("div", { class: "bar", title: `${c}: ${scores[c].toFixed(3)}` });
    const fill = el("div", { class: predicted.includes(c) ? "fill on" : "fill" });
    fill.style.width = `${(100 * scores[c]).toFixed(1)}%`;
    bar.appendChild(fill);
    if (thresholds[c] !== undefined) {
      const mark = el("div", { class: "threshold", title: `threshold ${thresholds[c].toFixed(3)}` });
      mark.style.left = `${(100 * thresholds[c]).toFixed(1)}%`;
      bar.appendChild(mark);
    }
    grid.appendChild(bar);
    grid.appendChild(el("span", {}, scores[c].toFixed(2)));
  }
  return grid;
}

function toggleDetail(tr, item, copies) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("detail")) { next.remove(); return; }
  if (item.error) return;
  const detail = el("tr", { class: "detail" });
  const td = el("td", { colspan: "4" });
  if (item.predicted.length) td.appendChild(explanation(item.row.message));
  td.appendChild(el("p", { class: "legend" },
                    "The model's scores. Bar: score · tick: the category's threshold · dark bar: suggested."));
  td.appendChild(scoreBars(item.scores, state.model.thresholds, item.predicted));
  if (copies && copies.length) {
    const list = el("details", { class: "copies" });
    list.appendChild(el("summary", {}, `${copies.length} near-copies of this message`));
    for (const c of copies) list.appendChild(el("div", { class: "copy" }, (c.row || c).message));
    td.appendChild(list);
  }
  if (state.model.decisions) td.appendChild(decisionForm(item, copies || []));
  detail.appendChild(td);
  tr.after(detail);
}

// Which words made each predicted category (the server's /api/explain: the score falls by that much without
// the word). The message is split as the export splits it (whitespace, control and format characters); a word
// is compared without the punctuation and symbols at its edges and case-folded, and shown highlighted. Built
// from text nodes only.
const EDGES = /^[\p{P}\p{S}]+|[\p{P}\p{S}]+$/gu;
const SEPARATORS = /([\s\p{Cc}\p{Cf}\p{Z}]+)/u;

function explanation(message) {
  const box = el("div", { class: "why" }, "Finding the words behind each category…");
  send("/api/explain", { message })
    .then((answer) => {
      box.replaceChildren();
      for (const [category, words] of Object.entries(answer.explanation || {})) {
        const line = el("div", { class: "why-line" });
        line.appendChild(el("span", { class: "why-category" }, category));
        const keys = new Set(words.map(([w]) => w.toLowerCase()));
        const text = el("span", { class: "why-message" });
        for (const part of message.split(SEPARATORS)) {
          const marked = part && !SEPARATORS.test(part) && keys.has(part.replace(EDGES, "").toLowerCase());
          text.appendChild(marked ? el("mark", {}, part) : document.createTextNode(part));
        }
        line.appendChild(text);
        line.appendChild(el("span", { class: "why-words" }, words.length
          ? words.map(([w, v]) => `${w} +${v.toFixed(2)}`).join(", ") : "no single word decides it"));
        box.appendChild(line);
      }
    })
    .catch((e) => { box.textContent = `No explanation: ${e.message || e}`; });
  return box;
}

function decisionForm(item, copies) {
  // The operator's labels: the standing decision's if there is one, else the model's (a second opinion always
  // starts from the model's: the first operator's decision is not shown).
  const decided = item.second_opinion ? null : state.decided[item.message_id];
  const form = el("div", { class: "decide" });
  form.appendChild(el("h4", {}, decided ? `Decision by ${decided.operator} (${decided.decided_at}); change it:`
                                        : "Your decision: tick every category the message asks for"));
  const boxes = {};
  for (const c of state.model.urgency.filter((c) => c !== "related")) {
    const label = el("label", {}, ` ${c}`);
    const box = el("input", { type: "checkbox", "data-category": c });
    box.checked = decided ? decided.labels[c] === 1 : item.predicted.includes(c);
    label.prepend(box);
    boxes[c] = box;
    form.appendChild(label);
  }
  const related = el("select", { class: "related", "aria-label": "related" });
  RELATED.forEach((name, value) => related.appendChild(el("option", { value: String(value) }, `related: ${name}`)));
  related.value = String(decided ? decided.labels.related : RELATED.indexOf(item.related));
  form.appendChild(related);
  const undecided = copies.filter((c) => !state.decided[c.message_id]);
  const all = el("input", { type: "checkbox", class: "all-copies" });
  all.checked = true;
  if (undecided.length) {
    const label = el("label", { class: "copies-label" }, ` also for its ${undecided.length} undecided near-copies`);
    label.prepend(all);
    form.appendChild(label);
  }
  const save = el("button", { type: "button", class: "save" }, decided ? `Save (decided by ${decided.operator})` : "Save");
  save.addEventListener("click", () => {
    const labels = { related: Number(related.value) };
    for (const [c, box] of Object.entries(boxes)) labels[c] = box.checked ? 1 : 0;
    // Any category makes a message related: the data never has one without the other.
    if (labels.related === 0 && Object.values(boxes).some((b) => b.checked)) labels.related = 1;
    // `replaces`: the decision this form showed (null: the model's answer). If another operator decided the
    // message since, the server refuses the save, and the page shows what stands now.
    const also = all.checked ? undecided.map((c) => ({ message: (c.row || c).message, id: (c.row || c).id })) : [];
    send("/api/decide", { message: item.row.message, id: item.row.id, labels, copies: also,
                          replaces: item.standing_id ?? (decided ? decided.decision_id : null) })
      .then((answer) => {
        state.decided[item.message_id] = answer.decision;
        item.second_opinion = false;  // given: the row now shows it
        delete item.standing_id;
        for (const d of answer.decision.copies) state.decided[d.message_id] = { ...d, copies: [] };
        const n = answer.decision.copies.length;
        setStatus(`Saved: decided by ${answer.decision.operator}` + (n ? `, with its ${n} near-copies.` : "."));
        redraw(item.message_id);
      })
      .catch((e) => staleOrError(e));
  });
  form.appendChild(save);
  if (decided) {
    const together = (decided.copies || []).map((d) => d.decision_id);
    const undo = el("button", { type: "button", class: "undo" }, together.length ? "Undo this one" : "Undo");
    const undoing = (copies) => send("/api/undo", { decision_id: decided.decision_id, copies })
      .then(async (answer) => {
        state.decided = {};
        await loadDecided();
        const n = answer.copies_undone.length;
        setStatus(n ? `Decision undone, with the decisions of its ${n} near-copies.` : "Decision undone.");
        redraw(item.message_id);
      })
      .catch((e) => staleOrError(e));
    undo.addEventListener("click", () => undoing([]));
    form.appendChild(undo);
    if (together.length) {
      const undoAll = el("button", { type: "button", class: "undo-all" }, `Undo with its ${together.length} near-copies`);
      undoAll.addEventListener("click", () => undoing(together));
      form.appendChild(undoAll);
    }
  }
  return form;
}

async function staleOrError(error) {
  // 409: another operator's decision stands now; show it rather than the one this page remembered.
  if (error.status === 409) { state.decided = {}; await loadDecided(); redraw(); }
  setStatus(String(error.message || error), true);
}

async function send(path, body) {
  // On loopback there is no login: the name the operator typed is what their decisions and claims record.
  const name = $("operator-name").value.trim();
  const sent = name && !state.model.operators_required ? { ...body, operator: name } : body;
  const response = await fetch(path, { method: "POST", headers: auth({ "Content-Type": "application/json" }),
                                       body: JSON.stringify(sent) });
  if (!response.ok) {
    const error = new Error(await errorOf(response));
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function csvField(value) {
  // A cell a spreadsheet would run as a formula gets a leading single quote (OWASP): the server's rule and
  // characters (scorefile.FORMULA_TRIGGERS), the same as predict.py's.
  let text = String(value);
  if (text && state.model.formula_triggers.includes(text[0])) text = "'" + text;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function download() {
  // The scored columns and their cells come from the server (predict.SCORED_COLUMNS): one definition of the format.
  // Beside the model's answer, the operators' standing decision: who, and its categories (";" as `predicted`).
  const header = [...state.columns, ...state.model.scored_columns, "decided_by", "decided", "decided_related"];
  const lines = [header.map(csvField).join(",")];
  for (const item of state.items) {
    const view = shown(item);
    const decision = view.decided ? [view.decided.operator, view.predicted.join(";"), view.related] : ["", "", ""];
    lines.push([...state.columns.map((c) => item.row[c] ?? ""), ...item.scored, ...decision].map(csvField).join(","));
  }
  const link = el("a", { download: "scored.csv" });
  link.href = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function svgBars(values, max) {
  // One horizontal bar per category: an inline SVG chart, no library.
  const NS = "http://www.w3.org/2000/svg", rowHeight = 16, left = 170, width = 320;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", String(left + width + 50));
  svg.setAttribute("height", String(values.length * rowHeight + 4));
  values.forEach(([name, value], i) => {
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", "0"); label.setAttribute("y", String(i * rowHeight + 12));
    label.textContent = name;
    const rect = document.createElementNS(NS, "rect");
    rect.setAttribute("x", String(left)); rect.setAttribute("y", String(i * rowHeight + 2));
    rect.setAttribute("height", "12"); rect.setAttribute("width", String(Math.max(0, width * value / max)));
    rect.setAttribute("fill", "#5b8db8");
    const number = document.createElementNS(NS, "text");
    number.setAttribute("x", String(left + width + 6)); number.setAttribute("y", String(i * rowHeight + 12));
    number.textContent = value.toFixed(2);
    svg.append(label, rect, number);
  });
  return svg;
}

// Surges (GET /api/surges): each category's messages per window, the last window ending now; a category well
// above its baseline is flagged in the header, whatever tab is open, and drawn on the Team tab.
function surgeChart(windows, surge) {
  const NS = "http://www.w3.org/2000/svg", barWidth = 10, height = 40;
  const max = Math.max(1, ...windows);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart surge-chart");
  svg.setAttribute("width", String(windows.length * barWidth));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `messages per window, oldest first: ${windows.join(", ")}`);
  windows.forEach((value, i) => {
    const rect = document.createElementNS(NS, "rect");
    const h = (height - 2) * value / max;
    rect.setAttribute("x", String(i * barWidth)); rect.setAttribute("y", String(height - h));
    rect.setAttribute("width", String(barWidth - 2)); rect.setAttribute("height", String(h));
    rect.setAttribute("fill", i === windows.length - 1 ? (surge ? "#c01c28" : "#1a5fb4") : "#9bb8d3");
    svg.appendChild(rect);
  });
  return svg;
}

async function loadAgreement() {
  const response = await fetch("/api/agreement", { headers: auth() });
  if (!response.ok) return;
  const a = await response.json();
  const box = $("agreement");
  box.replaceChildren();
  box.appendChild(el("p", {}, a.share
    ? `${Math.round(a.share * 100)}% of decided messages go back to a second operator. ${a.messages} decided by ` +
      `two so far; ${a.disagreements} disagreed, ${a.settled} of them settled by a reviewer ` +
      `(${a.reviewers.join(", ") || "none named: triage.py --reviewers"}).`
    : "No second opinions: triage.py --second_opinion=0.1 sends a share of decided messages to a second operator."));
  if (!a.messages) return;
  const table = el("table", { class: "agreement-table" });
  const head = el("tr");
  for (const h of ["category", "messages", "agreement", "Cohen's kappa"]) head.appendChild(el("th", {}, h));
  table.appendChild(head);
  // A category both operators always gave one same label (kappa undefined) says little: counted, not listed.
  const quiet = a.categories.filter((c) => c.kappa === null && c.agreement === 1);
  for (const c of a.categories.filter((c) => !quiet.includes(c))) {
    const tr = el("tr");
    tr.append(el("td", {}, c.category), el("td", {}, String(c.messages)),
              el("td", {}, c.agreement === null ? "—" : `${(100 * c.agreement).toFixed(0)}%`),
              el("td", {}, c.kappa === null ? "— (one label only)" : c.kappa.toFixed(2)));
    table.appendChild(tr);
  }
  box.appendChild(table);
  if (quiet.length) {
    box.appendChild(el("p", { class: "note" }, `${quiet.length} more categories: the two operators always gave ` +
                        "the same one label (agreement 100%, kappa undefined)."));
  }
}

async function loadSurges() {
  if (!state.model || !state.model.decisions) return;
  const response = await fetch("/api/surges", { headers: auth() });
  if (!response.ok) return;  // no token yet: the next poll tries again
  const answer = await response.json();
  const flagged = answer.categories.filter((c) => c.surge);
  $("surge-banner").hidden = !flagged.length;
  $("surge-banner").textContent = flagged.length
    ? `Surge: ${flagged.map((c) => `${c.category} ${c.count} in the last ${answer.window_minutes} min (${c.ratio}x its baseline)`).join("; ")}`
    : "";
  $("surge-rule").textContent = `A category surges when ${answer.rule}. Counted over every message this page has ` +
    `seen (pasted, uploaded, or scored into its database), by the model's answer; checked each minute.`;
  const list = $("surges");
  list.replaceChildren();
  const busy = answer.categories.filter((c) => c.windows.some((n) => n > 0))
    .sort((a, b) => Number(b.surge) - Number(a.surge) || b.ratio - a.ratio);
  if (!busy.length) list.appendChild(el("p", { class: "none" }, "No message in the last day."));
  for (const c of busy) {
    const row = el("div", { class: c.surge ? "surge-row surge" : "surge-row" });
    row.appendChild(el("span", { class: "surge-name" }, c.category));
    row.appendChild(surgeChart(c.windows, c.surge));
    row.appendChild(el("span", {}, `${c.count} now, baseline ${c.baseline}` + (c.surge ? " — SURGE" : "")));
    list.appendChild(row);
  }
}

// The validation messages that have an original, scored as sent and in English: how far to trust the model on
// messages as they arrive (FinalReport.languages; absent when the model was trained on English only).
function drawLanguages(info, languages) {
  const sent = languages.original, english = languages.translation;
  if (!sent || !english) return;
  const ratio = english.micro_f1 ? sent.micro_f1 / english.micro_f1 : 0;
  info.appendChild(el("h3", {}, "By language"));
  info.appendChild(el("p", {}, `The ${sent.examples} validation messages that have an original (mostly Haitian ` +
    `Creole), scored as sent and in English: as sent, micro-F1 ${ratio.toFixed(2)} of English's.`));
  const table = el("table", { class: "language-table" });
  const head = el("tr");
  for (const h of ["the same messages", "Total", "mean positive-class F1", "micro-F1"]) head.appendChild(el("th", {}, h));
  table.appendChild(head);
  for (const [label, r] of [["as sent", sent], ["in English", english]]) {
    const row = el("tr");
    for (const cell of [label, r.total.toFixed(2), r.mean_positive_f1.toFixed(3), r.micro_f1.toFixed(3)]) {
      row.appendChild(el("td", {}, cell));
    }
    table.appendChild(row);
  }
  info.appendChild(table);
}

// What the serving version learnt from operators, and the retrains (triage.py --retrain_every; /api/model's retrain).
function drawRetrain(info, m) {
  const training = m.report && m.report.training_data, r = m.retrain;
  const decided = training ? (training.decisions || 0) : null;
  info.appendChild(el("p", { id: "trained-on" }, decided === null ? "Operators' decisions it trained on: unknown." :
    `Export version ${m.about.export_version ?? "?"} trained on ${decided} operators' decision` +
    `${decided === 1 ? "" : "s"}, exported ${m.about.exported || "(date unknown)"}.`));
  if (!r) {
    if (m.decisions) {
      info.appendChild(el("p", {}, "Retraining is by hand here: disaster-train --decisions=THE_DB, then disaster-export " +
        "(or start the page with --retrain_every=N)."));
    }
    return;
  }
  const since = Math.max(r.decisions - r.trained_on, 0);  // decisions undone since the last run: none new
  const lines = {
    waiting: `Retrains by itself after every ${r.every} new decisions: ${since} since the last run.`,
    training: `Retraining since ${r.started} on ${r.decisions} decisions; the page serves the new version when ` +
      "its export is complete.",
    exporting: `Exporting the version trained since ${r.started} on ${r.decisions} decisions.`,
    refused: `Not retraining: ${r.error}`,
    failed: `The last retrain (started ${r.started}, ended ${r.finished}) failed; the next starts after ${r.every} ` +
      `more decisions (${since} so far).`,
  };
  info.appendChild(el("p", { id: "retrain-status", class: r.state === "failed" || r.state === "refused" ? "error" : "" },
    lines[r.state] || r.state));
  if (r.state === "failed") info.appendChild(el("pre", { class: "error" }, r.error));
}

function drawModel() {
  const info = $("model-info");
  info.replaceChildren();
  const m = state.model, about = m.about || {};
  const config = m.config.model || {}, train = m.config.train || {};
  if (!m.config.model) {  // over TF Serving (--serving_url): the page has no model card to say what it reads
    info.appendChild(el("p", {}, "Served through TF Serving: this page has no model card (what the model was " +
      "trained on, what it reads, its validation scores). A message the export says it cannot read (its " +
      "reads_language output) is flagged all the same, first in the list, for a person to read."));
    return;
  }
  info.appendChild(el("p", {}, `Model: ${config.architecture || "unknown"}, reading ` +
    `${(train.text_fields || ["message"]).join(" and ")}; export version ${about.export_version ?? "?"} ` +
    `(${about.path}), exported ${about.exported || "(date unknown)"} by ` +
    `disaster_tf ${about.version || "?"}, computing in ${about.precision || "float32"}.`));
  const gate = m.language_gate;
  info.appendChild(el("p", { class: m.english_only ? "error" : "" }, (m.english_only
    ? "It reads English only: a message in another language is flagged, first in the list, for a person to read."
    : "It reads English and messages as they were sent (mostly Haitian Creole).") + (gate
    ? ` Its language gate called ${(100 * gate.other_recall).toFixed(1)}% of ${gate.other_texts} validation ` +
      `originals not English, and ${(100 * gate.english_false_flags).toFixed(1)}% of ${gate.english_texts} English ` +
      "messages wrongly so."
    : " It has no language gate: messages in other languages are not flagged.")));
  drawRetrain(info, m);
  for (const old of about.history || []) {
    info.appendChild(el("p", {}, `Replaced export version ${old.version} at ${old.replaced}.`));
  }
  if (about.reload_error) {
    info.appendChild(el("p", { class: "error" }, `A newer export could not be loaded: ${about.reload_error}`));
  }
  if (about.unfinished) {
    info.appendChild(el("p", { class: "error" }, "Unfinished: this model was exported before its training " +
      "finished; it has no validation report and its thresholds are not tuned."));
  }
  const report = m.report;
  if (report) {
    info.appendChild(el("h2", {}, `Validation: ${report.examples} messages the model never trained on`));
    info.appendChild(el("p", {}, `Total ${report.total.toFixed(2)} of 36, mean positive-class F1 ` +
      `${report.mean_positive_f1.toFixed(3)}, micro-F1 ${report.micro_f1.toFixed(3)}.`));
    drawLanguages(info, report.languages || {});
    info.appendChild(el("h3", {}, "F1 per category"));
    info.appendChild(svgBars(m.urgency.map((c) => [c, report.categories[c].f1]), 1));
  } else {
    info.appendChild(el("p", { class: "none" }, "This export carries no validation report."));
  }
  info.appendChild(el("h3", {}, "Per category"));
  const table = el("table", { class: "model-table" });
  const head = el("tr");
  for (const h of ["category", "precision", "recall", "F1", "validation support", "threshold", "training positives"]) {
    head.appendChild(el("th", {}, h));
  }
  table.appendChild(head);
  const training = report && report.training_data;
  for (const c of m.urgency) {
    const r = report ? report.categories[c] : null, row = el("tr");
    const cells = [c, r ? r.precision.toFixed(2) : "", r ? r.recall.toFixed(2) : "", r ? r.f1.toFixed(2) : "",
                   r ? String(r.support) : "", m.thresholds[c] !== undefined ? m.thresholds[c].toFixed(3) : "",
                   training ? String(training.positives[c]) : ""];
    for (const v of cells) row.appendChild(el("td", {}, v));
    table.appendChild(row);
  }
  info.appendChild(table);
  if (training) {
    info.appendChild(el("h3", {}, "Training data"));
    info.appendChild(el("p", {}, `${training.examples} examples; by genre: ` +
      Object.entries(training.genres).map(([g, n]) => `${g} ${n}`).join(", ") + "."));
  }
  if (Object.keys(m.thresholds).length) {
    info.appendChild(el("h3", {}, "Decision thresholds"));
    info.appendChild(svgBars(m.urgency.map((c) => [c, m.thresholds[c]]), 1));
  } else {
    info.appendChild(el("p", { class: "none" }, "Thresholds not known (scoring through TF Serving without the export)."));
  }
  const details = el("details");
  details.appendChild(el("summary", {}, "Training configuration (flags)"));
  details.appendChild(el("pre", {}, JSON.stringify(m.config, null, 1)));
  info.appendChild(details);
}

// Keys (the ? overlay lists them): every Review action without a mouse. Ignored while typing in a field, but
// for Escape, which leaves it.
const KEYS = [
  ["j / ↓", "next message"], ["k / ↑", "previous message"], ["Enter / o", "open or close the message"],
  ["n", "Next for me: the first message nobody reads (Review)"], ["c", "to the categories: Tab moves, Space ticks"],
  ["r", "related: no, yes, unsure in turn"], ["s", "save the decision"], ["u", "undo the decision"],
  ["x / Esc", "close the message (releases it)"], ["?", "this list"],
];

function visibleTable() {
  return $("review").hidden ? $("results") : $("review-results");
}

function openRow() {
  const detail = visibleTable().querySelector("tr.detail");
  return detail ? { detail, row: detail.previousElementSibling } : null;
}

function moveFocus(step) {
  const rows = [...visibleTable().querySelectorAll("tr.item")];
  if (!rows.length) return;
  const at = rows.indexOf(document.activeElement.closest ? document.activeElement.closest("tr.item") : null);
  rows[Math.min(Math.max(at < 0 ? 0 : at + step, 0), rows.length - 1)].focus();
}

function onKey(event) {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) && event.target.type !== "checkbox";
  if (event.ctrlKey || event.metaKey || event.altKey || (typing && event.key !== "Escape")) return;
  const open = openRow();
  const press = (selector) => { const b = open && open.detail.querySelector(selector); if (b) b.click(); };
  const actions = {
    j: () => moveFocus(1), ArrowDown: () => moveFocus(1), k: () => moveFocus(-1), ArrowUp: () => moveFocus(-1),
    Enter: () => { const tr = document.activeElement.closest && document.activeElement.closest("tr.item"); if (tr) tr.click(); },
    n: () => { if (!$("review").hidden) nextMessage().catch((e) => setStatus(String(e), true)); },
    c: () => { const box = open && open.detail.querySelector("input[data-category]"); if (box) box.focus(); },
    r: () => {
      const related = open && open.detail.querySelector("select.related");
      if (related) related.value = String((Number(related.value) + 1) % RELATED.length);
    },
    s: () => press("button.save"), u: () => press("button.undo"),
    x: () => { if (open) { open.row.click(); open.row.focus(); } },
    Escape: () => {
      if (!$("keys").hidden) { $("keys").hidden = true; return; }
      if (typing) { event.target.blur(); return; }
      if (open) { open.row.click(); open.row.focus(); }
    },
    "?": () => { $("keys").hidden = !$("keys").hidden; },
  };
  actions.o = actions.Enter;
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
}

// Columns sort: a click on a header orders the drawn rows by that column (numbers as numbers), again the other
// way; an opened row moves with its message. The next redraw returns to the page's order (urgency, or rank).
function sortBy(th) {
  const table = th.closest("table");
  const column = [...th.parentElement.children].indexOf(th);
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  for (const other of th.parentElement.children) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const tbody = table.querySelector("tbody");
  const rows = [...tbody.querySelectorAll("tr.item")];
  const key = (tr) => tr.children[column].textContent.trim();
  const numeric = rows.every((tr) => /^[0-9]+$/.test(key(tr)));
  rows.sort((a, b) => (numeric ? Number(key(a)) - Number(key(b)) : key(a).localeCompare(key(b))) * (ascending ? 1 : -1));
  for (const tr of rows) {
    const detail = tr.nextElementSibling && tr.nextElementSibling.classList.contains("detail") ? tr.nextElementSibling : null;
    tbody.appendChild(tr);
    if (detail) tbody.appendChild(detail);
  }
}

function drawKeys() {
  const list = $("keys-list");
  for (const [key, what] of KEYS) {
    list.appendChild(el("dt", {}, key));
    list.appendChild(el("dd", {}, what));
  }
}

function showTab(name) {
  setStatus("");  // a tab's status line is about that tab
  for (const tab of ["classify", "review", "team", "model"]) {
    $(tab).hidden = tab !== name;
    $(`tab-${tab}`).classList.toggle("active", tab === name);
  }
}

$("classify-button").addEventListener("click", () => classifyPasted().catch((e) => setStatus(String(e), true)));
$("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) uploadFile(file).catch((e) => setStatus(String(e), true));
});
$("filter").addEventListener("change", render);
$("download").addEventListener("click", download);
$("tab-classify").addEventListener("click", () => showTab("classify"));
$("tab-model").addEventListener("click", () => showTab("model"));
$("tab-team").addEventListener("click", () => {
  showTab("team");
  Promise.all([loadSurges(), loadAgreement()]).catch((e) => setStatus(String(e), true));
});
$("tab-review").addEventListener("click", () => { showTab("review"); showQueue().catch((e) => setStatus(String(e), true)); });
$("review-button").addEventListener("click", () => showQueue().catch((e) => setStatus(String(e), true)));
$("review-order").addEventListener("change", () => showQueue().catch((e) => setStatus(String(e), true)));
$("review-next").addEventListener("click", () => nextMessage().catch((e) => setStatus(String(e), true)));
$("token").addEventListener("change", () => loadDecided().then(redraw).catch((e) => setStatus(String(e), true)));
document.addEventListener("keydown", onKey);
for (const th of document.querySelectorAll("#results th, #review-results th")) {
  th.tabIndex = 0;
  th.title = `${th.title ? th.title + "; " : ""}click (or Enter) to sort by this column`;
  th.addEventListener("click", () => sortBy(th));
  th.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.stopPropagation(); sortBy(th); } });
}
drawKeys();
$("keys-close").addEventListener("click", () => { $("keys").hidden = true; });
loadModel().catch((e) => setStatus(`Could not reach the model: ${e}`, true));
