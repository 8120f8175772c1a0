"""Use cases: render, lint, compare, batch, inspect, jobs. Every surface (the JSON API, the pages,
the CLI) calls these with typed inputs and turns the result into its own output; none
re-implements one. Pure: no FastAPI, no HTTP; only the core packages and settings below.
"""
