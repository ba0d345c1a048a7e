"""The Review queue as the page answers it: the ranked, grouped queue, claims of its messages, second opinions
and their agreement, over a review.DecisionsApi and the page's app.TriageApp.

A shift shares one queue: GET /api/queue ranks what nobody decided (near-copies folded into one row, who reads
each), POST /api/claim hands each operator a message nobody else reads, GET /api/agreement says how often two
operators agree. review.py holds who may decide and the decisions themselves.
"""

import json
import re
import urllib.parse
from typing import AbstractSet, Dict, List, Optional, Sequence, Tuple

from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.data import opinions
from disaster_tf.triage import review


def answer_queue(api: review.DecisionsApi, app, path: str, max_limit: int, operator: Optional[str] = None) -> Dict:
  """GET /api/queue?order=useful|urgent|disputed&limit=N[&operator=NAME]: the messages to decide, as
  /api/classify answers them, near-copies folded into their group's row (`copies`), who reads each
  (`claimed_by`).

  `operator` is the token's name (None on loopback: the query's `operator`, else "local"). For useful and
  urgent, the messages drawn for a second opinion that another operator decided come first
  (`second_opinion`, with the decision they replace as `standing_id`); "disputed" is the reviewers' queue,
  each message with its two operators' decisions (`opinions`). `app` is the page's `app.TriageApp`.

  Raises:
    Refused: a bad limit or order; "disputed" asked by an operator who is not a reviewer.
  """
  query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
  limit = query.get("limit", ["50"])[0]
  if not re.fullmatch(r"[0-9]{1,6}", limit) or not 0 < int(limit) <= max_limit:  # ASCII digits: not "²"
    raise review.Refused(400, f"limit: expected a number from 1 to {max_limit}, found {limit!r}")
  operator = operator or query.get("operator", ["local"])[0]
  order = query.get("order", ["useful"])[0]
  if order == "disputed":
    return {"results": _disputed(api, app, operator, int(limit))}
  rescore_stale(api, app)
  held = api.claims.held()
  second = api.second_opinions(operator, int(limit))
  results = [dict(answer, second_opinion=True, standing_id=d.decision_id, claimed_by=None, copies=[])
             for answer, (_, _, d) in zip(_fresh(app, second), second)]
  undecided = api.store.undecided()
  copies: Dict[str, List[Dict]] = {}  # a group's first message -> its undecided members, as rows
  for i, text, _ in undecided:
    copies.setdefault(app.grouper.leader(i, text), []).append(dict(keys.message_row(i, text), message_id=i))
  shown = set()
  # Twice the rows asked for: a group's copies fold into its row, so fewer rows are left
  for i, text, result in _ranked(api, app, order, 2 * int(limit), pending=undecided):
    answer = app.result(keys.message_row(i, text), result)
    if answer["group"] in shown or len(results) >= int(limit):
      continue
    shown.add(answer["group"])
    answer.update(claimed_by=held[i].operator if i in held else None,
                  copies=[c for c in copies.get(answer["group"], []) if c["message_id"] != i])
    results.append(answer)
  return {"results": results}


def answer_agreement(api: review.DecisionsApi) -> Dict:
  """GET /api/agreement: per category, raw agreement and Cohen's kappa over the messages two operators decided."""
  live = api.store.live()
  two = list(opinions.pairs(opinions.by_message(live)).values())
  differ, settled = opinions.summary(live)
  return {"share": api.second_share, "reviewers": sorted(api.reviewers), "messages": len(two),
          "disagreements": differ, "settled": settled,
          "categories": [a.to_json() for a in opinions.agreement(two)]}


def _fresh(app, items: Sequence[Tuple[str, str, decisions.Decision]]) -> List[Dict]:
  """The serving model's answers for decided messages (they left the queue's cache): one model call."""
  scored = app.score([text for _, text, _ in items]) if items else []
  return [app.result(keys.message_row(k, text), r) for (k, text, _), r in zip(items, scored)]


def _disputed(api: review.DecisionsApi, app, operator: str, limit: int) -> List[Dict]:
  """The reviewers' queue: the messages two operators decided differently, with both decisions."""
  if operator not in api.reviewers:
    raise review.Refused(403, f"order: disputed is the reviewers' queue ({', '.join(sorted(api.reviewers)) or 'none'}: "
                              f"triage.py --reviewers); {operator} is not one of them")
  standing = api.store.standing()
  pairs = opinions.disputed(api.store.live())
  items = [(k, a.message, standing[k]) for k, (a, _) in list(pairs.items())[:limit]]
  return [dict(answer, standing_id=d.decision_id, claimed_by=None, copies=[],
               opinions=[review.as_json(o) for o in pairs[k]]) for answer, (k, _, d) in zip(_fresh(app, items), items)]


def _ranked(api: review.DecisionsApi, app, order: str, limit: int, skip: AbstractSet[str] = frozenset(),
            pending=None):
  """api.queue in `order` with what the serving model learnt from (its training positives, its language)."""
  training = app.training_data()
  return api.queue(order, limit, app.order, training.positives if training else None, app.english_only(), skip,
                   pending)


def answer_claim(api: review.DecisionsApi, app, path: str, authorization: Optional[str], body: bytes) -> Dict:
  """POST /api/claim {"message_id"} or {"next": ORDER}, POST /api/release {"message_id"} (claims.py).

  {"next": "useful"}: the first message of that order that no other operator reads, claimed at once
  ({"claim": null} when every one is taken or decided). A claim of a message another operator reads is a 409
  naming them.
  """
  parsed = review.json_object(body)
  operator = api.who(authorization, parsed)
  try:
    if path == "/api/release":
      key = review.message_id(parsed)
      return {"released": api.claims.release(key, operator), "message_id": key}
    if "next" in parsed:
      if parsed["next"] not in review.ORDERS:
        raise review.Refused(400, f"next: expected one of {', '.join(review.ORDERS)}, found "
                                  f"{json.dumps(parsed['next'])}")
      # What another operator reads, and its near-copies: one group is one operator's
      undecided = api.store.undecided()
      leaders = {i: app.grouper.leader(i, text) for i, text, _ in undecided}
      others = {leaders.get(k, k) for k, c in api.claims.held().items() if c.operator != operator}
      taken = {i for i, leader in leaders.items() if leader in others}
      # A few more than the operators who might ask at once: one taken meanwhile is passed over.
      pending = {i: (text, result) for i, text, result in _ranked(api, app, parsed["next"], 100, taken, undecided)}
      claim = api.claims.claim_first(list(pending), operator)
      if claim is None:
        return {"claim": None, "result": None}
      text, result = pending[claim.message_id]
      return {"claim": claim.to_json(), "result": app.result(keys.message_row(claim.message_id, text), result)}
    return {"claim": api.claims.claim(review.message_id(parsed), operator).to_json()}
  except decisions.StoreError as e:
    raise review.Refused(getattr(e, "status", 400), str(e)) from None


def rescore_stale(api: review.DecisionsApi, app, batch: int = 500) -> int:
  """Scores again the queued messages a previous version scored, with the serving one; returns how many.

  A new version (a retrain's, or any) re-ranks the queue: its first /api/queue rescores what the old one scored.
  """
  current = str(app.loaded.version) if app.loaded else None
  if current is None:
    return 0  # TF Serving without the export: no version to compare
  stale = api.store.stale(current)
  for start in range(0, len(stale), batch):
    chunk = stale[start:start + batch]
    results = app.score([text for _, text in chunk])
    api.store.enqueue([(k, text, r) for (k, text), r in zip(chunk, results)], current)
  return len(stale)
