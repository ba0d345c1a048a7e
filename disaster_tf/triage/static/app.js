// The triage page. Messages are untrusted text from the public: they are only ever
// put in the page with textContent (never innerHTML), and the server forbids inline scripts.
"use strict";

const URGENT = 8;       // the first categories of the urgency order are shown in red
const BATCH = 100;      // pasted lines per /api/classify request, so progress shows and the page never blocks
const MAX_SHOWN = 1000; // rows drawn at once; the rest stay in the CSV download and the filter
const RELATED = ["no", "yes", "unsure"]; // `related`'s labels 0, 1, 2

const state = { model: null, columns: ["message"], items: [], decided: {}, queue: [] };
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
  $("token-label").hidden = !state.model.operators_required;
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

function ordered() {
  const filter = $("filter").value;
  return state.items
    .map((item, index) => ({ item, index }))
    .filter(({ item }) => !filter || item.predicted.includes(filter))
    .sort((a, b) => a.item.priority - b.item.priority || a.index - b.index);
}

function render() {
  const rows = ordered();
  drawRows($("results"), rows.slice(0, MAX_SHOWN));
  $("results").hidden = false;
  $("toolbar").hidden = false;
  $("count").textContent = rows.length > MAX_SHOWN
    ? `showing the ${MAX_SHOWN} most urgent of ${rows.length}; the CSV holds all` : `${rows.length} shown`;
}

function drawRows(table, rows) {
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  const urgent = new Set(state.model ? state.model.urgency.slice(0, URGENT) : []);
  for (const { item, index } of rows) {
    const tr = el("tr", { class: "item", "data-index": String(index) });
    tr.appendChild(el("td", {}, String(index + 1)));
    tr.appendChild(el("td", {}, item.predicted.length ? item.predicted[0] : "—"));
    tr.appendChild(el("td", { class: "message" }, item.row.message));
    const cats = el("td", { class: "categories" });
    if (item.error) cats.appendChild(el("span", { class: "chip error" }, `not scored: ${item.error}`));
    else if (item.unread) cats.appendChild(el("span", { class: "chip urgent" }, "model could not read it: read it yourself"));
    else if (item.not_english) {
      cats.appendChild(el("span", { class: "chip urgent" }, "not English: this model reads English only; read it yourself"));
    }
    else if (!item.predicted.length) cats.appendChild(el("span", { class: "none" }, "none"));
    const decided = state.decided[item.message_id];
    if (decided) cats.appendChild(el("span", { class: "chip decided" }, `decided by ${decided.operator}`));
    for (const c of item.predicted) cats.appendChild(el("span", { class: urgent.has(c) ? "chip urgent" : "chip" }, c));
    if (item.related === "unsure") cats.appendChild(el("span", { class: "chip" }, "related: unsure"));
    tr.appendChild(cats);
    tr.addEventListener("click", () => toggleDetail(tr, item));
    tbody.appendChild(tr);
  }
}

async function showQueue() {
  // The undecided messages, in the order the operator chose: most useful to teach, or most urgent.
  const response = await fetch(`/api/queue?order=${$("review-order").value}`, { headers: auth() });
  if (!response.ok) { setStatus(await errorOf(response), true); return; }
  state.queue = (await response.json()).results;
  redraw();
  $("review-results").hidden = false;
  const changed = await checkModel();  // the queue was ranked by the version serving now
  if (changed) setStatus(changed.trim());
}

// What the Review tab says happens next with a decision: retrained by the page, or by hand.
function retrainNote() {
  const r = state.model.retrain;
  $("review-retrain").textContent = r
    ? `This page trains and serves a new version after every ${r.every} new decisions ` +
      `(${Math.max(r.decisions - r.trained_on, 0)} so far; the Model tab shows the retrains).`
    : "Retraining is by hand: disaster-train --decisions=THE_DB, then disaster-export.";
}

