"""Model adapters behind one interface (``base.ModelAdapter``); ``registry.build_adapter`` makes one from a ModelSpec."""
