"""Renderers: results in, text or JSON out. Only the CLI prints what they return."""
