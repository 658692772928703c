"""Foundation models for exploration: an OpenAI-compatible client with cache and budget."""
