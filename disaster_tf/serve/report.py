"""An evaluation as one self-contained HTML page, and the model card in plain words.

The page needs no network and no script: its charts are inline SVG, its style
is inline. Every string from the data or the export is escaped.
"""

import html
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.model import metrics

# One rule names the categories not to be trusted: validation F1 below UNTRUSTED_F1, or fewer than
# UNTRUSTED_SUPPORT validation positives, too few for its F1 to mean much (one message more or less moves it by
# several points).
UNTRUSTED_F1 = 0.2
UNTRUSTED_SUPPORT = 20
UNTRUSTED_RULE = (f"validation F1 below {UNTRUSTED_F1}, or fewer than {UNTRUSTED_SUPPORT} validation messages of "
                  "the category to check it on")
CURVE_POINTS = 60  # most points where recall rises, per curve: enough for its shape, small enough for 36 of them


def untrusted(report: records.Scores) -> List[Tuple[str, str]]:
  """(category, why) for each binary category the report gives no reason to trust (UNTRUSTED_RULE)."""
  out = []
  for name in labels.BINARY_CATEGORIES:
    c = report.categories[name]
    if not c.support:
      out.append((name, "no positive message to check it on"))
    elif c.f1 < UNTRUSTED_F1 or c.support < UNTRUSTED_SUPPORT:
      out.append((name, f"F1 {c.f1:.2f} with {c.support} positives to check it on"))
  return out


# Below this ratio of the originals' micro-F1 to their translations', the card asks for care on messages as sent.
LANGUAGE_CARE_RATIO = 0.9
LANGUAGE_NAMES = {"original": "as sent", "translation": "in English"}  # `FinalReport.languages` keys, in order


def language_summary(languages: Dict[str, records.Scores], where: str) -> str:
  """The same messages scored as sent and in English, in a sentence or two; "" without both languages."""
  if set(languages) != set(LANGUAGE_NAMES):
    return ""
  sent, english = languages["original"], languages["translation"]
  ratio = sent.micro_f1 / english.micro_f1 if english.micro_f1 else 0.0
  text = (f"On the {sent.examples} {where} messages that have an original (mostly Haitian Creole), scored as sent "
          f"and in English: micro-F1 {sent.micro_f1:.3f} against {english.micro_f1:.3f} (ratio {ratio:.2f}), "
          f"Total {sent.total:.2f} against {english.total:.2f}.")
  if ratio < LANGUAGE_CARE_RATIO:
    text += (f" Below {LANGUAGE_CARE_RATIO} of its English score: read its suggestions on messages as sent with "
             "more care, or score their translations.")
  return text


