"""The evaluation page and the model card."""

import re

import numpy as np

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.model import metrics
from disaster_tf.serve import report


def test_pr_curve_takes_every_distinct_score_as_a_threshold():
  truth = np.array([1, 0, 1, 1, 0])
  scores = np.array([0.9, 0.8, 0.8, 0.3, 0.1])
  recall, precision, cuts = report.pr_curve(truth, scores)
  # At >= 0.9: 1 of 1 right; at >= 0.8: 2 of 3; at >= 0.3: 3 of 4; at >= 0.1: 3 of 5.
  np.testing.assert_allclose(recall, [1 / 3, 2 / 3, 1, 1])
  np.testing.assert_allclose(precision, [1, 2 / 3, 3 / 4, 3 / 5])
  np.testing.assert_allclose(cuts, [0.9, 0.8, 0.3, 0.1])


def test_a_rare_categorys_marked_threshold_lies_on_its_drawn_curve_which_starts_at_its_first_positive():
  rng = np.random.default_rng(0)
  truth = np.zeros(3000, int)
  truth[rng.choice(3000, 12, replace=False)] = 1
  scores = np.clip(rng.random(3000) * 0.6 + truth * rng.random(3000) * 0.5, 0, 1)
  scores[np.flatnonzero(truth == 0)[0]] = 1.0  # the highest score is a negative: precision 0 there
  svg = report._curve_svg("fire", truth, scores, threshold=0.52)  # pylint: disable=protected-access
  points = [tuple(map(float, p.split(","))) for p in re.search(r'points="([^"]*)"', svg).group(1).split()]
  mark = tuple(float(v) for v in re.search(r'cx="([0-9.]+)" cy="([0-9.]+)"', svg).groups())
  assert mark in points  # on its own curve, not between two points of a thinned one
  recall, precision, _ = report.pr_curve(truth, scores)
  first = points[0]
  assert first[0] > 32 and precision[recall > 0][0] > 0  # the first point drawn is a positive's, not (0, 0)
  assert len(points) <= report.CURVE_POINTS + 2


def fake_report(f1_of, examples=40):
  truth = np.zeros((examples, labels.NUM_CATEGORIES), int)
  decided = np.zeros_like(truth)
  for name, (positives, hits) in f1_of.items():
    k = labels.CATEGORIES.index(name)
    truth[:positives, k] = 1
    decided[:hits, k] = 1
  return metrics.report(truth, decided), truth, decided


def metadata(config):
  """An export's metadata with the given config and no training report."""
  return records.ExportMetadata(labels.CATEGORIES, config, "ckpt-1", "/m", "f", (0.5,) * labels.NUM_CATEGORIES)


def test_the_card_names_what_the_model_reads_and_where_not_to_trust_it():
  scores, _, _ = fake_report({"water": (30, 30), "fire": (30, 0)}, examples=100)
  english = report.model_card(metadata({"model": {"architecture": "ensemble"}, "train": {}}), scores)
  assert "classifier (`ensemble`)" in english and "English only" in english and "not understood" in english
  assert "- `fire`: F1 0.00 with 30 positives to check it on" in english
  assert f"Those with {report.UNTRUSTED_RULE}:" in english
  assert "- `offer`: no positive message to check it on" in english and "`water`:" not in english
  assert "supports a person's triage" in english and "does not replace reading them" in english
  both = report.model_card(metadata({"train": {"text_fields": ["message", "original"]}}), scores)
  assert "as they were sent" in both and "Haitian Creole" in both and "not understood" not in both
  assert "paired with an English word" not in both
  lexicon = report.model_card(metadata({"model": {"lexicon": True}, "train": {"text_fields": ["message", "original"]}}))
  assert "(`dlo` with `water`) is read with that word too" in lexicon
  assert "How good it is" not in report.model_card(metadata({}))  # no report: nothing claimed


def test_one_rule_names_the_untrusted_categories_a_low_f1_or_too_few_positives():
  scores, _, _ = fake_report({"water": (30, 30), "security": (30, 3), "fire": (20, 20), "hospitals": (19, 19)},
                             examples=100)
  assert report.UNTRUSTED_F1 == 0.2 and report.UNTRUSTED_SUPPORT == 20
  named = dict(report.untrusted(scores))
  assert named["security"] == "F1 0.18 with 30 positives to check it on"  # below F1 0.2
  assert named["hospitals"] == "F1 1.00 with 19 positives to check it on"  # too few to tell
  assert named["offer"] == "no positive message to check it on"
  assert "water" not in named and "fire" not in named  # 20 positives and F1 1.0: trusted
  everything = fake_report({c: (30, 30) for c in labels.BINARY_CATEGORIES}, examples=100)[0]
  assert "## Categories it cannot be trusted on" in report.model_card(metadata({}), everything)
  assert report.untrusted(everything) == [] and "\n- none\n" in report.model_card(metadata({}), everything)


def test_the_page_is_self_contained_escaped_and_has_every_chart():
  scores, truth, decided = fake_report({"water": (10, 8), "food": (6, 3)})
  rng = np.random.default_rng(0)
  probabilities = rng.uniform(size=truth.shape)
  genres = np.array(["direct"] * 25 + ["news"] * 15, dtype=object)
  card = report.model_card(metadata({"model": {"architecture": "<script>alert(1)</script>"}}), scores)
  page = report.html_report("<b>title</b>", scores, truth, probabilities, decided, [0.5] * 36, genres, card)
  assert "<script" not in page and "&lt;script&gt;" in page and "&lt;b&gt;title&lt;/b&gt;" in page
  assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # no network
  assert page.count('<figure class="curve">') == labels.NUM_CATEGORIES and page.count('class="threshold"') > 0
  # Each curve's axes are named and carry ticks at 0, 0.5 and 1.
  curve = page[page.index('<figure class="curve">'):page.index("</figure>")]
  assert [label for label in re.findall(r'class="tick-label">([^<]*)<', curve)] == ["0", "0", "0.5", "0.5", "1", "1"]
  assert curve.count('class="tick"') == 6 and ">recall</text>" in curve and ">precision</text>" in curve
  assert "<td>direct</td><td>25</td>" in page and "<td>news</td><td>15</td>" in page
  assert "true 2" in page and 'aria-label="F1 per category"' in page


def test_the_card_puts_the_originals_scores_beside_their_translations_and_asks_for_care_below_the_ratio():
  scores, _, _ = fake_report({"water": (10, 8)})
  close, _, _ = fake_report({"water": (10, 7)})
  far, _, _ = fake_report({"water": (10, 2)})
  two = {"train": {"text_fields": ["message", "original"]}}
  card = report.model_card(metadata(two), scores, {"original": close, "translation": scores})
  assert "## By language" in card and f"micro-F1 {close.micro_f1:.3f} against {scores.micro_f1:.3f}" in card
  assert "more care" not in card  # within LANGUAGE_CARE_RATIO of English
  worse = report.model_card(metadata(two), scores, {"original": far, "translation": scores})
  assert f"(ratio {far.micro_f1 / scores.micro_f1:.2f})" in worse and "more care" in worse
  assert "By language" not in report.model_card(metadata(two), scores)  # nothing scored by language
  assert report.language_summary({"original": far}, "validation") == ""  # one language alone compares nothing
