"""Per-token scores: what a causal LM makes of each token of a rendering (DESIGN.md §3.2).

`scoring` computes log-probabilities, entropies, the trained loss and the end-of-turn stop
probabilities from one plain forward pass; `models` resolves, loads and caches the models and
lets one scoring at a time use the device.

Design concession: pure functions over a loaded model and a Rendering; no knowledge of jobs'
storage or of the web (the service finds a job's folder and passes it in).

Example: score_ids(load(resolve("smollm2", settings), settings), rendering.input_ids)
"""
