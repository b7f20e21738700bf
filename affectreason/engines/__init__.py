"""Engines turn (clip, prompt) requests into text: `hf` in process, `vllm` offline, `openai` over HTTP."""
