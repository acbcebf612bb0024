"""LangChain agents (no web framework imports): main, context, map and output agents."""
