"""seedtape: a record-and-replay cache proxy for OpenAI and Azure OpenAI."""

__version__ = "0.1.0"