def model_card(metadata: records.ExportMetadata, report: Optional[records.Scores] = None,
               languages: Optional[Dict[str, records.Scores]] = None) -> str:
  """The export's model card, as Markdown, from its metadata and a validation report (the export's own if None).

  `languages` ({"original", "translation"}: scores of the same messages) defaults to the export's own report's.
  """
  model, train = metadata.config.get("model", {}), metadata.config.get("train", {})
  if report is None and metadata.report is not None:
    report, languages = metadata.report.scores, metadata.report.languages if languages is None else languages
  fields = train.get("text_fields", ["message"])
  reads = ("messages in English (the `message` column, volunteers' translations) and as they were sent (the "
           "`original` column: mostly Haitian Creole SMS, some French and Spanish)" if "original" in fields else
           "messages in English only (the `message` column). Messages as they were sent in Haitian Creole, French "
           "or Spanish are not understood: translate them, or use the multilingual configuration")
  if model.get("lexicon"):
    reads += (". Each word of a message that it paired with an English word on its training translations "
              "(`dlo` with `water`) is read with that word too")
  lines = ["# Model card", "",
           f"A classifier (`{model.get('architecture', 'unknown')}`) of messages sent during disasters into 36 "
           "categories (35 yes/no, and `related`: no, yes or unsure), trained on the Figure Eight disaster "
           "response data (CC BY 4.0, Robert Munro 2012).", "",
           "## What it reads", "", f"It reads {reads}.", ""]
  if metadata.unfinished:
    lines += ["**Unfinished.** Its training had not finished when it was exported (it was still running, or "
              "stopped before its final report): it has no validation report, and its decision thresholds are "
              "not tuned. Finish the run (the same train.py command resumes it) and export again.", ""]
  if metadata.refit:
    lines += ["It was trained again on the training and tune messages together (`--refit`), for the number of "
              "epochs and with the thresholds that a first run chose on the tune messages.", ""]
  gate = metadata.language_gate
  if gate is not None:
    lines += ["## Which language a message is in", "",
              "Every answer says whether the message is in English (`language`: `english` or `other`, and "
              "`language_score`, the probability it is not), from a language gate fitted on the training messages "
              f"against their originals: on validation it called {gate['other_recall']:.1%} of "
              f"{int(gate['other_texts'])} originals not English, and {gate['english_false_flags']:.1%} of "
              f"{int(gate['english_texts'])} English messages wrongly so."
              + (" This model reads English only: a message the gate calls `other` is flagged to be read by a "
                 "person, never answered as if it had been read." if metadata.reads_english_only() else ""), ""]
  if metadata.members:
    lines += ["## Its members", "", "Its scores are the mean of three models' probabilities, each reading the raw "
              "message with its own tokenizer, in these shares (chosen on the tune messages):", ""]
    lines += [f"- {m['name']}: {m['weight']:.2f} of the scores" + (
        f"; validation Total {m['report']['total']:.2f}, mean positive F1 {m['report']['mean_positive_f1']:.3f} "
        f"({m['scored']})" if m.get("report") else "") for m in metadata.members]
    lines.append("")
  lines += ["## How to use it", "",
            "It supports a person's triage of incoming messages: it suggests categories and an order to read them "
            "in. It does not replace reading them. A message it gives no category may still be urgent.", ""]
  if report:
    lines += ["## How good it is", "",
              f"On {report.examples} validation messages it never trained on: Total {report.total:.2f} "
              f"(of 36), mean F1 of the categories' positive class {report.mean_positive_f1:.3f}, micro-F1 "
              f"{report.micro_f1:.3f}.", "", "## Categories it cannot be trusted on", "",
              f"Those with {UNTRUSTED_RULE}:", ""]
    lines += [f"- `{name}`: {why}" for name, why in untrusted(report)] or ["- none"]
    lines.append("")
  by_language = language_summary(languages or {}, "validation" if metadata.report is not None else "scored")
  lines += ["## By language", "", by_language, ""] if by_language else []
  return "\n".join(lines)


def _markdown_html(text: str) -> str:
  """The card's small Markdown (headings, paragraphs, one-level lists, `code`) as escaped HTML."""
  out, in_list = [], False
  for line in text.splitlines():
    body = html.escape(line.lstrip("#- ").strip())
    parts = body.split("`")
    body = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    if line.startswith("- "):
      if not in_list:
        out.append("<ul>")
        in_list = True
      out.append(f"<li>{body}</li>")
      continue
    if in_list:
      out.append("</ul>")
      in_list = False
    if line.startswith("## "):
      out.append(f"<h2>{body}</h2>")
    elif line.startswith("# "):
      out.append(f"<h1>{body}</h1>")
    elif line.strip():
      out.append(f"<p>{body}</p>")
  return "\n".join(out + (["</ul>"] if in_list else []))


