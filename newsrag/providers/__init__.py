"""Remote model providers (OpenAI, Cohere): one client base that embedders, generators, the reranker and the judge build on."""
