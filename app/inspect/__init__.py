"""Dataset inspection: stream a JSONL file of conversations or pre-tokenized rows, lint each row,
summarise the whole.

One idea per module: `options` (what to render, the loaded tokenizer, the limits), `renderer`
(those bound once), `evaluator` (a raw row -> an Outcome), `tokenized` (pre-tokenized rows),
`report` (summary and listed rows), `pipeline` (the stream in overlapped batches; its
`inspect_stream` is the entry point), `parallel` (worker processes), `runs` (the page's
background runs), `export` (the generation-annotated template).

Example: inspect_stream(open("data.jsonl", "rb"), load_options(spec, settings)).result()

Design concession: this package file imports nothing, so importing any one module of the
package never loads the others (worker processes import only what they run).
"""
