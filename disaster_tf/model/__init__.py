"""The model wing: what the classifier is, what it reads, what it is trained to minimise and judged by.

  features    raw strings -> the model's named inputs (word ids, TF-IDF word and char n-grams, WordPiece ids)
  networks    the backbones (cnn_rnn, bigru, multi_cnn, linear, ensemble, wide_deep, encoder) and 36 heads per
              member; members(), probabilities(), decide()
  encoder     a BERT-family checkpoint (config.json, vocab.txt, model.safetensors) -> a Keras encoder
  wordpiece   the encoder's WordPiece tokenizer in the graph (TF Text)
  vectors     pretrained word vectors (GloVe, word2vec text, fastText .vec) -> the embedding's first rows
  losses      class weights -> per-head sample weights; the consistency term of pairs; combined_loss()
  metrics     per-category precision / recall / F1, Total, mean positive F1, micro-F1; tune_thresholds()
  precision   the Keras dtype policies of --precision, and what `auto` takes on this device
  language    the language gate: English or not, from hashed character n-grams, in the graph

May import: the data wing and the shared modules. Nothing here knows a model dir, a checkpoint or an export:
those are the training and serving wings'.
"""
