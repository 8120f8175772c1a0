"""Fine-tuning on the engine's labels: NEFTune, the training loop, the job store and runner.

The core knows nothing of the web: app.api.jobs and app.views.jobs translate HTTP to these calls.
"""