def pr_curve(truth: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(recall, precision, threshold) at every distinct score taken as the threshold, highest first ([K] each)."""
  order = np.argsort(-scores, kind="stable")
  hits = truth[order].astype(np.float64)
  last = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]  # the last row of each distinct score
  tp, taken = np.cumsum(hits)[last], last + 1.0
  return tp / max(hits.sum(), 1.0), tp / taken, scores[order][last]


def drawn_points(recall: np.ndarray, cuts: np.ndarray, threshold: float) -> np.ndarray:
  """Which of a curve's points (`pr_curve`'s) are drawn: the ones where recall rises (CURVE_POINTS of them at
  most, evenly spread, the last always), and the threshold's own, so that the marked point lies on the drawn
  line; none before the first positive, where precision is 0 for want of any (not a point of the curve)."""
  rises = np.flatnonzero(np.diff(np.r_[0.0, recall]) > 0)
  if len(rises) > CURVE_POINTS:
    rises = rises[np.unique(np.linspace(0, len(rises) - 1, CURVE_POINTS).astype(int))]
  at = np.flatnonzero(cuts >= threshold)[-1:]  # the point `scores >= threshold` decides
  keep = np.unique(np.r_[rises, at, len(recall) - 1]).astype(int)
  return keep[recall[keep] > 0]


AXIS_TICKS = (0.0, 0.5, 1.0)  # on both axes of a precision-recall curve: enough to read a point, few enough for 150 px


def _curve_svg(name: str, truth: np.ndarray, scores: np.ndarray, threshold: float) -> str:
  size, pad = 166, 32
  recall, precision, cuts = pr_curve(truth, scores)
  keep = drawn_points(recall, cuts, threshold) if truth.any() else np.zeros(0, int)
  def xy(r: float, p: float) -> Tuple[float, float]:  # the point of (recall, precision) in the SVG
    return pad + r * (size - pad - 4), size - pad - p * (size - pad - 4)
  points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(r, p) for r, p in zip(recall[keep], precision[keep])))
  mark = ""
  at = np.flatnonzero(cuts >= threshold)[-1:]  # the threshold's point: one of the curve's own
  if truth.any() and len(at) and recall[at[0]] > 0:
    mx, my = xy(recall[at[0]], precision[at[0]])
    mark = (f'<circle cx="{mx:.1f}" cy="{my:.1f}" r="3.5" class="threshold"><title>threshold {threshold:.3f}: '
            f"recall {recall[at[0]]:.3f}, precision {precision[at[0]]:.3f}</title></circle>")
  ticks = "".join(_tick(xy(t, 0.0), xy(0.0, t), t) for t in AXIS_TICKS)
  return (f'<figure class="curve"><svg width="{size}" height="{size}" role="img" aria-label="precision-recall curve '
          f'of {html.escape(name)}"><rect x="{pad}" y="4" width="{size - pad - 4}" height="{size - pad - 4}" '
          f'class="frame"/>{ticks}<polyline points="{points}" class="pr"/>{mark}'
          f'<text x="{size // 2}" y="{size - 2}" text-anchor="middle">recall</text>'
          f'<text x="8" y="{size // 2}" transform="rotate(-90 8 {size // 2})" text-anchor="middle">precision</text>'
          f"</svg><figcaption>{html.escape(name)} ({int(truth.sum())} positive)</figcaption></figure>")


def _tick(on_x: Tuple[float, float], on_y: Tuple[float, float], value: float) -> str:
  """A tick and its label at `value` on the recall axis (at point `on_x`) and on the precision axis (`on_y`)."""
  (x, bottom), (left, y) = on_x, on_y
  label = f"{value:g}"
  return (f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 3:.1f}" class="tick"/>'
          f'<text x="{x:.1f}" y="{bottom + 11:.1f}" text-anchor="middle" class="tick-label">{label}</text>'
          f'<line x1="{left - 3:.1f}" y1="{y:.1f}" x2="{left:.1f}" y2="{y:.1f}" class="tick"/>'
          f'<text x="{left - 4:.1f}" y="{y + 3:.1f}" text-anchor="end" class="tick-label">{label}</text>')


def _f1_bars(report: records.Scores) -> str:
  row, left, width = 16, 190, 300
  names = list(labels.CATEGORIES)
  parts = [f'<svg class="bars" width="{left + width + 60}" height="{row * len(names) + 4}" role="img" '
           'aria-label="F1 per category">']
  for i, name in enumerate(names):
    f1 = report.categories[name].f1
    y = i * row
    parts.append(f'<text x="0" y="{y + 12}">{html.escape(name)}</text><rect x="{left}" y="{y + 2}" height="12" '
                 f'width="{width * f1:.1f}" class="f1"/><text x="{left + width * f1 + 4:.1f}" y="{y + 12}">'
                 f"{f1:.2f}</text>")
  return "".join(parts) + "</svg>"


def _summary_row(name: str, report: records.Scores) -> str:
  return (f"<tr><td>{html.escape(name)}</td><td>{report.examples}</td><td>{report.total:.2f}</td>"
          f"<td>{report.mean_positive_f1:.3f}</td><td>{report.micro_f1:.3f}</td></tr>")


def _language_table(languages: Dict[str, records.Scores]) -> str:
  """The "By language" section: the same messages as sent and in English, or "" without both."""
  if set(languages) != set(LANGUAGE_NAMES):
    return ""
  rows = "".join(_summary_row(label, languages[key]) for key, label in LANGUAGE_NAMES.items())
  return ("<h2>By language</h2>\n<p>The scored messages that have an original (mostly Haitian Creole), scored as "
          "they were sent and as translated: how far to trust the model on messages as sent.</p>\n"
          "<table><tr><th>the same messages</th><th>count</th><th>Total (max 36)</th><th>mean positive-class F1"
          f"</th><th>micro-F1</th></tr>{rows}</table>\n")


def html_report(title: str, report: records.Scores, truth: np.ndarray, scores: np.ndarray, decided: np.ndarray,
                thresholds: Sequence[float], genres: np.ndarray, card: str,
                languages: Optional[Dict[str, records.Scores]] = None) -> str:
  """The whole evaluation page.

  Args:
    title: what was scored on what (escaped here).
    report: `metrics.report(truth, decided)`.
    truth, decided: [N, 36] int labels; scores: [N, 36] the export's `scores`.
    thresholds: [36] the export's thresholds.
    genres: [N] str, each message's genre ("" unknown).
    card: the model card (Markdown).
    languages: {"original", "translation"}: the scored messages that have an original, in both languages.
  """
  by_genre = [_summary_row(g or "(none)", metrics.report(truth[genres == g], decided[genres == g]))
              for g in sorted(set(genres.tolist()))]
  related = labels.RELATED_INDEX
  confusion = np.zeros((3, 3), int)
  np.add.at(confusion, (truth[:, related], decided[:, related]), 1)
  matrix = "".join(f"<tr><th>true {t}</th>" + "".join(f"<td>{confusion[t, p]}</td>" for p in range(3)) + "</tr>"
                   for t in range(3))
  curves = "".join(_curve_svg(name, (truth[:, k] == 1).astype(int), scores[:, k], thresholds[k])
                   for k, name in enumerate(labels.CATEGORIES))
  table = metrics.format_table(report, title="")
  return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 16px auto; max-width: 1100px; padding: 0 12px; color: #1b1f23; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
.card {{ background: #f6f8fa; padding: 4px 16px; border-left: 4px solid #0b3d5c; }}
svg text {{ font-size: 11px; }} .f1 {{ fill: #5b8db8; }} .frame {{ fill: none; stroke: #ccc; }}
.pr {{ fill: none; stroke: #0b3d5c; stroke-width: 1.5; }} .threshold {{ fill: #c0392b; }}
.tick {{ stroke: #888; }} .tick-label {{ font-size: 9px; fill: #555; }}
.curves {{ display: flex; flex-wrap: wrap; gap: 6px; }} figure {{ margin: 0; }} figcaption {{ font-size: 12px; }}
pre {{ font-size: 12px; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<section class="card">{_markdown_html(card)}</section>
<h2>Summary</h2>
<table><tr><th>messages</th><th>count</th><th>Total (max 36)</th><th>mean positive-class F1</th><th>micro-F1</th></tr>
{_summary_row("all", report)}</table>
<h2>By genre</h2>
<p>The headline numbers mix news headlines with the direct messages operators read: here each genre alone.</p>
<table><tr><th>genre</th><th>count</th><th>Total (max 36)</th><th>mean positive-class F1</th><th>micro-F1</th></tr>
{"".join(by_genre)}</table>
{_language_table(languages or {})}<h2>F1 per category</h2>
{_f1_bars(report)}
<h2>Precision-recall curves</h2>
<p>From the export's scores; the red dot is the export's decision threshold.</p>
<div class="curves">{curves}</div>
<h2><code>related</code>: confusion matrix</h2>
<table><tr><th></th><th>predicted 0</th><th>predicted 1</th><th>predicted 2</th></tr>{matrix}</table>
<h2>Per category</h2>
<pre>{html.escape(table)}</pre>
</body></html>
"""
