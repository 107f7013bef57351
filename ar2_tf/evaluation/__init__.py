"""Corruption robustness evaluation: error rates, CE/mCE, corrupted test sets, the suite, tables, the transfer matrix."""
