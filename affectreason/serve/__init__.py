"""Serving: the in-process OpenAI-compatible server, its wire contract, batching, and the `vllm serve` launcher."""
