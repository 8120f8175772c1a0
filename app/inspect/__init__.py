"""Dataset inspection: stream a dataset (JSONL, JSON array, Parquet, Arrow, CSV, a Hub dataset)
of conversations, prompt/completion, preference or pre-tokenized rows, lint each row, summarise
the whole.

One idea per module: `sources` (the formats, sniffed from the content), `columns` (the column
mapping), `options` (what to render, the loaded tokenizer, the limits), `renderer` (those bound
once), `shapes` (prompt/completion, preference and KTO rows read as TRL reads them),
`evaluator` (a raw row -> an Outcome), `pairs` (preference rows), `tokenized` (pre-tokenized
rows), `report` (summary, listed rows, triage), `plots` (lengths, truncation, packing),
`pipeline` (the stream in overlapped batches; `inspect_stream` / `inspect_source` are the entry
points), `parallel` (worker processes), `runs` (the page's background runs), `export` (the
generation-annotated template), `mapping` (the same checks as a batch function for
`datasets.map`, Ray Data, Spark).

Example: inspect_stream(open("data.jsonl", "rb"), load_options(spec, settings)).result()

Design concession: this package file imports nothing, so importing any one module of the
package never loads the others (worker processes import only what they run).
"""
