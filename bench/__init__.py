"""Benchmarks (`make bench`): figures printed side by side with a reference measured in the same run."""
