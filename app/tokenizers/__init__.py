"""Tokenizers by reference: bundled offline assets, local folders under allowed roots, Hub ids."""
