"""The data wing: labelled messages from a user's files to tf.data, and the operators' decisions as labels.

  csv_files   both labelled CSV formats of the Figure Eight release streamed to a text spool, every row
              validated (DataError names the file, line and column)
  examples    Examples (labels in memory, texts in the spool), split() by id hash, the tf.data pipeline, pairs
  text        in-graph standardize() and the word-id TextVectorization; vocabulary.txt
  lexicon     words of the originals paired with English words on the training pairs; lexicon.tsv; in-graph expand
  textfiles   what a user's text file must be (UTF-8), a sentence naming what it is instead; csv_rows()
  decisions   operators' decisions in SQLite (WAL, schema version, message keys, replaces, undo)
  decided     the standing decisions as labelled data: the export, a run's snapshot, --data with them applied

May import: the shared modules (labels, config, records) and nothing above. The decisions store lives here,
not with the page that writes it, because training reads it as labelled data (`train.py --decisions`): it is
a data source both wings use, so it sits below both.
"""
