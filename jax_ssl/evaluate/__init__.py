"""Evaluation of frozen representations: kNN, linear probes, low-label subsets (DESIGN.md §2)."""
