"""zoo plugin: sequence models (being written)."""

ZOO_CONTRACT = "1"
