"""The decisions file's schema, version by version (`PRAGMA user_version`): decisions.Store migrates a file
to VERSION in place, one version a transaction, and refuses a newer one."""

# The schema at each version, as the statements that reach it from the one before (index 0: from nothing),
# separated by semicolons (none inside a statement). `keys.message_key(id, text)` is registered on every
# connection (decisions.Store.connect).
MIGRATIONS = (
    """
    CREATE TABLE decisions (
      decision_id INTEGER PRIMARY KEY AUTOINCREMENT,
      message_id TEXT NOT NULL,
      message TEXT NOT NULL,
      labels TEXT NOT NULL,          -- JSON: 36 labels in labels.CATEGORIES order
      operator TEXT NOT NULL,
      decided_at TEXT NOT NULL,      -- UTC, ISO 8601
      model_version TEXT,            -- the export the operator saw (its version directory)
      scores TEXT,                   -- JSON: the model's 36 scores at that moment
      undone_at TEXT                 -- set when the decision is undone: it then no longer stands
    );
    CREATE INDEX decisions_by_message ON decisions (message_id, decision_id);
    """,
    # 2: the review queue, messages waiting for a decision (pasted, uploaded, or scored by predict.py --db)
    """
    CREATE TABLE queue (
      message_id TEXT PRIMARY KEY,
      message TEXT NOT NULL,
      result TEXT NOT NULL,          -- JSON: the model's answer when it was queued (scores, labels, predicted)
      model_version TEXT,
      queued_at TEXT NOT NULL
    );
    """,
    # 3: a message is its id and its text (message_key); who undid a decision
    """
    UPDATE decisions SET message_id = message_key(message_id, message);
    UPDATE queue SET message_id = message_key(message_id, message);
    ALTER TABLE decisions ADD COLUMN undone_by TEXT
    """,
    # 4: who is reading a message now (claims.py): a claim ends by its time, a decision or a release; a queued
    # result's revision, +1 at each rescore, so that a reader parses it once per revision; a reviewer's decision
    # (opinions.py: it stands over the operators' it settles). No comment on an ALTER: SQLite copies the
    # column's text into the table's CREATE statement.
    """
    CREATE TABLE claims (
      message_id TEXT PRIMARY KEY,
      operator TEXT NOT NULL,
      claimed_at TEXT NOT NULL,      -- UTC, ISO 8601
      expires REAL NOT NULL          -- seconds since the epoch
    );
    ALTER TABLE queue ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE decisions ADD COLUMN reviewer INTEGER NOT NULL DEFAULT 0
    """,
)
VERSION = len(MIGRATIONS)  # the schema this disaster_tf writes: a file at a higher one is refused
