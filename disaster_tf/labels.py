"""The 36 categories of the Figure Eight disaster response data.

The order is the order of the two-file format's `categories` column. It is the
order of the model's heads, of every label matrix ([batch, 36]) and of the
exported model's outputs, so it must never change for a trained model.
"""

from typing import Sequence, Tuple

import numpy as np

# The two-file format (what most tutorials use): messages and their categories, joined by id.
MESSAGES_FILE = "disaster_messages.csv"  # id,message,original,genre
CATEGORIES_FILE = "disaster_categories.csv"  # id,categories

CATEGORIES: Tuple[str, ...] = (
    "related", "request", "offer", "aid_related", "medical_help",
    "medical_products", "search_and_rescue", "security", "military",
    "child_alone", "water", "food", "shelter", "clothing", "money",
    "missing_people", "refugees", "death", "other_aid",
    "infrastructure_related", "transport", "buildings", "electricity",
    "tools", "hospitals", "shops", "aid_centers", "other_infrastructure",
    "weather_related", "floods", "storm", "fire", "earthquake", "cold",
    "other_weather", "direct_report",
)
NUM_CATEGORIES = len(CATEGORIES)  # 36

# `related` has three classes: 0 not related, 1 related, 2 unsure.
RELATED = "related"
RELATED_INDEX = CATEGORIES.index(RELATED)  # 0
RELATED_CLASSES = 3

# The 35 binary categories, in head order (CATEGORIES without `related`).
BINARY_CATEGORIES: Tuple[str, ...] = tuple(c for c in CATEGORIES if c != RELATED)
BINARY_INDICES: Tuple[int, ...] = tuple(CATEGORIES.index(c) for c in BINARY_CATEGORIES)

# The largest class number, per category: 2 for `related`, 1 otherwise.
MAX_LABEL: Tuple[int, ...] = tuple(RELATED_CLASSES - 1 if c == RELATED else 1 for c in CATEGORIES)


# Binary categories are decided at this probability until thresholds are tuned.
DEFAULT_THRESHOLD = 0.5


def default_thresholds() -> np.ndarray:
  """[36] float32, DEFAULT_THRESHOLD everywhere (`related`'s entry is unused: argmax)."""
  return np.full(NUM_CATEGORIES, DEFAULT_THRESHOLD, np.float32)


def num_classes(category: str) -> int:
  """Returns the number of classes of `category` (3 for `related`, else 2)."""
  if category not in CATEGORIES:
    raise KeyError(f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}")
  return MAX_LABEL[CATEGORIES.index(category)] + 1


def categories_cell(values: Sequence[int]) -> str:
  """The two-file format's `categories` cell for [36] labels in CATEGORIES order: `related-1;request-0;...`."""
  return ";".join(f"{name}-{value}" for name, value in zip(CATEGORIES, values))


# The language gate's answers (model/language.py): which side of the data a message is on.
ENGLISH, OTHER_LANGUAGE = "english", "other"
