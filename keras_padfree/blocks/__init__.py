"""Functional building blocks shared inside each model family."""
