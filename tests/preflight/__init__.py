"""Tests of llmos.preflight and `llmos preflight`."""
