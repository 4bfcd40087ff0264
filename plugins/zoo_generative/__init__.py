"""zoo plugin: generative models (being written)."""

ZOO_CONTRACT = "1"
