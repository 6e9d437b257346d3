"""The agentic mode: tool specs and calling (``tools``), the plan/act/reflect/answer loop (``loop``)."""