function redraw() {
  // After a decision: both lists show who decided what.
  if (state.items.length) render();
  if (state.queue.length) drawRows($("review-results"), state.queue.map((item, index) => ({ item, index })));
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

function toggleDetail(tr, item) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("detail")) { next.remove(); return; }
  if (item.error) return;
  const detail = el("tr", { class: "detail" });
  const td = el("td", { colspan: "4" });
  if (item.predicted.length) td.appendChild(explanation(item.row.message));
  td.appendChild(scoreBars(item.scores, state.model.thresholds, item.predicted));
  if (state.model.decisions) td.appendChild(decisionForm(item));
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

function decisionForm(item) {
  // The operator's labels: the standing decision's if there is one, else the model's.
  const decided = state.decided[item.message_id];
  const form = el("div", { class: "decide" });
  const boxes = {};
  for (const c of state.model.urgency.filter((c) => c !== "related")) {
    const label = el("label", {}, ` ${c}`);
    const box = el("input", { type: "checkbox", "data-category": c });
    box.checked = decided ? decided.labels[c] === 1 : item.predicted.includes(c);
    label.prepend(box);
    boxes[c] = box;
    form.appendChild(label);
  }
  const related = el("select", { class: "related" });
  RELATED.forEach((name, value) => related.appendChild(el("option", { value: String(value) }, `related: ${name}`)));
  related.value = String(decided ? decided.labels.related : RELATED.indexOf(item.related));
  form.appendChild(related);
  const save = el("button", { type: "button", class: "save" }, decided ? `Save (decided by ${decided.operator})` : "Save");
  save.addEventListener("click", () => {
    const labels = { related: Number(related.value) };
    for (const [c, box] of Object.entries(boxes)) labels[c] = box.checked ? 1 : 0;
    // Any category makes a message related: the data never has one without the other.
    if (labels.related === 0 && Object.values(boxes).some((b) => b.checked)) labels.related = 1;
    // `replaces`: the decision this form showed (null: the model's answer). If another operator decided the
    // message since, the server refuses the save, and the page shows what stands now.
    send("/api/decide", { message: item.row.message, id: item.row.id, labels,
                          replaces: decided ? decided.decision_id : null })
      .then((answer) => {
        state.decided[item.message_id] = answer.decision;
        setStatus(`Saved: decided by ${answer.decision.operator}.`);
        redraw();
      })
      .catch((e) => staleOrError(e));
  });
  form.appendChild(save);
  if (decided) {
    const undo = el("button", { type: "button", class: "undo" }, "Undo");
    undo.addEventListener("click", () => send("/api/undo", { decision_id: decided.decision_id })
      .then(async () => { state.decided = {}; await loadDecided(); setStatus("Decision undone."); redraw(); })
      .catch((e) => staleOrError(e)));
    form.appendChild(undo);
  }
  return form;
}

async function staleOrError(error) {
  // 409: another operator's decision stands now; show it rather than the one this page remembered.
  if (error.status === 409) { state.decided = {}; await loadDecided(); redraw(); }
  setStatus(String(error.message || error), true);
}

async function send(path, body) {
  const response = await fetch(path, { method: "POST", headers: auth({ "Content-Type": "application/json" }),
                                       body: JSON.stringify(body) });
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
  const header = [...state.columns, ...state.model.scored_columns];
  const lines = [header.map(csvField).join(",")];
  for (const item of state.items) {
    lines.push([...state.columns.map((c) => item.row[c] ?? ""), ...item.scored].map(csvField).join(","));
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

function showTab(name) {
  for (const tab of ["classify", "review", "model"]) {
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
$("tab-review").addEventListener("click", () => { showTab("review"); showQueue().catch((e) => setStatus(String(e), true)); });
$("review-button").addEventListener("click", () => showQueue().catch((e) => setStatus(String(e), true)));
$("token").addEventListener("change", () => loadDecided().then(redraw).catch((e) => setStatus(String(e), true)));
loadModel().catch((e) => setStatus(`Could not reach the model: ${e}`, true));
