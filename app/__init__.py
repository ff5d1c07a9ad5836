"""The FastAPI app: cited answers, search, an OpenAI-compatible endpoint, feedback and a chat page.
The only package that imports FastAPI. Start it with ``newsrag serve``."""
