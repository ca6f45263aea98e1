"""Evaluation: face verification (ROC) now; EDC for quality scores builds on the same pairs."""
